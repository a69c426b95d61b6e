import type { WorkerProcess } from './host/group-shell.js';
import { isoTime } from './clock.js';

/**
 * `--prefix-output`: each line a child writes on stdout or stderr goes to the
 * master's same stream with its slot and pid in front, as foreman does
 * (`worker.0[1234] | ...`, or `NAME.0[...]` with -c), optionally after a timestamp
 * (`--prefix-output-time`). A line is written whole, so two workers' lines never
 * interleave within a line; a partial last line is flushed when the stream ends.
 */
export function prefixOutput(child: WorkerProcess, slot: number, opts: { name: string | null; time: boolean }): void {
  const label = `${opts.name ?? 'worker'}.${slot}[${child.pid}] | `;
  pipeLines(child, opts.time ? () => `${isoTime()} ${label}` : () => label);
}

/**
 * A child's stdout and stderr to this process's, whole lines at a time with `prefix()`
 * in front of each (the master's --prefix-output, the dyno driver's `web.1 | `).
 */
export function pipeLines(child: { readonly stdout: NodeJS.ReadableStream | null; readonly stderr: NodeJS.ReadableStream | null }, prefix: () => string): void {
  if (child.stdout) pipeStreamLines(child.stdout, process.stdout, prefix);
  if (child.stderr) pipeStreamLines(child.stderr, process.stderr, prefix);
}

/** A stream being passed on line by line: what it holds of a line not finished yet. */
export interface LinePipe {
  /** The bytes of the current line read so far (not yet written): a reload carries them to the next image. */
  partial(): Buffer;
}

/** Longest line passed on whole; a longer one is cut (a newline added) at this many bytes. */
export const MAX_PIPED_LINE = 64 * 1024;

/**
 * One stream's lines to `dest`, each with `prefix()` in front; a partial last line is
 * flushed at its end. Bytes, not text: a line is passed on as the child wrote it (a UTF-8
 * character split between two reads, or across a reload, stays whole). `carried`: the
 * start of a line an earlier image of this program had read (a reload), written in front
 * of the rest of that line.
 */
export function pipeStreamLines(stream: NodeJS.ReadableStream, dest: NodeJS.WritableStream, prefix: () => string, carried?: Buffer): LinePipe {
  let buf: Buffer = carried && carried.length > 0 ? Buffer.from(carried) : Buffer.alloc(0);
  stream.on('data', (d: Buffer | string) => {
    const chunk = typeof d === 'string' ? Buffer.from(d) : d;
    const all = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const parts: Buffer[] = [];
    let from = 0;
    let nl: number;
    while ((nl = all.indexOf(10, from)) >= 0) {
      parts.push(Buffer.from(prefix()), all.subarray(from, nl + 1));
      from = nl + 1;
    }
    buf = all.subarray(from);
    if (buf.length > MAX_PIPED_LINE) {
      parts.push(Buffer.from(prefix()), buf, Buffer.from('\n'));
      buf = Buffer.alloc(0);
    } else if (buf.length > 0 && from > 0) {
      buf = Buffer.from(buf); // not a view into the chunk: let it go
    }
    if (parts.length) dest.write(Buffer.concat(parts));
  });
  stream.on('end', () => {
    if (buf.length) dest.write(Buffer.concat([Buffer.from(prefix()), buf, Buffer.from('\n')]));
    buf = Buffer.alloc(0);
  });
  stream.on('error', () => undefined);
  return { partial: () => buf };
}
