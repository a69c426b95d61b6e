/**
 * einhorn's line escaping for the control socket.
 *
 * einhorn serialises a message, then replaces `%` with `%25` and LF with `%0A` in a single
 * pass so that one message is exactly one line. Decoding differs between peers:
 *
 * - `einhorn`: what einhorn >= 0.8.1 (and contribsys 1.x) does: one left-to-right pass that
 *   decodes only `%25` and `%0A` (upper case). `%0a`, `%20`, ... stay literal.
 * - `lenient`: what a tolerant server wants: any `%XX` (either case) is a byte, and the bytes
 *   are read as UTF-8 (so node-einhorn's `encodeURI` output and einhorn <= 0.8.0's full URI
 *   escaping work). A `%` not followed by two hex digits stays literal. Invalid UTF-8 becomes
 *   U+FFFD; this never throws.
 */

export type UnescapeMode = 'einhorn' | 'lenient';

/** Escape `%` as `%25` and LF as `%0A` (single pass). The result contains no LF. */
export function escapeLine(text: string): string {
  return text.replace(/[%\n]/g, (c) => (c === '%' ? '%25' : '%0A'));
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30; // 0-9
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10; // A-F
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10; // a-f
  return -1;
}

/** Undo {@link escapeLine}; see the module comment for the two modes. */
export function unescapeLine(line: string, mode: UnescapeMode): string {
  if (!line.includes('%')) return line;
  if (mode === 'einhorn') {
    return line.replace(/%(25|0A)/g, (_m, code: string) => (code === '25' ? '%' : '\n'));
  }
  const bytes = Buffer.from(line, 'utf8');
  const out = Buffer.allocUnsafe(bytes.length);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x25 && i + 2 < bytes.length) {
      const hi = hexValue(bytes[i + 1]!);
      const lo = hexValue(bytes[i + 2]!);
      if (hi >= 0 && lo >= 0) {
        out[o++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    out[o++] = b;
  }
  return utf8.decode(out.subarray(0, o));
}
