/**
 * --watch PATH: upgrade when PATH changes, whichever way a deploy changes it: written in
 * place (mtime, size), renamed over (inode), or a symlink on the way flipped, as
 * Capistrano's `current -> releases/N` is (the resolved path). The path's entry, the file
 * it resolves to, and every symbolic link on the way are watched through fs.watch
 * (inotify) in their directories, each for its own name, with a poll as the fallback (and
 * a slow one as a safety net); a change is acted on once the path has been quiet for a
 * while, so a file being copied is not run half-written.
 *
 * `ChangeDebouncer` decides (pure, fake-clock tested); `PathWatcher` only looks and arms.
 */
import { lstatSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join, parse, resolve, sep } from 'node:path';

export type Verdict =
  | { kind: 'idle' }
  | { kind: 'recheck'; at: number }
  | { kind: 'changed'; identity: string; previous: string | null };

/**
 * When has a watched path changed? `identity` strings stand for what the path resolves to
 * (null: nothing there). A change is declared once the path shows the same new identity
 * twice, `quietMs` apart, with no event in between; a missing path is never a change (a
 * deploy that removes and recreates is waited out).
 */
export class ChangeDebouncer {
  private lastAt = Number.NEGATIVE_INFINITY;
  /** The new identity seen at the last look while a change is pending. */
  private pending: string | null | undefined = undefined;

  constructor(
    private baseline: string | null,
    readonly quietMs: number,
  ) {}

  get current(): string | null {
    return this.baseline;
  }

  /** Accept `identity` as the present state without calling it a change (e.g. after installing it ourselves). */
  rebase(identity: string | null): void {
    this.baseline = identity;
    this.pending = undefined;
  }

  /** A watch event: something moved at `now`; what the path looks like then is `identity`. */
  event(identity: string | null, now: number): Verdict {
    this.lastAt = now;
    this.pending = identity;
    return { kind: 'recheck', at: now + this.quietMs };
  }

  /** A look without an event (a timer: the recheck, or the poll). */
  look(identity: string | null, now: number): Verdict {
    if (now - this.lastAt < this.quietMs) return { kind: 'recheck', at: this.lastAt + this.quietMs };
    if (identity === this.baseline || identity === null) {
      this.pending = undefined;
      return { kind: 'idle' };
    }
    if (identity !== this.pending) {
      // Changed since the last look: still moving, or just noticed by the poll.
      this.pending = identity;
      this.lastAt = now;
      return { kind: 'recheck', at: now + this.quietMs };
    }
    const previous = this.baseline;
    this.rebase(identity);
    return { kind: 'changed', identity, previous };
  }
}

/** What `path` resolves to now: real path, device and inode, size and mtime; null if nothing (or no file) is there. */
export function identify(path: string): string | null {
  try {
    const real = realpathSync(path);
    const st = statSync(real, { bigint: true });
    return `${real}|${st.dev}:${st.ino}|${st.size}|${st.mtimeNs}`;
  } catch {
    return null;
  }
}

/** A short account of what differs between two identities, for the log. */
export function describeChange(before: string | null, after: string): string {
  if (before === null) return 'it appeared';
  const [r0, i0] = before.split('|');
  const [r1, i1] = after.split('|');
  if (r0 !== r1) return `now resolves to ${r1}`;
  if (i0 !== i1) return 'replaced by another file';
  return 'written in place';
}

/** The directory entries along an absolute path: for /a/b/c, ['/', 'a'], ['/a', 'b'], ['/a/b', 'c']. */
export function entriesAlong(path: string): Array<[dir: string, name: string]> {
  const { root } = parse(path);
  const parts = path.slice(root.length).split(sep).filter((p) => p !== '');
  const out: Array<[string, string]> = [];
  let dir = root;
  for (const name of parts) {
    out.push([dir, name]);
    dir = dir === root ? root + name : dir + sep + name;
  }
  return out;
}

