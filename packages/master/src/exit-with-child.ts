/**
 * --exit-with-child (overseer's model): when the worker exits by itself, not because an
 * upgrade or a stop asked it to, the master drains and exits with the worker's status, so
 * that the process manager above it (systemd, upstart, supervisord) applies its own
 * restart policy. The decision is pure (`unaskedExit`); the class only remembers the status.
 */
import { constants } from 'node:os';
import type { CoreSnapshot, Event } from '@einhyrningsins/core';
import type { Logger } from './log.js';

/** What a shell reports for a child: its exit code, or 128 + the number of the signal that killed it. */
export function shellStatus(code: number | null, signal: string | null): number {
  if (code !== null) return code;
  const n = signal === null ? undefined : constants.signals[signal as NodeJS.Signals];
  return n === undefined ? 1 : 128 + n;
}

/**
 * Did worker `pid` exit without being asked to? `snap` is the group's state as the exit is
 * reported, before the core hears of it. Not unasked: a worker the master was stopping
 * (upgrade, scale-down, stop, a missed ACK deadline), any exit while the master shuts down,
 * and a new worker of an upgrade in progress (its failure is the upgrade's: the old worker
 * keeps serving and the upgrade reply says so).
 */
export function unaskedExit(snap: CoreSnapshot, pid: number): boolean {
  const w = snap.workers.find((x) => x.pid === pid);
  if (!w) return false;
  if (w.state === 'stopping' || w.state === 'killed') return false;
  if (snap.shuttingDown !== null) return false;
  if (snap.upgrade !== null && w.generation === snap.upgrade.generation) return false;
  return true;
}

export interface ExitWithChildHost {
  snapshot(): CoreSnapshot;
  feed(event: Event): void;
  stopSignal: string;
  log: Logger;
}

export class ExitWithChild {
  /** The status the master exits with, once a worker exited unasked. */
  status: number | null = null;

  constructor(private readonly host: ExitWithChildHost) {}

  /**
   * A worker exited (called before the core hears of it). On an unasked exit the group is
   * told to shut down first, so that the core drains instead of starting a replacement.
   * (The core's stop signal then goes to the pid just reaped: ESRCH, ignored; Linux hands
   * out pids in order, so it is not someone else's yet.)
   */
  childExited(pid: number, code: number | null, signal: string | null): void {
    if (this.status !== null || !unaskedExit(this.host.snapshot(), pid)) return;
    this.status = shellStatus(code, signal);
    const how = code !== null ? `with status ${code}` : `on ${signal ?? 'an unknown signal'}`;
    this.host.log.warn(`Worker ${pid} exited ${how}; --exit-with-child: stopping, the master exits with status ${this.status}`);
    this.host.feed({ type: 'shutdown', signal: this.host.stopSignal });
  }

  /** The master's exit code: the child's status if one exited unasked, else `code`. */
  exitCode(code: number): number {
    return this.status ?? code;
  }
}
