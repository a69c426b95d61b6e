/**
 * Splitting a byte stream into control lines, with a bound on line length.
 */

export type SplitResult = { line: string } | { error: 'too-long'; length: number };

export interface LineSplitterOptions {
  /** Longest accepted line in bytes, excluding the `\n` and one trailing `\r`. Default 65536. */
  maxLineLength?: number;
}

export const DEFAULT_MAX_LINE_LENGTH = 65536;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits on the byte 0x0A, strips one trailing `\r`, skips empty lines and decodes each line
 * as UTF-8 with replacement (never throws on bad bytes).
 *
 * A line longer than `maxLineLength` yields exactly one `{ error: 'too-long' }` as soon as the
 * excess is seen (so a peer that never sends `\n` still gets an answer); `length` is the
 * number of bytes of that line seen so far (a lower bound when the line has not ended). The
 * splitter then discards bytes up to and including the next `\n`, buffering nothing.
 */
export class LineSplitter {
  readonly maxLineLength: number;
  #parts: Buffer[] = [];
  #buffered = 0;
  #discarding = false;
  readonly #decoder = new TextDecoder('utf-8', { fatal: false });

  constructor(options: LineSplitterOptions = {}) {
    const max = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`maxLineLength must be a positive integer, got ${String(max)}`);
    }
    this.maxLineLength = max;
  }

  /** Bytes currently buffered for an unfinished line. */
  pending(): number {
    return this.#buffered;
  }

  /** The bytes of the unfinished line (a copy), e.g. to carry it across a reload. */
  pendingBytes(): Buffer {
    return Buffer.concat(this.#parts);
  }

  /** True while the rest of an over-long line is being skipped. */
  discarding(): boolean {
    return this.#discarding;
  }

  push(chunk: Buffer | Uint8Array): SplitResult[] {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const results: SplitResult[] = [];
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(LF, start);
      const end = nl === -1 ? buf.length : nl;
      if (this.#discarding) {
        if (nl !== -1) this.#discarding = false;
      } else if (nl === -1) {
        this.#append(buf.subarray(start, end), results);
      } else {
        this.#finishLine(buf.subarray(start, end), results);
      }
      if (nl === -1) break;
      start = nl + 1;
    }
    return results;
  }

  /**
   * End of stream: returns the unterminated last line, if any (einhorn drops it; the caller
   * decides), and resets the splitter.
   */
  end(): SplitResult[] {
    const results: SplitResult[] = [];
    if (!this.#discarding && this.#buffered > 0) this.#finishLine(Buffer.alloc(0), results);
    this.#reset();
    return results;
  }

  #reset(): void {
    this.#parts = [];
    this.#buffered = 0;
    this.#discarding = false;
  }

  /** Part of a line without its `\n` yet. */
  #append(part: Buffer, results: SplitResult[]): void {
    if (part.length === 0) return;
    const total = this.#buffered + part.length;
    // Allow one extra byte if it is the `\r` of a `\r\n` that has not fully arrived.
    const over = total > this.maxLineLength + 1 || (total === this.maxLineLength + 1 && part[part.length - 1] !== CR);
    if (over) {
      results.push({ error: 'too-long', length: total });
      this.#parts = [];
      this.#buffered = 0;
      this.#discarding = true;
      return;
    }
    // Copy: the caller may reuse its chunk buffer.
    this.#parts.push(Buffer.from(part));
    this.#buffered = total;
  }

  /** The last part of a line (the `\n` has been seen). */
  #finishLine(last: Buffer, results: SplitResult[]): void {
    let bytes = this.#parts.length === 0 ? last : Buffer.concat([...this.#parts, last]);
    this.#parts = [];
    this.#buffered = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > this.maxLineLength) {
      results.push({ error: 'too-long', length: bytes.length });
      return;
    }
    if (bytes.length === 0) return;
    results.push({ line: this.#decoder.decode(bytes) });
  }
}
