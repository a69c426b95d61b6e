/**
 * hsup's control directory as a release source: DIR/new is checked, its slug unpacked
 * and its release phase run, then renamed to DIR/loaded and applied; a bad one is set
 * aside as DIR/rejected with the reason in DIR/last_error. At start without a valid
 * DIR/new, DIR/loaded runs (its release phase ran when it was loaded).
 */
import { existsSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isoTime, type Logger } from '@einhyrningsins/master';
import { readControlFile } from './app-source.js';
import { ControlDirWatcher, LAST_ERROR_FILE, LOADED_FILE, NEW_FILE, REJECTED_FILE } from './control-dir.js';
import type { PreparedRelease, Release } from './release.js';

/** What the source needs of the driver. */
export interface ReleaseSink {
  prepare(rel: Release): Promise<PreparedRelease>;
  /** The release phase of a new release; true when it passed (or there is none). */
  phase(next: PreparedRelease): Promise<boolean>;
  /** Apply a release whose release phase already ran. */
  apply(next: PreparedRelease, origin: string): Promise<void>;
  /** Run the serial queue's next step. */
  enqueue(step: () => Promise<void>): void;
  stopping(): boolean;
  current(): PreparedRelease | null;
  phaseStatus(): string | undefined;
}

export class ControlDirSource {
  rejected: { file: string; reason: string; at: string } | null = null;
  private watcher: ControlDirWatcher | null = null;
  private newTimer: NodeJS.Timeout | null = null;
  private newQueued = false;
  /** A DIR/new that could be neither loaded nor set aside: skipped until it changes. */
  private stuckNew: string | null = null;

  constructor(
    private readonly dir: string,
    private readonly sink: ReleaseSink,
    private readonly log: Logger,
  ) {}

  /** Watch DIR/new from now on, and take the first release (DIR/new, else DIR/loaded). */
  start(): void {
    this.watcher = new ControlDirWatcher(
      this.dir,
      () => this.scheduleNewCheck(100),
      (m) => this.log.warn(m),
    );
    this.sink.enqueue(async () => {
      await this.processNew(true);
      if (this.sink.current() === null) await this.loadLoaded();
      if (this.sink.current() === null) this.log.info(`Waiting for a release in ${join(this.dir, NEW_FILE)}`);
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.newTimer) clearTimeout(this.newTimer);
    this.newTimer = null;
  }

  private scheduleNewCheck(ms: number): void {
    if (this.newTimer || this.newQueued || this.sink.stopping()) return;
    this.newTimer = setTimeout(() => {
      this.newTimer = null;
      this.newQueued = true;
      this.sink.enqueue(async () => {
        this.newQueued = false;
        await this.processNew(false);
      });
    }, ms);
  }

  /** DIR/new: check it, unpack its slug, run its release phase, rename it to `loaded` and run it; or set it aside as `rejected`. */
  private async processNew(atStart: boolean): Promise<void> {
    if (this.sink.stopping()) return;
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
      next = await this.sink.prepare(readControlFile(file));
    } catch (err) {
      if (ident() === id) this.reject(file, id, (err as Error).message);
      else this.scheduleNewCheck(0);
      return;
    }
    if (this.sink.stopping()) return;
    if (ident() !== id) {
      // Replaced while we read it: start over with the newer file.
      this.scheduleNewCheck(0);
      return;
    }
    if (!(await this.sink.phase(next))) {
      if (!this.sink.stopping() && ident() === id) this.reject(file, id, `release phase failed (${this.sink.phaseStatus()})`);
      else if (!this.sink.stopping()) this.scheduleNewCheck(0);
      return;
    }
    if (this.sink.stopping()) return;
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
    await this.sink.apply(next, file);
  }

  /** hsup's way: DIR/new becomes DIR/rejected and the reason is written to DIR/last_error. */
  private reject(file: string, id: string, reason: string): void {
    let where = `moved to ${REJECTED_FILE}, reason in ${LAST_ERROR_FILE}`;
    try {
      renameSync(file, join(this.dir, REJECTED_FILE));
      try {
        unlinkSync(join(this.dir, LAST_ERROR_FILE));
      } catch {
        /* none yet */
      }
      writeFileSync(join(this.dir, LAST_ERROR_FILE), `${reason}\n`, { mode: 0o400 });
    } catch (err) {
      this.stuckNew = id;
      where = `could not be moved to ${REJECTED_FILE}: ${(err as Error).message}`;
    }
    this.rejected = { file, reason, at: isoTime() };
    const current = this.sink.current();
    const running = current ? `still running release ${current.version}` : 'nothing is running';
    this.log.error(`Rejected release ${file} (${where}): ${reason}; ${running}`);
  }

  /** At start without a valid DIR/new: run DIR/loaded (its release phase ran when it was loaded). */
  private async loadLoaded(): Promise<void> {
    const file = join(this.dir, LOADED_FILE);
    if (!existsSync(file)) return;
    try {
      const next = await this.sink.prepare(readControlFile(file));
      await this.sink.apply(next, file);
    } catch (err) {
      this.log.error(`Cannot run ${file}: ${(err as Error).message}`);
    }
  }
}
