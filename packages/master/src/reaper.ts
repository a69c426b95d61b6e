import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as native from 'native-reuseport';
import type { Logger } from './log.js';

/** How often orphans are looked for (reparenting sends no signal; exits send SIGCHLD). */
const SCAN_EVERY_MS = 1000;

export interface ReaperOptions {
  /** A child Node spawned (a worker): never waited for here, or its exit would be lost to Node. */
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
}

function stat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '?', pgid: Number(f[2]), sid: Number(f[3]) };
  } catch {
    return null;
  }
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
 * Zombies are waited for at once (on SIGCHLD); a live orphan that no live worker's process
 * group or session claims any more gets SIGTERM, then SIGKILL after the signal timeout.
 */
export class Reaper {
  private readonly signaled = new Map<number, { at: number; killed: boolean }>();
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private readonly onChld = () => this.schedule();

  constructor(private readonly opts: ReaperOptions) {}

  /** Become a subreaper (when asked) and start watching. */
  start(subreaper: boolean): void {
    if (subreaper) native.setChildSubreaper(true);
    process.on('SIGCHLD', this.onChld);
    this.timer = setInterval(() => this.scan(), SCAN_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    process.off('SIGCHLD', this.onChld);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.scan();
    });
  }

  /** One pass over our children that are not workers. */
  scan(): void {
    const now = performance.now();
    let live: Set<number> | null = null;
    const seen = new Set<number>();
    for (const pid of ourChildren()) {
      if (this.opts.isWorker(pid)) continue;
      const st = stat(pid);
      if (!st) continue;
      seen.add(pid);
      if (st.state === 'Z' || st.state === 'X') {
        this.reap(pid);
        continue;
      }
      live ??= new Set(this.opts.workers());
      if (live.has(st.pgid) || live.has(st.sid)) continue;
      const s = this.signaled.get(pid);
      if (!s) {
        this.opts.log.info(`Stopping process ${pid} that a worker left behind (SIGTERM)`);
        this.kill(pid, 'SIGTERM');
        this.signaled.set(pid, { at: now, killed: false });
      } else if (!s.killed && this.opts.signalTimeoutMs !== null && now - s.at >= this.opts.signalTimeoutMs) {
        this.opts.log.warn(`Process ${pid} that a worker left behind is still alive; sending SIGKILL`);
        this.kill(pid, 'SIGKILL');
        s.killed = true;
      }
    }
    for (const pid of this.signaled.keys()) if (!seen.has(pid)) this.signaled.delete(pid);
  }

  private reap(pid: number): void {
    try {
      const r = native.reapPid(pid);
      if (r) {
        this.signaled.delete(pid);
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
