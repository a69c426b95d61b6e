/**
 * Releases that arrive by themselves, for one group: --watch paths that trigger an upgrade
 * when a deploy changes them, and the --fetch poller that installs new releases of the
 * group's program and upgrades to them. The master owns one; a supervisor of many programs
 * would own one per program (each with its own group handle, program path and options).
 */
import type { Logger } from './log.js';
import { PathWatcher } from './watch.js';
import { UpgradeTracker, type GroupHandle } from './upgrade-tracker.js';

export interface ReleaseOptions {
  /** --watch paths. */
  watch: readonly string[];
}

export interface ReleaseHost {
  group: GroupHandle;
  log: Logger;
  /** Monotonic ms. */
  now: () => number;
}

export class Releases {
  private readonly upgrades: UpgradeTracker;
  private readonly watchers: PathWatcher[] = [];

  constructor(
    private readonly opts: ReleaseOptions,
    private readonly host: ReleaseHost,
  ) {
    this.upgrades = new UpgradeTracker(host.group);
  }

  /** Whether there is anything to run (no watch, no fetch: the master needs no Releases). */
  static wanted(opts: ReleaseOptions): boolean {
    return opts.watch.length > 0;
  }

  start(): void {
    const log = this.host.log;
    for (const path of this.opts.watch) {
      const w = new PathWatcher({
        path,
        onChange: (p, how) => void this.upgrade(`--watch: ${p} changed (${how})`),
        warn: (m) => log.warn(m),
        debug: (m) => log.debug(m),
        now: this.host.now,
      });
      w.start();
      this.watchers.push(w);
    }
  }

  stop(): void {
    for (const w of this.watchers) w.stop();
  }

  /** After every batch of the group's events. */
  changed(): void {
    this.upgrades.changed();
  }

  private async upgrade(reason: string): Promise<boolean> {
    this.host.log.info(`${reason}; upgrading`);
    const outcome = await this.upgrades.request();
    if (outcome.ok) this.host.log.info(`${reason}: upgrade done`);
    else this.host.log.error(`${reason}: upgrade failed: ${outcome.message}`);
    return outcome.ok;
  }
}
