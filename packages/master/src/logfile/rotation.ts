/**
 * Where to rotate a size-limited log file, decided purely: given the file's
 * size, whether it ends at a line boundary, and the bytes to append, the
 * sequence of writes and rotations. A line is never split across two files:
 * rotation happens only where the file ends with a newline (or is empty), before
 * the line that would take it past maxBytes. So a file exceeds maxBytes only
 * by one line longer than maxBytes on its own, or by the rest of a line that
 * was already started. (supervisord rotates after any write that reaches
 * maxBytes, mid-line or not.)
 */

export interface FileShape {
  size: number;
  /** True when the file is empty or its last byte is a newline. */
  atBoundary: boolean;
}

export type Step = { kind: 'write'; data: Buffer } | { kind: 'rotate' };

const NL = 0x0a;

/** The steps to append `data`; `maxBytes` 0 never rotates. `shape` is updated to the state after them. */
export function planAppend(shape: FileShape, data: Buffer, maxBytes: number): Step[] {
  const steps: Step[] = [];
  let rest = data;
  while (rest.length > 0) {
    if (maxBytes <= 0) {
      steps.push({ kind: 'write', data: rest });
      shape.size += rest.length;
      shape.atBoundary = rest[rest.length - 1] === NL;
      break;
    }
    const room = maxBytes - shape.size;
    // the longest prefix ending with a newline that fits
    let cut = room > 0 ? rest.lastIndexOf(NL, Math.min(room, rest.length) - 1) + 1 : 0;
    // an unterminated tail after it that fits as well stays in this file
    if (rest.indexOf(NL, cut) === -1 && shape.size + rest.length <= maxBytes) cut = rest.length;
    if (cut === 0) {
      if (shape.size > 0 && shape.atBoundary) {
        steps.push({ kind: 'rotate' });
        shape.size = 0;
        continue;
      }
      // a line of its own longer than maxBytes, or the end of a started line: write it whole
      const nl = rest.indexOf(NL);
      cut = nl === -1 ? rest.length : nl + 1;
    }
    const chunk = rest.subarray(0, cut);
    steps.push({ kind: 'write', data: chunk });
    shape.size += chunk.length;
    shape.atBoundary = chunk[chunk.length - 1] === NL;
    rest = rest.subarray(cut);
    if (shape.atBoundary && shape.size >= maxBytes && rest.length > 0) {
      steps.push({ kind: 'rotate' });
      shape.size = 0;
    }
  }
  return steps;
}

/**
 * supervisord's doRollover renames, for `backups` >= 1: name.(N-1) -> name.N, ...,
 * name.1 -> name.2, name -> name.1 (each target removed first); with 0
 * backups the file is truncated in place. Returned as [from, to] pairs in order.
 */
export function rotationRenames(path: string, backups: number): [string, string][] {
  const out: [string, string][] = [];
  if (backups <= 0) return out;
  for (let i = backups - 1; i >= 1; i--) out.push([`${path}.${i}`, `${path}.${i + 1}`]);
  out.push([path, `${path}.1`]);
  return out;
}
