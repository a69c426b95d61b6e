/**
 * hsup's control directory as a release source: DIR/new is checked, its slug unpacked
 * and its release phase run, then renamed to DIR/loaded and applied; a bad one is set
 * aside as DIR/rejected with the reason in DIR/last_error. At start without a valid
 * DIR/new, DIR/loaded runs (its release phase ran when it was loaded).
 */
import { existsSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { isoTime, type Logger } from '@einhyrningsins/master';
import { readControlFile, type Warn } from './app-source.js';
import { ControlDirWatcher, LAST_ERROR_FILE, LOADED_FILE, NEW_FILE, REJECTED_FILE, rejectRelease } from './control-dir.js';
import type { PreparedRelease, Release } from './release.js';
import { describeSource, firstLook, prepareRelease, readAgain, type FirstLook, type ReleaseSink, type ReleaseSource, type Rejection, type SourceConfig } from './releases.js';

export class ControlDirSource implements ReleaseSource {
  readonly versioned = true;
  rejected: Rejection | null = null;
  private sink: ReleaseSink | null = null;
  private readonly dir: string;
  private watcher: ControlDirWatcher | null = null;
  private newTimer: NodeJS.Timeout | null = null;
  private newQueued = false;
  /** A DIR/new that could be neither loaded nor set aside: skipped until it changes. */
  private stuckNew: string | null = null;

  constructor(
    private readonly cfg: SourceConfig,
    private readonly log: Logger,
  ) {
    this.dir = cfg.source.kind === 'control-dir' ? cfg.source.dir : '';
  }

  describe(): string {
    return describeSource(this.cfg.source);
  }

  firstLook(warn: Warn): FirstLook {
    return firstLook(this.cfg, warn);
  }

  readAgain(current: PreparedRelease | null, running: boolean, warn: Warn): Promise<PreparedRelease> {
    return readAgain(this.cfg, current, running, warn);
  }

  private prepare(rel: Release): Promise<PreparedRelease> {
    return prepareRelease(this.cfg, rel, this.sink?.current() ?? null, (m) => this.log.warn(m));
  }

  private get out(): ReleaseSink {
    return this.sink as ReleaseSink;
  }

  /** Watch DIR/new from now on, and take the first release (DIR/new, else DIR/loaded). */
  watch(sink: ReleaseSink): void {
    this.sink = sink;
    this.watcher = new ControlDirWatcher(
      this.dir,
      () => this.scheduleNewCheck(100),
      (m) => this.log.warn(m),
    );
    this.out.enqueue(async () => {
      await this.processNew(true);
      if (this.out.current() === null) await this.loadLoaded();
      if (this.out.current() === null) this.log.info(`Waiting for a release in ${join(this.dir, NEW_FILE)}`);
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.newTimer) clearTimeout(this.newTimer);
    this.newTimer = null;
  }

  private scheduleNewCheck(ms: number): void {
    if (this.newTimer || this.newQueued || this.out.stopping()) return;
    this.newTimer = setTimeout(() => {
      this.newTimer = null;
      this.newQueued = true;
      this.out.enqueue(async () => {
        this.newQueued = false;
        await this.processNew(false);
      });
    }, ms);
  }

  /** DIR/new: check it, unpack its slug, run its release phase, rename it to `loaded` and run it; or set it aside as `rejected`. */
  private async processNew(atStart: boolean): Promise<void> {
    if (this.out.stopping()) return;
    const file = join(this.dir, NEW_FILE);
    let mtimeMs = 0;
    const ident = () => {
      try {
        const st = statSync(file);
        mtimeMs = st.mtimeMs;
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return null;
      }
    };
    const id = ident();
    if (id === null || id === this.stuckNew) return;
    // Still being written? Look again a little later.
    if (!atStart && Date.now() - mtimeMs < 200) {
      this.scheduleNewCheck(250);
      return;
    }
    let next: PreparedRelease;
    try {
      next = await this.prepare(readControlFile(file));
    } catch (err) {
      if (ident() === id) this.reject(file, id, (err as Error).message);
      else this.scheduleNewCheck(0);
      return;
    }
    if (this.out.stopping()) return;
    if (ident() !== id) {
      // Replaced while we read it: start over with the newer file.
      this.scheduleNewCheck(0);
      return;
    }
    if (!(await this.out.phase(next))) {
      if (!this.out.stopping() && ident() === id) this.reject(file, id, `release phase failed (${this.out.phaseStatus()})`);
      else if (!this.out.stopping()) this.scheduleNewCheck(0);
      return;
    }
    if (this.out.stopping()) return;
    if (ident() !== id) {
      // Replaced while its release phase ran: the newer file is the release now.
      this.scheduleNewCheck(0);
      return;
    }
    try {
      renameSync(file, join(this.dir, LOADED_FILE));
    } catch (err) {
      this.stuckNew = id;
      this.log.error(`Cannot rename ${file} to ${LOADED_FILE}: ${(err as Error).message}; not applying it`);
      return;
    }
    // As hsup: a release loaded clears the last rejection.
    for (const f of [REJECTED_FILE, LAST_ERROR_FILE]) {
      try {
        unlinkSync(join(this.dir, f));
      } catch {
        /* none */
      }
    }
    this.rejected = null;
    await this.out.apply(next, file);
  }

  /** hsup's way: DIR/new becomes DIR/rejected and the reason is written to DIR/last_error. */
  private reject(file: string, id: string, reason: string): void {
    const { where, stuck } = rejectRelease(this.dir, file, reason);
    if (stuck) this.stuckNew = id;
    this.rejected = { file, reason, at: isoTime() };
    const current = this.out.current();
    const running = current ? `still running release ${current.version}` : 'nothing is running';
    this.log.error(`Rejected release ${file} (${where}): ${reason}; ${running}`);
  }

  /** At start without a valid DIR/new: run DIR/loaded (its release phase ran when it was loaded). */
  private async loadLoaded(): Promise<void> {
    const file = join(this.dir, LOADED_FILE);
    if (!existsSync(file)) return;
    try {
      const next = await this.prepare(readControlFile(file));
      await this.out.apply(next, file);
    } catch (err) {
      this.log.error(`Cannot run ${file}: ${(err as Error).message}`);
    }
  }
}
