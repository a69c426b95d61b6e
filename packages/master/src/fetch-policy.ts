/**
 * The fetcher's decisions, pure: whether a probe means new content, what to do with a
 * downloaded release, which releases are never tried again, and when to poll next.
 *
 * Content is known by two things: the source's validators (`key`: ETag, Last-Modified and
 * Content-Length of an HTTP answer, or inode, size and mtime of a file), cheap to ask for,
 * and the SHA-256 of the bytes (`hash`), known once downloaded. A key seen before is not
 * downloaded again; a hash that failed an upgrade or was refused is never installed again,
 * under whatever key it comes back.
 */

export type ProbeDecision = 'unchanged' | 'download';

/**
 * What the fetcher remembers across a reload (the re-exec of the master or the driver):
 * the source it polled, the key of the content it last handled, and the releases never to
 * install again (SHA-256, hex). Without it a new image would download and try a release
 * that already failed once more.
 */
export interface FetchMemory {
  url: string;
  seenKey: string | null;
  refused: string[];
}

/** At most this many refused releases are remembered (the oldest forgotten first). */
export const MAX_REFUSED = 256;
export type DownloadDecision = 'same' | 'refused-before' | 'install';

export class FetchPolicy {
  /** The key of the content last handled to the end (installed, found the same, refused). */
  private seenKey: string | null = null;
  private readonly refused = new Set<string>();
  private failures = 0;
  private lastWarning: string | null = null;

  constructor(
    readonly intervalMs: number,
    /** The longest wait after failures (never less than the interval). */
    readonly maxBackoffMs = 600_000,
  ) {}

  /**
   * Take over what an earlier fetcher (the image before a reload) knew. Refused releases
   * are refused whatever the source (the bytes failed); the key of the content last seen
   * only when the source is the same URL.
   */
  remember(m: FetchMemory, url: string): void {
    for (const h of m.refused) this.refused.add(h);
    this.trim();
    if (m.url === url) this.seenKey = m.seenKey;
  }

  /** What a reload carries over (see FetchMemory). */
  memory(url: string): FetchMemory {
    return { url, seenKey: this.seenKey, refused: [...this.refused] };
  }

  private trim(): void {
    for (const h of this.refused) {
      if (this.refused.size <= MAX_REFUSED) break;
      this.refused.delete(h);
    }
  }

  /** After asking the source what it has: `key` null when it says nothing useful (then download and compare). */
  afterProbe(key: string | null): ProbeDecision {
    return key !== null && key === this.seenKey ? 'unchanged' : 'download';
  }

  /** After a complete download: the same bytes as the program on disk, bytes refused before, or a new release. */
  afterDownload(key: string | null, hash: string, currentHash: string | null): DownloadDecision {
    if (hash === currentHash) {
      this.seenKey = key;
      return 'same';
    }
    if (this.refused.has(hash)) {
      this.seenKey = key;
      return 'refused-before';
    }
    return 'install';
  }

  /** Content that must not be installed (not executable here, too large, a failed upgrade): not tried again until the source changes. */
  refuse(key: string | null, hash: string | null): void {
    this.seenKey = key;
    if (hash !== null) {
      // Re-added at the end: the most recent refusals are the ones kept.
      this.refused.delete(hash);
      this.refused.add(hash);
      this.trim();
    }
  }

  /** The installed release's upgrade succeeded. */
  installed(key: string | null): void {
    this.seenKey = key;
  }

  isRefused(hash: string): boolean {
    return this.refused.has(hash);
  }

  /** A poll ended without a transient failure. */
  succeeded(): void {
    this.failures = 0;
    this.lastWarning = null;
  }

  /** A transient failure (network, HTTP status, a cut-off download): retried with backoff. Returns the delay. */
  failed(): number {
    this.failures += 1;
    return this.nextDelay();
  }

  /** Whether this warning is news (a failure repeated as is is logged at debug level). */
  warnOnce(message: string): boolean {
    if (message === this.lastWarning) return false;
    this.lastWarning = message;
    return true;
  }

  /** The interval, doubled per consecutive failure up to maxBackoffMs (or the interval, if longer). */
  nextDelay(): number {
    if (this.failures === 0) return this.intervalMs;
    const cap = Math.max(this.intervalMs, this.maxBackoffMs);
    return Math.min(this.intervalMs * 2 ** Math.min(this.failures, 30), cap);
  }
}
