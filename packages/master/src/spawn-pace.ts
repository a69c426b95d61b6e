/**
 * Pacing a burst of spawns by the machine's runnable threads (issue 24). A thousand workers
 * booting at once on two cores put tens of threads on the run queues (20-100 seen), and every
 * thread that wakes waits its turn behind them: the master's event loop (ACKs, operator
 * commands) and the workers themselves. The loop thread waited for a CPU longer than it ran,
 * and round trips reached 100-230 ms. Spawning faster than the CPUs can boot workers gains
 * nothing (they queue for the same CPUs), so a burst keeps the machine's runnable threads at
 * most `perCpu` per CPU (2 by default) above what they were when it began (the others' load, the master
 * included): while over, the next batch waits and looks again every `retryMs`. Workers that
 * boot without using the CPU (waiting on I/O) leave it under the limit: never held. A batch
 * never waits longer than `maxHoldMs` (other processes' load coming up during a burst must
 * not stall it). Pure: the caller reads the runnable threads (/proc/loadavg) and the clock.
 */

export interface SpawnPaceConfig {
  /** CPUs this process may run on. */
  cpus: number;
  /** Runnable threads allowed above the burst's base, per CPU. */
  perCpu: number;
  /** A batch waits at most this long for the runnable threads to come down (then goes anyway). */
  maxHoldMs: number;
  /** While a batch waits, the runnable threads are looked at again this often. */
  retryMs: number;
}

export const DEFAULT_SPAWN_PACE: Omit<SpawnPaceConfig, 'cpus'> = { perCpu: 2, maxHoldMs: 20, retryMs: 1 };

export type PaceDecision = { go: true } | { go: false; retryMs: number };

export class SpawnPace {
  private base: number | null = null;
  private heldSince: number | null = null;
  /** Batches that had to wait in this burst (for the log). */
  held = 0;

  constructor(private readonly cfg: SpawnPaceConfig) {}

  /** Runnable threads allowed during this burst (null: not begun, or nothing to read). */
  get limit(): number | null {
    return this.base === null ? null : this.base + Math.max(1, Math.round(this.cfg.perCpu * Math.max(1, this.cfg.cpus)));
  }

  /**
   * A burst begins (nothing queued, nothing in flight): the threads runnable now are the
   * others' (this process's one included). NaN (unreadable): the burst is not paced.
   */
  begin(runnable: number): void {
    this.base = Number.isFinite(runnable) ? runnable : null;
    this.heldSince = null;
    this.held = 0;
  }

  /** Before the next batch of the burst: go now, or look again in retryMs. */
  decide(now: number, runnable: number): PaceDecision {
    const limit = this.limit;
    if (limit === null || !Number.isFinite(runnable) || runnable <= limit) {
      this.heldSince = null;
      return { go: true };
    }
    if (this.heldSince === null) {
      this.heldSince = now;
      this.held += 1;
    }
    const left = this.heldSince + this.cfg.maxHoldMs - now;
    if (left <= 0) {
      this.heldSince = null;
      return { go: true };
    }
    return { go: false, retryMs: Math.min(this.cfg.retryMs, left) };
  }
}
