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

/** The workers of one generation, by state, counted as they change. */
export interface GenerationCount {
  /** Every record of the generation (stopping and killed ones too). */
  all: number;
  starting: number;
  up: number;
  /** Up and past min-ready. */
  ready: number;
}

const NONE: Readonly<GenerationCount> = Object.freeze({ all: 0, starting: 0, up: 0, ready: 0 });

export abstract class CoreState {
  protected readonly cfg: CoreConfig;
  protected readonly workers = new Map<number, Worker>();
  protected readonly byPid = new Map<number, Worker>();
  /**
   * The workers counted by generation and state, kept as they are added, change state and go
   * (addWorker, setState, setReady, dropWorker: the only ways to do those): the decision pass
   * runs after every event, and counting by a pass over 2,000 workers made a burst of 1,000
   * spawns, ACKs or exits O(n^2).
   */
  private readonly tally = new Map<number, GenerationCount>();
  /** Starting and up workers of every generation. */
  protected liveCount = 0;
  /** Starting workers of every generation. */
  protected startingCount = 0;
  /** Records by slot (with unique slots a new worker takes the lowest slot no record holds). */
  protected readonly slotUse = new Map<number, number>();
  /** No slot below this is free of records. */
  protected lowestFree = 0;
  /** wantedSlots changed, or a worker took a slot not in it, since step 2 of the pass last looked. */
  protected slotsDirty = true;
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
  /** Worker records looked at by the engine's passes so far (what a test counts: work per event). */
  protected visited = 0;

  constructor(config: Partial<CoreConfig> = {}) {
    this.cfg = { ...DEFAULT_CONFIG, ...config };
  }


  // ---- the workers and their counts --------------------------------------------

  /** Workers up in generations older than `generation` (one look per generation, not per worker). */
  protected upOlderThan(generation: number): number {
    let n = 0;
    for (const [g, c] of this.tally) if (g < generation) n += c.up;
    return n;
  }

  /** A generation's counts (all zero for one with no worker). */
  protected counted(generation: number): Readonly<GenerationCount> {
    return this.tally.get(generation) ?? NONE;
  }

  private countIn(w: Worker, sign: 1 | -1): void {
    let c = this.tally.get(w.generation);
    if (!c) {
      c = { all: 0, starting: 0, up: 0, ready: 0 };
      this.tally.set(w.generation, c);
    }
    c.all += sign;
    if (w.state === 'starting') {
      c.starting += sign;
      this.startingCount += sign;
      this.liveCount += sign;
    } else if (w.state === 'up') {
      c.up += sign;
      this.liveCount += sign;
      if (w.ready) c.ready += sign;
    }
    if (c.all === 0) this.tally.delete(w.generation);
  }

  protected addWorker(w: Worker): void {
    this.workers.set(w.id, w);
    this.countIn(w, 1);
    this.slotUse.set(w.slot, (this.slotUse.get(w.slot) ?? 0) + 1);
    if (this.cfg.wantedSlots && !this.cfg.wantedSlots.includes(w.slot)) this.slotsDirty = true;
  }

  protected dropWorker(w: Worker): void {
    if (this.workers.get(w.id) !== w) return;
    this.workers.delete(w.id);
    this.countIn(w, -1);
    const left = (this.slotUse.get(w.slot) ?? 1) - 1;
    if (left > 0) this.slotUse.set(w.slot, left);
    else {
      this.slotUse.delete(w.slot);
      if (w.slot < this.lowestFree) this.lowestFree = w.slot;
    }
  }

  protected setState(w: Worker, state: Worker['state']): void {
    if (w.state === state) return;
    const counted = this.workers.get(w.id) === w;
    if (counted) this.countIn(w, -1);
    const was = w.state;
    w.state = state;
    if (counted) this.countIn(w, 1);
    this.stateChanged(w, was);
  }

  protected setReady(w: Worker): void {
    if (w.ready) return;
    const counted = this.workers.get(w.id) === w;
    if (counted) this.countIn(w, -1);
    w.ready = true;
    if (counted) this.countIn(w, 1);
  }

  /** A worker's state changed (the decisions keep an order of retirement to put right). */
  protected stateChanged(_w: Worker, _was: Worker['state']): void {}

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
    this.visited += this.workers.size;
    return [...this.workers.values()].filter(pred);
  }

  protected count(pred: (w: Worker) => boolean): number {
    this.visited += this.workers.size;
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
