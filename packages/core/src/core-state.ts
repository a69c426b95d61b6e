/**
 * The engine's state and the small helpers every part of it uses (effects out,
 * workers by predicate). The decisions (decide.ts), the event handlers (events.ts)
 * and the public face (supervisor.ts) build on it, one concern per file.
 */
import type { CoreConfig, CoreSnapshot, Effect, LogLevel, ReplyTo, UpgradeMode, WorkerView } from './types.js';
import { DEFAULT_CONFIG } from './config.js';

/**
 * The engine's own record of a worker: the fields of the view it hands out (types.ts's
 * WorkerView, declared once there), its signals as a list it appends to, and what only the
 * engine needs.
 */
export interface Worker extends Omit<WorkerView, 'signals'> {
  signals: string[];
  /** Already counted as a failed start (missed its ack deadline). */
  counted: boolean;
}

export interface Upgrade {
  mode: UpgradeMode;
  generation: number;
  startedAt: number;
  failures: number;
  waiters: ReplyTo[];
}

export abstract class CoreState {
  protected readonly cfg: CoreConfig;
  protected readonly workers = new Map<number, Worker>();
  protected readonly byPid = new Map<number, Worker>();
  protected nextId = 1;
  protected generation = 0;
  protected streak = 0;
  protected lastFailureAt = 0;
  /** When the last probe (a worker acked during a streak of failed starts) acked. */
  protected lastProbeAckAt = 0;
  protected gaveUp = false;
  protected shuttingDown: string | null = null;
  protected started = false;
  protected exitSent = false;
  protected upgrade: Upgrade | null = null;
  protected lastUpgrade: CoreSnapshot['lastUpgrade'] = null;
  protected respawnAt: number | null = null;
  /** During an upgrade: when the last old worker was asked to drain (handover pacing). */
  protected lastHandoverAt = -Infinity;
  /** The `handover` timer is set for this time. */
  protected handoverAt: number | null = null;
  /** The how-to-ACK explanation goes with the first missed deadline only. */
  protected ackHelpShown = false;
  protected now = 0;
  protected out: Effect[] = [];

  constructor(config: Partial<CoreConfig> = {}) {
    this.cfg = { ...DEFAULT_CONFIG, ...config };
  }


  // ---- helpers --------------------------------------------------------------

  protected clearTimers(w: Worker, kinds: readonly string[] = ['ack', 'deadline', 'kill', 'ready', 'stable']): void {
    for (const k of kinds) this.effect({ type: 'clearTimer', key: `${k}:${w.id}` });
  }

  protected progress(message: string, w?: Worker, level: LogLevel = 'info'): void {
    this.log(level, message, w);
    if (this.upgrade) {
      for (const to of this.upgrade.waiters) this.out.push({ type: 'reply', to, message, wait: true, ok: true });
    }
  }

  protected log(level: LogLevel, message: string, w?: Worker): void {
    const e: Effect = { type: 'log', level, message };
    if (w?.pid != null) e.pid = w.pid;
    if (w) e.slot = w.slot;
    this.out.push(e);
  }

  protected reply(to: ReplyTo | undefined, message: string, ok: boolean, wait = false): void {
    if (to !== undefined) this.out.push({ type: 'reply', to, message, wait, ok });
  }

  protected effect(e: Effect): void {
    this.out.push(e);
  }

  protected list(pred: (w: Worker) => boolean): Worker[] {
    return [...this.workers.values()].filter(pred);
  }

  protected count(pred: (w: Worker) => boolean): number {
    let n = 0;
    for (const w of this.workers.values()) if (pred(w)) n += 1;
    return n;
  }

  protected pids(pred: (w: Worker) => boolean): number[] {
    return this.list(pred)
      .map((w) => w.pid)
      .filter((p): p is number => p !== null);
  }
}
