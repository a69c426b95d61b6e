/**
 * One stream (a process's stdout or stderr) feeding a LogWriter that others
 * may share (numprocs processes, or stdout and stderr with one file): bytes
 * are passed on only as whole lines, so lines of different streams never
 * interleave mid-line. A partial line is held until its newline, up to
 * `maxLineBytes` (then passed on as it is: one stream cannot hold memory
 * without bound); `end()` passes on a final unterminated line with a newline
 * added, `flushPartial()` without one (before a re-exec: the rest of the line
 * arrives in the new process and continues it in the file).
 */
/** Where whole lines go: a LogWriter, or something in front of one (minisv's date prefix). */
export interface LineSink {
  write(data: Buffer): unknown;
}

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

export class LineSource {
  private partial: Buffer[] = [];
  private partialBytes = 0;

  constructor(
    private readonly writer: LineSink,
    private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES,
  ) {}

  write(chunk: Buffer | string): void {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const nl = buf.lastIndexOf(0x0a);
    if (nl !== -1) {
      const whole = buf.subarray(0, nl + 1);
      if (this.partial.length > 0) {
        this.writer.write(Buffer.concat([...this.partial, whole]));
        this.partial = [];
        this.partialBytes = 0;
      } else {
        this.writer.write(whole);
      }
      buf = buf.subarray(nl + 1);
    }
    if (buf.length === 0) return;
    this.partial.push(Buffer.from(buf));
    this.partialBytes += buf.length;
    if (this.partialBytes >= this.maxLineBytes) this.flushPartial();
  }

  /** Pass on the held partial line as it is. */
  flushPartial(): void {
    if (this.partial.length === 0) return;
    this.writer.write(Buffer.concat(this.partial));
    this.partial = [];
    this.partialBytes = 0;
  }

  /** The stream ended: a final unterminated line is passed on with a newline. */
  end(): void {
    if (this.partial.length === 0) return;
    this.partial.push(Buffer.from('\n'));
    this.flushPartial();
  }
}
