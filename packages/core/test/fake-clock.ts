/**
 * The one fake clock of the core's fake shells (sim.ts for one engine, fleet-sim.ts for
 * the Fleet): named timers and scheduled process exits, fired in
 * time order as the clock advances. Timers due at the same time fire in the order they were
 * first set; a timer fires before an exit due at the same time; exits due together go in
 * the order they were scheduled. And how a fake process takes a signal (fakeSignal).
 */
export type Due<X> = { timer: string } | { pid: number; exit: X };

export class FakeClock<X = undefined> {
  now = 0;
  /** When each timer is due, by key. */
  readonly timers = new Map<string, number>();
  /** Exits scheduled, by pid: when, and what the shell wants to know when it comes. */
  readonly exits = new Map<number, { at: number; exit: X }>();

  /** (Re)arm the timer `key` for `ms` from now. */
  setTimer(key: string, ms: number): void {
    this.timers.set(key, this.now + ms);
  }

  /** Schedule `pid`'s exit `ms` from now. */
  scheduleExit(pid: number, ms: number, exit: X): void {
    this.exits.set(pid, { at: this.now + ms, exit });
  }

  /** Move the clock by `ms`, handing each timer or exit that comes due to `fire` at its time (it is removed first). */
  advance(ms: number, fire: (due: Due<X>) => void): void {
    const end = this.now + ms;
    for (;;) {
      let next: Due<X> | null = null;
      let nextAt = Infinity;
      for (const [timer, at] of this.timers) if (at < nextAt) [next, nextAt] = [{ timer }, at];
      for (const [pid, x] of this.exits) if (x.at < nextAt) [next, nextAt] = [{ pid, exit: x.exit }, x.at];
      if (next === null || nextAt > end) break;
      this.now = nextAt;
      if ('timer' in next) this.timers.delete(next.timer);
      else this.exits.delete(next.pid);
      fire(next);
    }
    this.now = end;
  }
}

/** The signals a fake worker takes as "stop" (the engines' drain signals and shutdown's). */
const STOP_SIGNALS = ['SIGUSR2', 'SIGTERM', 'SIGINT', 'SIGQUIT'];

/**
 * A fake process of the shells receives `signal` (noted in its `signals`): SIGKILL kills it
 * at once ('killed': the shell reports the exit), a stop signal makes it exit after
 * `drainExitMs` ('drains': the shell schedules that), anything else, or a stop signal with
 * `drainExitMs` null, changes nothing (null). A dead process gets nothing.
 */
export function fakeSignal(p: { alive: boolean; signals: string[] }, signal: string, drainExitMs: number | null): 'killed' | 'drains' | null {
  if (!p.alive) return null;
  p.signals.push(signal);
  if (signal === 'SIGKILL') {
    p.alive = false;
    return 'killed';
  }
  return drainExitMs !== null && STOP_SIGNALS.includes(signal) ? 'drains' : null;
}
