import type { ChildProcess } from 'node:child_process';
import { isoTime } from './clock.js';

/**
 * `--prefix-output`: each line a child writes on stdout or stderr goes to the
 * master's same stream with its slot and pid in front, as foreman does
 * (`worker.0[1234] | ...`, or `NAME.0[...]` with -c), optionally after a timestamp
 * (`--prefix-output-time`). A line is written whole, so two workers' lines never
 * interleave within a line; a partial last line is flushed when the stream ends.
 */
export function prefixOutput(child: ChildProcess, slot: number, opts: { name: string | null; time: boolean }): void {
  const label = `${opts.name ?? 'worker'}.${slot}[${child.pid ?? '?'}] | `;
  pipeLines(child, opts.time ? () => `${isoTime()} ${label}` : () => label);
}

/**
 * A child's stdout and stderr to this process's, whole lines at a time with `prefix()`
 * in front of each (the master's --prefix-output, the dyno driver's `web.1 | `).
 */
export function pipeLines(child: ChildProcess, prefix: () => string): void {
  if (child.stdout) pipeStreamLines(child.stdout, process.stdout, prefix);
  if (child.stderr) pipeStreamLines(child.stderr, process.stderr, prefix);
}

/** One stream's lines to `dest`, each with `prefix()` in front; a partial last line is flushed at its end. */
export function pipeStreamLines(stream: NodeJS.ReadableStream, dest: NodeJS.WritableStream, prefix: () => string): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let out = '';
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      out += prefix() + buf.slice(0, nl + 1);
      buf = buf.slice(nl + 1);
    }
    if (buf.length > 64 * 1024) {
      out += prefix() + buf + '\n';
      buf = '';
    }
    if (out) dest.write(out);
  });
  stream.on('end', () => {
    if (buf) dest.write(prefix() + buf + '\n');
    buf = '';
  });
  stream.on('error', () => undefined);
}
