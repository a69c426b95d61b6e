/**
 * The one HTTP request a control connection may carry (the dyno driver's hsup API shares
 * the control socket): read with the same per-client limits as einhorn request lines.
 * Pure: fed bytes, says when the request is complete or why it is refused.
 *
 * Limits: a head of at most {@link MAX_HTTP_HEAD} bytes, a body of at most
 * {@link MAX_HTTP_BODY} (Content-Length; no chunked bodies), one request per connection
 * (bytes after it are not read at all). Bytes are kept in one buffer that grows by
 * doubling (no copy of everything so far per chunk), and only new bytes are searched.
 */
export const MAX_HTTP_HEAD = 16 * 1024;
export const MAX_HTTP_BODY = 64 * 1024;

export interface HttpRequest {
  method: string;
  /** The target without its query string. */
  path: string;
  /** Header names lower-cased. */
  headers: ReadonlyMap<string, string>;
  body: string;
}

export interface HttpReply {
  status: number;
  body: string;
  type?: string;
  /** More header lines (Allow, WWW-Authenticate); names and values are the caller's, checked for CR/LF. */
  headers?: Readonly<Record<string, string>>;
}

export type HttpRead = { request: HttpRequest } | { error: HttpReply } | null;

const REASONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
};

/** The bytes of a reply that closes the connection. */
export function encodeHttpReply(r: HttpReply): Buffer {
  const data = Buffer.from(r.body);
  const extra = Object.entries(r.headers ?? {})
    .filter(([k, v]) => !/[\r\n:]/.test(k) && !/[\r\n]/.test(v))
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const head =
    `HTTP/1.1 ${r.status} ${REASONS[r.status] ?? 'Error'}\r\n` +
    `Content-Type: ${r.type ?? 'text/plain; charset=utf-8'}\r\nContent-Length: ${data.length}\r\n${extra}Connection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), data]);
}

export class HttpRequestReader {
  private buf = Buffer.alloc(1024);
  private len = 0;
  /** Where the search for the end of the head resumes. */
  private scanned = 0;
  private headEnd = -1;
  private bodyLength = 0;
  private head: { method: string; path: string; headers: Map<string, string> } | null = null;
  private finished = false;

  /** Feed bytes; returns the request once complete, an error reply, or null (needs more). */
  push(chunk: Buffer): HttpRead {
    if (this.finished) return null;
    const room = this.headEnd < 0 ? MAX_HTTP_HEAD + 4 + MAX_HTTP_BODY : this.headEnd + 4 + this.bodyLength;
    const take = chunk.subarray(0, Math.max(0, room - this.len));
    this.append(take);
    if (this.headEnd < 0) {
      const from = Math.max(0, this.scanned - 3);
      const end = this.buf.subarray(0, this.len).indexOf('\r\n\r\n', from, 'latin1');
      this.scanned = this.len;
      if (end < 0) {
        if (this.len > MAX_HTTP_HEAD) return this.fail(413, `request head too large (limit ${MAX_HTTP_HEAD} bytes)`);
        return null;
      }
      if (end > MAX_HTTP_HEAD) return this.fail(413, `request head too large (limit ${MAX_HTTP_HEAD} bytes)`);
      this.headEnd = end;
      const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      const [method = '', target = '/'] = (lines[0] ?? '').split(' ');
      const headers = new Map<string, string>();
      for (const h of lines.slice(1)) {
        const c = h.indexOf(':');
        if (c > 0) headers.set(h.slice(0, c).trim().toLowerCase(), h.slice(c + 1).trim());
      }
      if (headers.has('transfer-encoding')) return this.fail(501, 'chunked request bodies are not supported (send Content-Length)');
      const raw = headers.get('content-length') ?? '0';
      const length = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(length)) return this.fail(400, 'bad Content-Length');
      if (length > MAX_HTTP_BODY) return this.fail(413, `request body too large (limit ${MAX_HTTP_BODY} bytes)`);
      this.bodyLength = length;
      this.head = { method, path: target.split('?')[0] ?? '/', headers };
      // What came with the head past its end (within the body's length) is already in buf.
    }
    if (this.len < this.headEnd + 4 + this.bodyLength || !this.head) return null;
    this.finished = true;
    const body = this.buf.subarray(this.headEnd + 4, this.headEnd + 4 + this.bodyLength).toString('utf8');
    const request = { ...this.head, body };
    this.buf = Buffer.alloc(0);
    return { request };
  }

  /** A refused request: the status and a JSON body naming the problem (what the driver's APIs answer). */
  private fail(status: number, problem: string): HttpRead {
    this.finished = true;
    this.buf = Buffer.alloc(0);
    return { error: { status, body: JSON.stringify({ error: problem }) + '\n', type: 'application/json' } };
  }

  private append(data: Buffer): void {
    if (this.len + data.length > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.len + data.length) size *= 2;
      const next = Buffer.alloc(size);
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    data.copy(this.buf, this.len);
    this.len += data.length;
  }
}
