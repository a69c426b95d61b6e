/**
 * Where --fetch gets releases from: an http(s) URL (HEAD for the validators, GET for the
 * bytes, with Node's built-in fetch) or a file:// path (stat, then a copy). A download
 * goes to a file created exclusively by the caller's path, is hashed on the way, and stops
 * at the size bound; a short read is an error, never a release.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
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

/** The reason of a failed fetch() with its cause (ECONNREFUSED, a TLS error, ...). */
function reason(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'timed out';
  const cause = e.cause ? `: ${e.cause.message ?? e.cause.code}` : '';
  return `${e.message}${cause}`;
}

function tooLarge(size: number, maxBytes: number, key: string | null): FetchError {
  return new FetchError(`too large: ${size} bytes, more than the limit of ${maxBytes} (--fetch-max-size)`, 'refused', key);
}

export function httpKey(h: Headers): string | null {
  const parts = ['etag', 'last-modified', 'content-length'].map((n) => h.get(n));
  return parts.every((p) => p === null) ? null : parts.map((p) => p ?? '').join('|');
}

export class HttpSource implements ReleaseSource {
  constructor(
    private readonly url: URL,
    private readonly probeTimeoutMs = 30_000,
    private readonly downloadTimeoutMs = 600_000,
  ) {}

  async probe(signal: AbortSignal): Promise<string | null> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'HEAD',
        headers: { 'accept-encoding': 'identity' },
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.probeTimeoutMs)]),
      });
    } catch (err) {
      throw new FetchError(`HEAD ${this.url.href} failed: ${reason(err)}`, 'transient');
    }
    // A server without HEAD: the download will tell (its hash decides).
    if (res.status === 405 || res.status === 501) return null;
    if (!res.ok) throw new FetchError(`HEAD ${this.url.href}: HTTP ${res.status} ${res.statusText}`.trim(), 'transient');
    return httpKey(res.headers);
  }

  async download(dest: string, maxBytes: number, signal: AbortSignal): Promise<Downloaded> {
    const stop = new AbortController();
    let res: Response;
    try {
      res = await fetch(this.url, {
        headers: { 'accept-encoding': 'identity' },
        signal: AbortSignal.any([signal, stop.signal, AbortSignal.timeout(this.downloadTimeoutMs)]),
      });
    } catch (err) {
      throw new FetchError(`GET ${this.url.href} failed: ${reason(err)}`, 'transient');
    }
    const key = httpKey(res.headers);
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw new FetchError(`GET ${this.url.href}: HTTP ${res.status} ${res.statusText}`.trim(), 'transient');
    }
    const lengthHeader = res.headers.get('content-length');
    const length = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
    if (length !== null && length > maxBytes) {
      stop.abort();
      throw tooLarge(length, maxBytes, key);
    }
    const file = await createExclusive(dest);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      if (!res.body) throw new FetchError(`GET ${this.url.href}: no body`, 'transient');
      try {
        for await (const chunk of res.body) {
          bytes += chunk.byteLength;
          if (bytes > maxBytes) {
            stop.abort();
            throw tooLarge(bytes, maxBytes, key);
          }
          hash.update(chunk);
          await file.write(chunk);
        }
      } catch (err) {
        if (err instanceof FetchError) throw err;
        throw new FetchError(`GET ${this.url.href}: cut off after ${bytes} bytes (${reason(err)})`, 'transient');
      }
      if (length !== null && bytes !== length) {
        throw new FetchError(`GET ${this.url.href}: cut off: ${bytes} of ${length} bytes`, 'transient');
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
