/**
 * Where --fetch gets releases from: an http(s) URL (HEAD for the validators, GET for the
 * bytes, with node:http and node:https) or a file:// path (stat, then a copy). A download
 * goes to a file created exclusively at the caller's path, is hashed on the way, and stops
 * at the size bound; a short read is an error, never a release.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';

/** `transient`: retried with backoff (network, HTTP status, cut off); `refused`: the content itself is unfit (too large). */
export class FetchError extends Error {
  override name = 'FetchError';
  constructor(
    message: string,
    readonly kind: 'transient' | 'refused',
    /** The source's key of the refused content, when known. */
    readonly key: string | null = null,
  ) {
    super(message);
  }
}

export interface Downloaded {
  key: string | null;
  /** sha256, hex. */
  hash: string;
  bytes: number;
}

export interface ReleaseSource {
  /** What it has now, cheaply: its validators (null when it gives none). */
  probe(signal: AbortSignal): Promise<string | null>;
  /** Write the bytes to `dest` (created here, exclusively, mode 0600). */
  download(dest: string, maxBytes: number, signal: AbortSignal): Promise<Downloaded>;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fsConstants;

async function createExclusive(path: string): Promise<FileHandle> {
  return await open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
}

/** The reason of a failed request, with its code (ECONNREFUSED, a TLS error, ...). */
function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.name === 'AbortError') return 'stopped';
  return e.code && !e.message.includes(e.code) ? `${e.message} (${e.code})` : e.message;
}

function tooLarge(size: number, maxBytes: number, key: string | null): FetchError {
  return new FetchError(`too large: ${size} bytes, more than the limit of ${maxBytes}`, 'refused', key);
}

/** The validators of an HTTP answer, one string; null when it has none. */
export function httpKey(h: IncomingHttpHeaders): string | null {
  const parts = ['etag', 'last-modified', 'content-length'].map((n) => {
    const v = h[n];
    return typeof v === 'string' ? v : null;
  });
  return parts.every((p) => p === null) ? null : parts.map((p) => p ?? '').join('|');
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * One request with node:http(s) (lighter than Node's fetch: ~4 MB of RSS instead of ~12),
 * following up to `redirects` redirects (never from https to http); `idleMs` without a
 * byte ends it.
 */
async function request(url: URL, method: 'HEAD' | 'GET', signal: AbortSignal, idleMs: number, redirects = 5): Promise<IncomingMessage> {
  const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = mod.request(url, { method, headers: { 'accept-encoding': 'identity', 'user-agent': 'einhyrningsins' }, signal, timeout: idleMs }, resolve);
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer for ${idleMs / 1000}s`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
  const status = res.statusCode ?? 0;
  const location = res.headers.location;
  if (!REDIRECTS.has(status) || location === undefined) return res;
  res.resume();
  if (redirects === 0) throw new Error('too many redirects');
  const next = new URL(location, url);
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new Error(`redirected to ${next.href}: not http or https`);
  if (url.protocol === 'https:' && next.protocol === 'http:') throw new Error(`redirected from https to ${next.href}: refused`);
  return await request(next, method, signal, idleMs, redirects - 1);
}

export class HttpSource implements ReleaseSource {
  constructor(
    private readonly url: URL,
    private readonly idleMs = 30_000,
  ) {}

  async probe(signal: AbortSignal): Promise<string | null> {
    let res: IncomingMessage;
    try {
      res = await request(this.url, 'HEAD', signal, this.idleMs);
    } catch (err) {
      throw new FetchError(`HEAD ${this.url.href} failed: ${reason(err)}`, 'transient');
    }
    res.resume();
    const status = res.statusCode ?? 0;
    // A server without HEAD: the download will tell (its hash decides).
    if (status === 405 || status === 501) return null;
    if (status < 200 || status > 299) throw new FetchError(`HEAD ${this.url.href}: HTTP ${status} ${res.statusMessage ?? ''}`.trim(), 'transient');
    return httpKey(res.headers);
  }

  async download(dest: string, maxBytes: number, signal: AbortSignal): Promise<Downloaded> {
    let res: IncomingMessage;
    try {
      res = await request(this.url, 'GET', signal, this.idleMs);
    } catch (err) {
      throw new FetchError(`GET ${this.url.href} failed: ${reason(err)}`, 'transient');
    }
    const key = httpKey(res.headers);
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      res.destroy();
      throw new FetchError(`GET ${this.url.href}: HTTP ${status} ${res.statusMessage ?? ''}`.trim(), 'transient');
    }
    const lengthHeader = res.headers['content-length'];
    const length = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
    if (length !== null && length > maxBytes) {
      res.destroy();
      throw tooLarge(length, maxBytes, key);
    }
    const file = await createExclusive(dest);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      try {
        for await (const chunk of res) {
          const b = chunk as Buffer;
          bytes += b.byteLength;
          if (bytes > maxBytes) {
            res.destroy();
            throw tooLarge(bytes, maxBytes, key);
          }
          hash.update(b);
          await file.write(b);
        }
      } catch (err) {
        if (err instanceof FetchError) throw err;
        throw new FetchError(`GET ${this.url.href}: cut off after ${bytes} bytes (${reason(err)})`, 'transient');
      }
      if (!res.complete || (length !== null && bytes !== length)) {
        throw new FetchError(`GET ${this.url.href}: cut off after ${bytes}${length !== null ? ` of ${length}` : ''} bytes`, 'transient');
      }
      await file.sync();
    } finally {
      await file.close();
    }
    return { key, hash: hash.digest('hex'), bytes };
  }
}

export class FileSource implements ReleaseSource {
  readonly path: string;

  constructor(url: URL) {
    this.path = fileURLToPath(url);
  }

  private async key(): Promise<{ key: string; size: number }> {
    try {
      const st = await stat(this.path, { bigint: true });
      if (!st.isFile()) throw new FetchError(`${this.path} is not a regular file`, 'transient');
      return { key: `${st.dev}:${st.ino}|${st.size}|${st.mtimeNs}`, size: Number(st.size) };
    } catch (err) {
      if (err instanceof FetchError) throw err;
      throw new FetchError(`${this.path}: ${(err as Error).message}`, 'transient');
    }
  }

  async probe(): Promise<string | null> {
    return (await this.key()).key;
  }

  async download(dest: string, maxBytes: number, signal: AbortSignal): Promise<Downloaded> {
    const before = await this.key();
    if (before.size > maxBytes) throw tooLarge(before.size, maxBytes, before.key);
    const file = await createExclusive(dest);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      try {
        for await (const chunk of createReadStream(this.path, { signal })) {
          const b = chunk as Buffer;
          bytes += b.byteLength;
          if (bytes > maxBytes) throw tooLarge(bytes, maxBytes, null);
          hash.update(b);
          await file.write(b);
        }
      } catch (err) {
        if (err instanceof FetchError) throw err;
        throw new FetchError(`${this.path}: ${(err as Error).message}`, 'transient');
      }
      await file.sync();
    } finally {
      await file.close();
    }
    const after = await this.key();
    // Being written right now: take it at the next poll, once it holds still.
    if (after.key !== before.key || bytes !== after.size) throw new FetchError(`${this.path} changed while it was copied`, 'transient');
    return { key: before.key, hash: hash.digest('hex'), bytes };
  }
}

export function sourceFor(url: URL): ReleaseSource {
  return url.protocol === 'file:' ? new FileSource(url) : new HttpSource(url);
}