export interface PathWatcherOptions {
  /** Absolute path to watch. */
  path: string;
  onChange: (path: string, how: string) => void;
  /** Quiet time before a change counts (ms). */
  quietMs?: number;
  /** Poll period when fs.watch cannot be used (ms). */
  pollMs?: number;
  /** Poll period as a safety net beside fs.watch (e.g. a file system without inotify events) (ms). */
  safetyPollMs?: number;
  warn: (message: string) => void;
  debug: (message: string) => void;
  now: () => number;
  /** fs.watch (a test hands in one that fails, to exercise the poll). */
  watch?: typeof watch;
}

export class PathWatcher {
  private readonly debouncer: ChangeDebouncer;
  private watchers: FSWatcher[] = [];
  /** The real directories the watchers are on (re-armed when a symlink on the way moves). */
  private armedKey = '';
  private recheck: NodeJS.Timeout | null = null;
  private poller: NodeJS.Timeout | null = null;
  private polling = false;
  private stopped = false;
  readonly path: string;

  constructor(private readonly o: PathWatcherOptions) {
    this.path = resolve(o.path);
    this.debouncer = new ChangeDebouncer(identify(this.path), o.quietMs ?? 250);
  }

  start(): void {
    this.arm();
    this.schedulePoll();
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.recheck) clearTimeout(this.recheck);
    if (this.poller) clearTimeout(this.poller);
    this.recheck = this.poller = null;
  }

  /** The path is as it should be now (we changed it ourselves): no upgrade for it. */
  rebase(): void {
    this.debouncer.rebase(identify(this.path));
  }

  /**
   * fs.watch on the directory of the path's last entry, of the file it resolves to, and of
   * every symbolic link on the way (a deploy flips one of those), each for its own entry. Plain directories above are
   * not watched: /tmp or / would wake the master for every file created there; one that
   * becomes a link later is found by the safety poll, which arms again.
   */
  private arm(): void {
    const all = entriesAlong(this.path);
    const entries = all.filter(([dir, name], i) => i === all.length - 1 || isSymlink(join(dir, name)));
    // And the file the path resolves to, written in place where it really is.
    const real = safeRealpath(this.path);
    if (!real.startsWith('?') && real !== this.path) entries.push([dirname(real), basename(real)]);
    const key = entries.map(([d, n]) => `${safeRealpath(d)}/${n}`).join('\0');
    if (key === this.armedKey && this.watchers.length > 0) return;
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.armedKey = key;
    for (const [dir, name] of entries) {
      let w: FSWatcher;
      try {
        w = (this.o.watch ?? watch)(dir, { persistent: false }, (_type, file) => {
          if (file === null || file === name) this.onEvent();
        });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR') continue; // not there (yet): armed again on the next look
        if (!this.polling) this.o.warn(`--watch ${this.path}: cannot watch ${dir} (${e.message}); polling every ${(this.o.pollMs ?? 1000) / 1000}s instead`);
        this.polling = true;
        continue;
      }
      w.on('error', () => {
        w.close();
        this.armedKey = '';
        this.onEvent();
      });
      this.watchers.push(w);
    }
  }

  private onEvent(): void {
    if (this.stopped) return;
    this.handle(this.debouncer.event(identify(this.path), this.o.now()));
  }

  private look(): void {
    if (this.stopped) return;
    this.arm();
    this.handle(this.debouncer.look(identify(this.path), this.o.now()));
  }

  private handle(v: Verdict): void {
    if (v.kind === 'recheck') {
      if (this.recheck) clearTimeout(this.recheck);
      this.recheck = setTimeout(() => {
        this.recheck = null;
        this.look();
      }, Math.max(0, v.at - this.o.now()));
      this.recheck.unref();
      return;
    }
    if (v.kind === 'changed') this.o.onChange(this.path, describeChange(v.previous, v.identity));
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    const ms = this.polling ? (this.o.pollMs ?? 1000) : (this.o.safetyPollMs ?? 10_000);
    this.poller = setTimeout(() => {
      this.poller = null;
      if (!this.recheck) this.look();
      this.schedulePoll();
    }, ms);
    this.poller.unref();
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function safeRealpath(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return `?${dir}`;
  }
}

export { watchPathProblem } from './release-checks.js';
