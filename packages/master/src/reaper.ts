import { readFileSync, readdirSync } from 'node:fs';
import { monotonicMs } from './clock.js';
import { statFields } from './proc-stat.js';
import * as native from 'native-reuseport';
import type { Logger } from './log.js';
import { probe } from './loop-probe.js';

/**
 * While orphans are known (alive, waiting for their worker to go, or signalled and waiting
 * to die), they are looked at this often too; otherwise only on SIGCHLD. An orphan is
 * reparented to the master when its parent exits, and what makes it the master's concern
 * is its worker's exit, which sends SIGCHLD: so with none known, nothing wakes the master.
 */
const SCAN_EVERY_MS = 1000;

/**
 * Scans on SIGCHLD are apart by this much per child of the master seen at the last scan, at
 * most SCAN_GAP_MAX_MS: each reads every thread's children list, which at 1,000 workers lists
 * them all, and an upgrade of 1,000 brings 1,000 SIGCHLDs (one scan per turn of the event loop
 * cost the master ~0.35 s of CPU per upgrade). A master of a few children still looks at once
 * (no zombie waits for it: the PID 1 tests count them), one of 1,000 every 250 ms.
 */
const SCAN_GAP_PER_CHILD_MS = 0.25;
const SCAN_GAP_MAX_MS = 250;
/** A child not known yet while spawns are in flight is looked at again this much later at least. */
const IN_FLIGHT_RETRY_MS = 20;

export interface ReaperOptions {
  /** A worker (the runtime's): never waited for here, or its exit would be lost to its group. */
  isWorker(pid: number): boolean;
  /** The live workers' pids: an orphan in one's process group or session still belongs to it. */
  workers(): Iterable<number>;
  /** SIGKILL an orphan still alive this long after its SIGTERM; null: never. */
  signalTimeoutMs: number | null;
  log: Logger;
}

interface Stat {
  state: string;
  pgid: number;
  sid: number;
  /** Start time in clock ticks since boot: an ancestor started no later than its descendants. */
  start: number;
}

function stat(pid: number): Stat | null {
  const f = statFields(pid);
  return f ? { state: f[0] ?? '?', pgid: Number(f[2]), sid: Number(f[3]), start: Number(f[19]) } : null;
}

/** What is known of an orphan: the workers it may have come from, and when it was signalled. */
interface Orphan {
  /** Live workers, when it was first seen, that started before it (its possible ancestors). */
  from: Set<number>;
  signaledAt: number | null;
  killed: boolean;
}

