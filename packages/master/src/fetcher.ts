/**
 * --fetch URL: the release poller of one program (overseer's fetcher). Every interval it
 * asks the source what it has (HEAD / stat); on new content it downloads it next to the
 * program, checks it (complete, within the size bound, an executable for this machine),
 * installs it atomically (the previous program kept as PROGRAM.previous), and upgrades.
 * If that upgrade fails the previous program goes back on disk, so no later respawn runs
 * the bad release, and that release is not tried again until the source changes.
 *
 * The decisions are FetchPolicy's; this is the shell that does the I/O.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, unlinkSync } from 'node:fs';
import { chmod, chown, link, open, rename, stat, unlink, copyFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { executableProblem, HEADER_BYTES } from './executable.js';
import { FetchPolicy, type FetchMemory } from './fetch-policy.js';
import { FetchError, sourceFor, type ReleaseSource } from './fetch-source.js';
import type { Logger } from './log.js';
import type { UpgradeOutcome } from './upgrade-tracker.js';

export interface FetcherOptions {
  url: URL;
  intervalMs: number;
  maxBytes: number;
  /** The program file to replace (symlinks resolved). */
  program: string;
  /** How messages name this fetcher: the master's `--fetch`, a config's `[program:x] fetch`. */
  label?: string;
  /** What the fetcher of the image before a reload knew (refused releases, the content last seen). */
  memory?: FetchMemory | null;
  /** How messages name the size limit: the master's `--fetch-max-size`, a config's `fetch_max_size=`. */
  sizeLabel?: string;
}

/** The part of the Logger a fetcher writes to (a config's program prefixes its lines). */
export type ReleaseLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface FetcherHost {
  upgrade(reason: string): Promise<UpgradeOutcome>;
  log: ReleaseLog;
  /** The program file changed under our hands (installed, put back): watchers take it as it is. */
  installed(): void;
  /** The previous release is back on disk after a failed upgrade (the group may need it started again). */
  putBack?(): void;
}

/** Where the previous program is kept. */
export function previousPath(program: string): string {
  return `${program}.previous`;
}

async function hashFile(path: string): Promise<string | null> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch {
    return null;
  }
  return h.digest('hex');
}

