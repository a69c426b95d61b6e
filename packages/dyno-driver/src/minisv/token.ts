/**
 * --http-token-file: the bearer token of the HTTP API on TCP. The file must be a regular
 * file of the driver's user (or root) that others can neither read nor write; the token is
 * its first line, at least 16 printable characters. Requests carry
 * `Authorization: Bearer TOKEN`, compared in constant time (both sides hashed first, so
 * neither the length nor a prefix of the token shows in the time an answer takes).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { UsageError } from '../errors.js';
import { closeSync, fstatSync, openSync, readSync, constants as fsc } from 'node:fs';

export const MIN_TOKEN_BYTES = 16;
const MAX_TOKEN_FILE_BYTES = 4096;

/** A bad token file is a usage error: one line, exit 2, before anything is bound. */
export class TokenFileError extends UsageError {}

/** What is wrong with a token file's status, or null (pure: the caller fstat()s). */
export function tokenFileProblem(st: { isFile(): boolean; mode: number; uid: number; size: number }, uid: number): string | null {
  if (!st.isFile()) return 'is not a regular file';
  if ((st.mode & 0o006) !== 0) return `can be read or written by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`;
  if (st.uid !== uid && st.uid !== 0) return `belongs to another user (uid ${st.uid}); it must be the driver's (uid ${uid}) or root's`;
  if (st.size > MAX_TOKEN_FILE_BYTES) return `is larger than ${MAX_TOKEN_FILE_BYTES} bytes: not a token file`;
  return null;
}

/** The token in a token file's text (its first line, surrounding blanks removed), or why there is none. */
export function tokenFromText(text: string): { token: string } | { problem: string } {
  const token = (text.split('\n')[0] ?? '').trim();
  if (token === '') return { problem: 'holds no token (its first line is empty)' };
  if (!/^[\x21-\x7e]+$/.test(token)) return { problem: 'the token must be printable ASCII without spaces (it travels in an HTTP header)' };
  if (token.length < MIN_TOKEN_BYTES) {
    return { problem: `the token is too short (${token.length} characters, at least ${MIN_TOKEN_BYTES}; e.g. head -c 32 /dev/urandom | base64 > FILE)` };
  }
  return { token };
}

/** Read and check --http-token-file (at start, before anything is bound). */
export function readTokenFile(path: string): Buffer {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO named here must not hang the start; it is refused just below.
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOCTTY | fsc.O_NONBLOCK);
  } catch (err) {
    throw new TokenFileError(`--http-token-file ${path}: cannot open it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    const problem = tokenFileProblem(st, process.getuid?.() ?? 0);
    if (problem) throw new TokenFileError(`--http-token-file ${path}: ${problem}`);
    const buf = Buffer.alloc(MAX_TOKEN_FILE_BYTES);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const t = tokenFromText(buf.subarray(0, n).toString('latin1'));
    if ('problem' in t) throw new TokenFileError(`--http-token-file ${path}: ${t.problem}`);
    return digest(t.token);
  } finally {
    closeSync(fd);
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'latin1').digest();

/** Whether an Authorization header carries the token (constant time in the token). */
export function bearerMatches(header: string | undefined, tokenDigest: Buffer): boolean {
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header ?? '');
  // Compare something in every case: a missing header takes the time a wrong one does.
  const given = digest(m ? (m[1] as string) : '');
  return timingSafeEqual(given, tokenDigest) && m !== null;
}