/** Our direct children, from every thread's children list (a reparented orphan may be any thread's). */
function ourChildren(): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const t of tasks) {
    let text: string;
    try {
      text = readFileSync(`/proc/self/task/${t}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const w of text.split(' ')) if (w !== '' && w !== '\n') out.push(Number(w));
  }
  return out;
}

/**
 * Reaps the children the master did not spawn: processes its workers left behind,
 * reparented to it as a child subreaper (PR_SET_CHILD_SUBREAPER) or as PID 1 (a container).
 * Zombies are waited for at once (on SIGCHLD). A live orphan belongs to a live worker
 * while it is in that worker's process group or session, or (a daemon that made its own
 * session) while one of the workers that were alive and older than it when it was first
 * seen, its possible ancestors, still lives; once its worker is gone it gets SIGTERM,
 * then SIGKILL after the signal timeout.
 */
export class Reaper {
  private readonly orphans = new Map<number, Orphan>();
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private pending: NodeJS.Timeout | null = null;
  private lastScan = -Infinity;
  /** How many children the last scan listed. */
  private lastChildren = 0;
  private stopped = false;
  private retry: NodeJS.Timeout | null = null;
  private readonly onChld = () => this.schedule();

  constructor(private readonly opts: ReaperOptions) {}

  /** Become a subreaper (when asked) and start watching. */
  start(subreaper: boolean): void {
    if (subreaper) native.setChildSubreaper(true);
    process.on('SIGCHLD', this.onChld);
    this.schedule(); // orphans inherited across a reload
  }

  stop(): void {
    this.stopped = true;
    process.off('SIGCHLD', this.onChld);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending) clearTimeout(this.pending);
    this.pending = null;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }

  /** The backstop: another look in a second while orphans are known; none while there are none. */
  private backstop(): void {
    if (this.orphans.size === 0 || this.stopped) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.scan();
    }, SCAN_EVERY_MS);
    this.timer.unref();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.pending = null;
      this.scan();
    };
    const gap = Math.min(SCAN_GAP_MAX_MS, this.lastChildren * SCAN_GAP_PER_CHILD_MS);
    const wait = this.lastScan + gap - monotonicMs();
    if (wait <= 0) setImmediate(run);
    else this.pending = setTimeout(run, wait);
  }

  /**
   * Workers are spawned on the addon's threads (host/spawner.ts): a child can appear in the
   * list before its pid is known here. The addon counts a spawn in flight until its pid is
   * in its registry, so: the children list first, then the count, then the registry; with
   * spawns in flight, a child known nowhere may be one of them and waits for a later scan.
   */
  private isOurs(pid: number, inFlight: number): 'worker' | 'unknown' | 'orphan' {
    if (this.opts.isWorker(pid) || native.isSpawned(pid)) return 'worker';
    return inFlight > 0 ? 'unknown' : 'orphan';
  }

  /** One pass over our children that are not workers. */
  scan(): void {
    const now = monotonicMs();
    this.lastScan = now;
    let live: Set<number> | null = null;
    const seen = new Set<number>();
    const children = ourChildren();
    const inFlight = native.spawnsInFlight();
    this.lastChildren = children.length;
    let deferred = false;
    for (const pid of children) {
      const ours = this.isOurs(pid, inFlight);
      if (ours === 'worker') continue;
      if (ours === 'unknown') {
        deferred = true;
        if (this.orphans.has(pid)) seen.add(pid);
        continue;
      }
      const st = stat(pid);
      if (!st) continue;
      seen.add(pid);
      if (st.state === 'Z' || st.state === 'X') {
        this.reap(pid);
        continue;
      }
      live ??= new Set(this.opts.workers());
      let o = this.orphans.get(pid);
      if (!o) {
        const from = new Set<number>();
        for (const w of live) {
          const ws = stat(w);
          if (ws && ws.start <= st.start) from.add(w);
        }
        o = { from, signaledAt: null, killed: false };
        this.orphans.set(pid, o);
      }
      for (const w of o.from) if (!live.has(w)) o.from.delete(w);
      if (live.has(st.pgid) || live.has(st.sid) || o.from.size > 0) continue;
      if (o.signaledAt === null) {
        this.opts.log.info(`Stopping process ${pid} that a worker left behind (SIGTERM)`);
        this.kill(pid, 'SIGTERM');
        o.signaledAt = now;
      } else if (!o.killed && this.opts.signalTimeoutMs !== null && now - o.signaledAt >= this.opts.signalTimeoutMs) {
        this.opts.log.warn(`Process ${pid} that a worker left behind is still alive; sending SIGKILL`);
        this.kill(pid, 'SIGKILL');
        o.killed = true;
      }
    }
    for (const pid of this.orphans.keys()) if (!seen.has(pid)) this.orphans.delete(pid);
    this.backstop();
    if (deferred && !this.retry && !this.stopped) {
      const gap = Math.min(SCAN_GAP_MAX_MS, this.lastChildren * SCAN_GAP_PER_CHILD_MS);
      this.retry = setTimeout(() => {
        this.retry = null;
        this.scan();
      }, Math.max(IN_FLIGHT_RETRY_MS, gap));
      this.retry.unref();
    }
    probe?.task('orphan-scan', now);
  }

  /**
   * The master is about to exit (no worker left): stop every process still left behind
   * (SIGTERM, SIGKILL after `timeoutMs`) and reap it, so that nothing outlives the master.
   */
  async drain(timeoutMs: number): Promise<void> {
    const others = () => ourChildren().filter((pid) => !this.opts.isWorker(pid) && !native.isSpawned(pid));
    const end = monotonicMs() + timeoutMs;
    let killed = false;
    for (;;) {
      this.scan(); // reaps zombies; with no worker left every live one gets SIGTERM
      const left = others();
      if (left.length === 0) return;
      if (!killed && monotonicMs() >= end) {
        for (const pid of left) this.kill(pid, 'SIGKILL');
        killed = true;
      } else if (killed && monotonicMs() >= end + 1000) {
        return; // unkillable (D state): give up rather than hang
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private reap(pid: number): void {
    try {
      const r = native.reapPid(pid);
      if (r) {
        this.orphans.delete(pid);
        this.opts.log.debug(`Reaped process ${pid} that a worker left behind (${r.signal ? `signal ${r.signal}` : `exit status ${r.code}`})`);
      }
    } catch (err) {
      this.opts.log.debug(`waitpid ${pid}: ${(err as Error).message}`);
    }
  }

  private kill(pid: number, signal: NodeJS.Signals): void {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone meanwhile */
    }
  }
}