async function readHeader(path: string): Promise<Buffer> {
  const f = await open(path, 'r');
  try {
    const b = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await f.read(b, 0, HEADER_BYTES, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await f.close();
  }
}

async function removeQuietly(path: string | null): Promise<void> {
  if (path === null) return;
  try {
    await unlink(path);
  } catch {
    /* not there */
  }
}

/** `to` becomes a name of what `from` is now (a hard link, renamed into place; a copy where links are not possible). */
async function keepAs(from: string, to: string, tmp: string): Promise<void> {
  await removeQuietly(tmp);
  try {
    await link(from, tmp);
  } catch {
    await copyFile(from, tmp);
  }
  await rename(tmp, to);
  // rename(2) does nothing when both names are links to one file already (after a put-back): then tmp is still there.
  await removeQuietly(tmp);
}

export class Fetcher {
  private readonly policy: FetchPolicy;
  private readonly source: ReleaseSource;
  private timer: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();
  private stopped = false;
  /** The temporary file being written, removed on stop. */
  private tmp: string | null = null;
  private seq = 0;
  /** The poll in progress (tests and stop() wait for it). */
  running: Promise<void> | null = null;
  /** Between installing a release and knowing its upgrade's outcome (and putting the previous one back): no reload then. */
  installing = false;
  private readonly label: string;

  constructor(
    private readonly o: FetcherOptions,
    private readonly host: FetcherHost,
  ) {
    this.policy = new FetchPolicy(o.intervalMs);
    if (o.memory) this.policy.remember(o.memory, o.url.href);
    this.source = sourceFor(o.url);
    this.label = o.label ?? '--fetch';
  }

  /** What a reload carries to the next image's fetcher. */
  memory(): FetchMemory {
    return this.policy.memory(this.o.url.href);
  }

  start(): void {
    this.sweep();
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.tmp) {
      try {
        // Synchronously: stop() runs in the master's exit.
        unlinkSyncQuiet(this.tmp);
      } finally {
        this.tmp = null;
      }
    }
  }

  private get prefix(): string {
    return `.${basename(this.o.program)}.fetch.${process.pid}.`;
  }

  /** Temporary files of this pid left by an image before a reload (the exec does not clean up). */
  private sweep(): void {
    const dir = dirname(this.o.program);
    try {
      for (const name of readdirSync(dir)) if (name.startsWith(this.prefix)) unlinkSyncQuiet(join(dir, name));
    } catch {
      /* the start-up check made sure the directory is there */
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.poll().finally(() => {
        this.running = null;
      });
    }, ms);
    this.timer.unref();
  }

  private tmpPath(what: string): string {
    this.seq += 1;
    return join(dirname(this.o.program), `${this.prefix}${this.seq}.${what}`);
  }

  private async poll(): Promise<void> {
    const log = this.host.log;
    const url = this.o.url.href;
    let delay: number;
    try {
      await this.once();
      this.policy.succeeded();
      delay = this.policy.nextDelay();
    } catch (caught) {
      if (this.stopped) return;
      // Nothing here is fatal to the running service: a file system error too is retried.
      const err = caught instanceof FetchError ? caught : new FetchError((caught as Error).message, 'transient');
      if (err.kind === 'refused') {
        this.policy.refuse(err.key, null);
        // (the only content refused before it is downloaded whole: too large)
        log.warn(`${this.label} ${url}: not installing it: ${err.message} (${this.o.sizeLabel ?? '--fetch-max-size'}); waiting for the next release`);
        delay = this.policy.nextDelay();
      } else {
        delay = this.policy.failed();
        const line = `${this.label}: ${err.message}; retrying in ${Math.round(delay) / 1000}s`;
        if (this.policy.warnOnce(err.message)) log.warn(line);
        else log.debug(line);
      }
    } finally {
      await removeQuietly(this.tmp);
      this.tmp = null;
    }
    this.schedule(delay);
  }

  /** One poll: probe; on new content, download, check, install, upgrade (and put back on failure). */
  private async once(): Promise<void> {
    const log = this.host.log;
    const url = this.o.url.href;
    const program = this.o.program;
    const signal = this.abort.signal;
    const key = await this.source.probe(signal);
    if (this.policy.afterProbe(key) === 'unchanged') {
      log.debug(`${this.label} ${url}: unchanged`);
      return;
    }
    this.tmp = this.tmpPath('new');
    const got = await this.source.download(this.tmp, this.o.maxBytes, signal);
    if (this.stopped) return;
    const short = got.hash.slice(0, 12);
    const decision = this.policy.afterDownload(got.key, got.hash, await hashFile(program));
    if (decision === 'same') {
      log.debug(`${this.label} ${url}: sha256 ${short} is the program already installed`);
      return;
    }
    if (decision === 'refused-before') {
      log.info(`${this.label} ${url}: still release sha256 ${short}, which failed before; waiting for another`);
      return;
    }
    const problem = executableProblem(await readHeader(this.tmp), process.arch, endianness());
    if (problem !== null) {
      this.policy.refuse(got.key, got.hash);
      log.warn(`${this.label} ${url}: not installing release sha256 ${short} (${got.bytes} bytes): it is ${problem}; waiting for the next release`);
      return;
    }
    // Owned and executable as the program is (its owner when root: a program run as its
    // user= may not be allowed to run root's file; chown first, it clears set-id bits).
    const was = await stat(program).catch(() => null);
    if (was && process.getuid?.() === 0 && (was.uid !== 0 || was.gid !== 0)) await chown(this.tmp, was.uid, was.gid);
    await chmod(this.tmp, ((was?.mode ?? 0o755) & 0o7777) | 0o100);
    const previous = previousPath(program);
    this.installing = true;
    try {
      await this.install(got, short, url, program, previous);
    } finally {
      this.installing = false;
    }
  }

  /** Install the downloaded release, upgrade to it, and put the previous one back if that fails. */
  private async install(got: { key: string | null; hash: string; bytes: number }, short: string, url: string, program: string, previous: string): Promise<void> {
    const log = this.host.log;
    await keepAs(program, previous, this.tmpPath('previous'));
    await rename(this.tmp as string, program);
    this.tmp = null;
    this.host.installed();
    const reason = `${this.label}: installed release sha256 ${short} (${got.bytes} bytes) from ${url} as ${program} (the previous one kept as ${previous})`;
    const outcome = await this.host.upgrade(reason);
    if (outcome.ok) {
      this.policy.installed(got.key);
      return;
    }
    // The old workers still run the previous program; no respawn may run the failed one.
    await keepAs(previous, program, this.tmpPath('back'));
    this.host.installed();
    this.host.putBack?.();
    this.policy.refuse(got.key, got.hash);
    log.error(
      `${this.label}: release sha256 ${short} failed its upgrade (${outcome.message}); ${program} is the previous release again. ` +
        `It is not tried again until ${url} serves something else.`,
    );
  }
}

function unlinkSyncQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* not there */
  }
}
