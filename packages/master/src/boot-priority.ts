import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import type { WorkerState } from '@einhyrningsins/core';
import type { Logger } from './log.js';

/** RLIMIT_NICE's soft limit from /proc/self/limits (0 when unreadable: lowering nice needs privilege). */
function rlimitNice(): number {
  try {
    const m = /^Max nice priority\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return 0;
    return m[1] === 'unlimited' ? 40 : Number(m[1]);
  } catch {
    return 0;
  }
}

/** setpriority for every thread of `pid` (Linux's nice is per thread; PRIO_PROCESS takes one). */
function reniceAll(pid: number, nice: number): void {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return; // gone
  }
  // The main thread first: threads it creates from now on start at its niceness.
  tids.sort((a, b) => (Number(a) === pid ? -1 : Number(b) === pid ? 1 : Number(a) - Number(b)));
  for (const tid of tids) {
    try {
      setPriority(Number(tid), nice);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as { info?: { code?: string } }).info?.code;
      if (code === 'ESRCH' || /ESRCH|no such process/i.test((err as Error).message)) continue;
      throw err;
    }
  }
}

/**
 * During an upgrade the new workers boot at a lower CPU priority (niceness + `increment`)
 * so that they take less from the workers serving meanwhile; each one gets its normal
 * priority back as soon as it is up (acked), before it is given traffic to carry alone.
 * Only when the master may raise a priority again (root, or RLIMIT_NICE allows it):
 * otherwise a booted worker would stay slow.
 */
export class BootPriority {
  private readonly niced = new Map<number, number>();
  private enabled: boolean;

  constructor(
    private readonly increment: number,
    private readonly niceWorker: number | null,
    private readonly log: Logger,
  ) {
    const base = niceWorker ?? getPriority();
    const canRestore = process.getuid?.() === 0 || 20 - rlimitNice() <= base;
    this.enabled = increment > 0 && canRestore && base < 19;
    if (increment > 0 && !canRestore) {
      log.debug(`Not lowering booting workers' priority during upgrades: raising it back needs root or RLIMIT_NICE >= ${20 - base}`);
    }
  }

  /**
   * The niceness to start a worker at, or null for the normal one.
   * `olderUp`: whether a worker of an older generation is up (counted by the engine: a
   * snapshot of every worker here, at each of 1,000 spawns, was O(n^2)).
   */
  forSpawn(olderUp: () => boolean): number | null {
    if (!this.enabled) return null;
    // An upgrade spawn: older workers are serving while this one boots.
    if (!olderUp()) return null;
    return Math.min(19, (this.niceWorker ?? getPriority()) + this.increment);
  }

  spawned(pid: number): void {
    this.niced.set(pid, this.niceWorker ?? getPriority());
  }

  get pending(): boolean {
    return this.niced.size > 0;
  }

  /**
   * Give workers that are no longer starting (up, or on their way out) their priority back.
   * `stateOf`: a worker's state by pid (undefined: gone); looked up for the niced ones only,
   * not a snapshot of every worker after each event.
   */
  settle(stateOf: (pid: number) => WorkerState | undefined): void {
    if (this.niced.size === 0) return;
    for (const [pid, base] of this.niced) {
      const st = stateOf(pid);
      if (st === 'starting') continue;
      this.niced.delete(pid);
      if (st === undefined) continue; // exited
      try {
        reniceAll(pid, base);
        this.log.debug(`Worker ${pid} is up: back to niceness ${base}`);
      } catch (err) {
        this.enabled = false;
        this.log.warn(`Could not give worker ${pid} its priority back (${(err as Error).message}); booting workers keep their normal priority from now on`);
      }
    }
  }
}
