/**
 * Releases that arrive by themselves, for one group: --watch paths that trigger an upgrade
 * when a deploy changes them, and the --fetch poller that installs new releases of the
 * group's program and upgrades to them. The master owns one; a supervisor of many programs
 * would own one per program (each with its own group handle, program path and options).
 */
import type { FetchMemory } from './fetch-policy.js';
import type { ReleaseLog } from './fetcher.js';
import { fetchTarget, releasesWanted, type ReleaseOptions } from './release-checks.js';

export { fetchTarget, fetchTargetOf, type ReleaseOptions } from './release-checks.js';
import { PathWatcher } from './watch.js';
import { UpgradeTracker, type GroupHandle, type UpgradeOutcome } from './upgrade-tracker.js';


export interface ReleaseHost {
  group: GroupHandle;
  log: ReleaseLog;
  /** Monotonic ms. */
  now: () => number;
  /** Where the program is looked up (the group's environment and working directory). */
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** How messages name the triggers: the master's `--fetch`/`--watch`, a program's `[program:x] fetch`/`... watch`. */
  labels?: { fetch: string; watch: string; size?: string };
  /** The fetcher's memory from the image before a reload. */
  memory?: FetchMemory | null;
  /**
   * After a failed upgrade's previous release is back on disk. A group that stops its old
   * processes before starting new ones (a config's program without a socket) may be left
   * without any: it starts them again, on the previous release.
   */
  afterPutBack?: () => void;
}

interface RunningFetcher {
  stop(): void;
  memory(): FetchMemory;
  installing: boolean;
}

export class Releases {
  private readonly upgrades: UpgradeTracker;
  private readonly watchers: PathWatcher[] = [];
  private fetcher: RunningFetcher | null = null;
  private stopped = false;
  private readonly labels: { fetch: string; watch: string; size?: string };

  constructor(
    private readonly opts: ReleaseOptions,
    private readonly host: ReleaseHost,
  ) {
    this.upgrades = new UpgradeTracker(host.group);
    this.labels = host.labels ?? { fetch: '--fetch', watch: '--watch' };
  }

  /**
   * What a reload carries over: the fetcher's memory (before the fetcher runs, the memory
   * it was given, so a reload right after a reload forgets nothing). Null without --fetch.
   */
  memory(): FetchMemory | null {
    if (this.fetcher) return this.fetcher.memory();
    return this.opts.fetch !== null ? (this.host.memory ?? null) : null;
  }

  /** Why a reload must wait (a fetched release between install and its upgrade's outcome), or null. */
  busy(): string | null {
    return this.fetcher?.installing ? `${this.labels.fetch}: a fetched release is being installed; reload when its upgrade is done` : null;
  }

  /** Whether there is anything to run (no watch, no fetch: the master needs no Releases). */
  static wanted(opts: ReleaseOptions): boolean {
    return releasesWanted(opts);
  }

  start(): void {
    this.startWatchers();
    if (this.opts.fetch !== null) {
      this.startFetcher(this.opts.fetch).catch((err: Error) => this.host.log.error(`${this.labels.fetch}: not polling: ${err.message}`));
    }
  }

  private async startFetcher(url: string): Promise<void> {
    const program = fetchTarget(this.opts, this.host.env, this.host.cwd);
    // Loaded only when asked for (node:crypto and fetch cost start-up memory).
    const { Fetcher } = await import('./fetcher.js');
    if (this.stopped) return;
    const fetcher = new Fetcher(
      {
        url: new URL(url),
        intervalMs: this.opts.fetchIntervalSec * 1000,
        maxBytes: this.opts.fetchMaxBytes,
        program,
        label: this.labels.fetch,
        sizeLabel: this.labels.size ?? '--fetch-max-size',
        memory: this.host.memory ?? null,
      },
      {
        upgrade: (reason) => this.upgrade(reason),
        log: this.host.log,
        installed: () => {
          for (const w of this.watchers) w.rebase();
        },
        ...(this.host.afterPutBack ? { putBack: this.host.afterPutBack } : {}),
      },
    );
    this.fetcher = fetcher;
    fetcher.start();
  }

  private startWatchers(): void {
    const log = this.host.log;
    for (const path of this.opts.watch) {
      const w = new PathWatcher({
        path,
        onChange: (p, how) => void this.upgrade(`${this.labels.watch}: ${p} changed (${how})`),
        warn: (m) => log.warn(m),
        debug: (m) => log.debug(m),
        now: this.host.now,
      });
      w.start();
      this.watchers.push(w);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers) w.stop();
    this.fetcher?.stop();
  }

  /** After every batch of the group's events. */
  changed(): void {
    this.upgrades.changed();
  }

  private async upgrade(reason: string): Promise<UpgradeOutcome> {
    this.host.log.info(`${reason}; upgrading`);
    const outcome = await this.upgrades.request();
    if (outcome.ok) this.host.log.info(`${reason}: upgrade done`);
    else this.host.log.error(`${reason}: upgrade failed: ${outcome.message}`);
    return outcome;
  }
}
