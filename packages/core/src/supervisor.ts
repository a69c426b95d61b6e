import type { CoreConfig, CoreSnapshot, CoreSummary, Effect, Event, ReplyTo, WorkerView } from './types.js';
import type { Upgrade, Worker } from './core-state.js';
import { EventHandlers } from './events.js';

export { DEFAULT_CONFIG, ackHelp } from './config.js';

/**
 * The rolling-restart engine. Feed it events with the time they happened;
 * it returns the effects the shell must carry out. It never reads a clock
 * and never touches a process.
 */
export class Supervisor extends EventHandlers {
  constructor(config: Partial<CoreConfig> = {}) {
    super(config);
  }

  handle(event: Event, now: number): Effect[] {
    this.now = now;
    this.out = [];
    this.dispatch(event);
    this.reconcile();
    // Replies last: a client told "Upgrade done" must find the old workers already asked
    // to drain (einhorn signals them in the same pass and answers on its next turn);
    // otherwise its next connection could land on an old worker that then exits.
    if (this.out.some((e) => e.type === 'reply')) {
      this.out = [...this.out.filter((e) => e.type !== 'reply'), ...this.out.filter((e) => e.type === 'reply')];
    }
    return this.out;
  }

  /**
   * One worker, by pid or by id, without copying every other (a shell asks this for each
   * spawn and exit: {@link snapshot} at each of them made 1,000 workers cost O(n^2)).
   */
  worker(ref: { pid: number } | { id: number }): WorkerView | undefined {
    const w = 'pid' in ref ? this.byPid.get(ref.pid) : this.workers.get(ref.id);
    return w ? view(w) : undefined;
  }

  /**
   * Worker records the engine's own passes have looked at so far: the work its decisions
   * cost, counted rather than timed (a test holds it to a bound per event).
   */
  get workVisited(): number {
    return this.visited;
  }

  /** Nothing in motion: no upgrade, no worker starting or stopping (O(1): the shell asks often). */
  get settled(): boolean {
    return this.upgrade === null && this.startingCount === 0 && this.liveCount === this.workers.size;
  }

  /** The shutdown signal while shutting down, else null. */
  get shutdownSignal(): string | null {
    return this.shuttingDown;
  }

  /** The engine's configuration now (a copy). */
  config(): CoreConfig {
    return { ...this.cfg };
  }

  /**
   * The counts sd_notify reports, in O(1): the shell asks after every batch of events, and a
   * snapshot (a copy of every worker) there made a burst of 1,000 O(n^2) under systemd.
   */
  summary(): CoreSummary {
    return {
      generation: this.generation,
      wanted: this.cfg.number,
      up: this.counted(this.generation).up,
      upgrading: this.upgrade !== null,
      lastUpgrade: this.lastUpgrade,
      shuttingDown: this.shuttingDown,
    };
  }

  /** Whether a worker of a generation older than `generation` is up (O(generations)). */
  olderUp(generation: number): boolean {
    return this.upOlderThan(generation) > 0;
  }

  /** How many workers the engine knows (any state). */
  get size(): number {
    return this.workers.size;
  }

  snapshot(): CoreSnapshot {
    const workers: WorkerView[] = [...this.workers.values()].map(view);
    return {
      config: { ...this.cfg },
      generation: this.generation,
      streak: this.streak,
      gaveUp: this.gaveUp,
      shuttingDown: this.shuttingDown,
      upgrade: this.upgrade
        ? {
            mode: this.upgrade.mode,
            generation: this.upgrade.generation,
            startedAt: this.upgrade.startedAt,
            failures: this.upgrade.failures,
          }
        : null,
      lastUpgrade: this.lastUpgrade,
      workers,
    };
  }

  // ---- hand-over across the master's re-exec (reload) ------------------------

  /**
   * Everything the engine knows, as plain JSON, for a new master image to carry on
   * from ({@link Supervisor.restore}). Times are ages at `now` (the two images have
   * different clocks). A running upgrade's waiters are not carried: their
   * connections belong to the old image's routes (the master refuses a reload
   * during an upgrade anyway).
   */
  serialize(now: number): SerializedCore {
    const age = (t: number | null) => (t === null ? null : now - t);
    return {
      format: 1,
      cfg: { ...this.cfg, retries: finite(this.cfg.retries), maxUnacked: finite(this.cfg.maxUnacked), maxUpgradeAdditional: finite(this.cfg.maxUpgradeAdditional) },
      workers: [...this.workers.values()]
        .filter((w) => w.pid !== null)
        .map((w) => ({
          ...w,
          signals: [...w.signals],
          spawnedAt: now - w.spawnedAt,
          ackedAt: age(w.ackedAt),
          signaledAt: age(w.signaledAt),
          pingedAt: age(w.pingedAt),
        })),
      nextId: this.nextId,
      generation: this.generation,
      streak: this.streak,
      lastFailureAge: now - this.lastFailureAt,
      lastProbeAckAge: now - this.lastProbeAckAt,
      gaveUp: this.gaveUp,
      shuttingDown: this.shuttingDown,
      started: this.started,
      upgrade: this.upgrade ? { ...this.upgrade, startedAt: now - this.upgrade.startedAt, waiters: [] } : null,
      lastUpgrade: this.lastUpgrade ? { ...this.lastUpgrade, finishedAt: now - this.lastUpgrade.finishedAt } : null,
      respawnAge: age(this.respawnAt),
      ackHelpShown: this.ackHelpShown,
    };
  }

  /**
   * The engine of {@link serialize}, at `now` on the new clock, with the timers it
   * had (ACK windows and deadlines, SIGKILL escalations, the backoff) re-armed for
   * what is left of them. `config` overrides what the new image was told on its
   * command line (the old one's run-time changes win over it). `elapsedMs` is the
   * time that passed between the serialize and now (the exec), added to every age.
   */
  static restore(data: SerializedCore, now: number, elapsedMs = 0): { core: Supervisor; effects: Effect[] } {
    if (data.format !== 1) throw new Error(`unknown core state format ${String(data.format)}`);
    const core = new Supervisor({
      ...data.cfg,
      retries: infinite(data.cfg.retries),
      maxUnacked: infinite(data.cfg.maxUnacked),
      maxUpgradeAdditional: infinite(data.cfg.maxUpgradeAdditional),
    });
    const e = Math.max(0, elapsedMs);
    const at = (age: number | null) => (age === null ? null : now - age - e);
    const effects: Effect[] = [];
    for (const sw of data.workers) {
      const w: Worker = {
        ...sw,
        signals: [...sw.signals],
        spawnedAt: now - sw.spawnedAt - e,
        ackedAt: at(sw.ackedAt),
        signaledAt: at(sw.signaledAt),
        pingedAt: at(sw.pingedAt),
      };
      core.addWorker(w);
      if (w.pid !== null) core.byPid.set(w.pid, w);
      const left = (ms: number, since: number) => Math.max(0, ms - (now - since));
      const mode = core.cfg.ackMode;
      if (w.state === 'starting') {
        if (mode.kind === 'timer') effects.push({ type: 'setTimer', key: `ack:${w.id}`, ms: left(mode.ms, w.spawnedAt) });
        else effects.push({ type: 'setTimer', key: `deadline:${w.id}`, ms: left(mode.deadlineMs, w.spawnedAt) });
      } else if (w.state === 'up' && w.ackedAt !== null) {
        // Still on probation: the min-ready window, and the stability window that ends a failure streak.
        if (!w.ready && core.cfg.minReadyMs > 0) effects.push({ type: 'setTimer', key: `ready:${w.id}`, ms: left(core.cfg.minReadyMs, w.ackedAt) });
        if (data.streak > 0 && now - w.ackedAt < core.cfg.stableAfterMs) {
          effects.push({ type: 'setTimer', key: `stable:${w.id}`, ms: left(core.cfg.stableAfterMs, w.ackedAt) });
        }
      } else if (w.state === 'stopping' && core.cfg.signalTimeoutMs !== null && w.signaledAt !== null) {
        effects.push({ type: 'setTimer', key: `kill:${w.id}`, ms: left(core.cfg.signalTimeoutMs, w.signaledAt) });
      }
    }
    core.nextId = data.nextId;
    core.ackHelpShown = data.ackHelpShown === true;
    core.generation = data.generation;
    core.streak = data.streak;
    core.lastFailureAt = now - data.lastFailureAge - e;
    core.lastProbeAckAt = now - (data.lastProbeAckAge ?? data.lastFailureAge) - e;
    core.gaveUp = data.gaveUp;
    core.shuttingDown = data.shuttingDown;
    core.started = data.started;
    core.upgrade = data.upgrade ? { ...data.upgrade, startedAt: now - data.upgrade.startedAt - e, waiters: [] } : null;
    core.lastUpgrade = data.lastUpgrade ? { ...data.lastUpgrade, finishedAt: now - data.lastUpgrade.finishedAt - e } : null;
    core.respawnAt = at(data.respawnAge);
    if (core.respawnAt !== null) effects.push({ type: 'setTimer', key: 'respawn', ms: Math.max(0, core.respawnAt - now) });
    return { core, effects };
  }

}

function view(w: Worker): WorkerView {
  return {
    id: w.id,
    pid: w.pid,
    slot: w.slot,
    generation: w.generation,
    state: w.state,
    spawnedAt: w.spawnedAt,
    ackedAt: w.ackedAt,
    ready: w.ready,
    signaledAt: w.signaledAt,
    signals: [...w.signals],
    stopReason: w.stopReason,
    pingedAt: w.pingedAt,
    pingRequestId: w.pingRequestId,
  };
}

/** JSON has no Infinity. */
function finite(n: number): number {
  return n === Infinity ? -1 : n;
}

function infinite(n: number): number {
  return n === -1 ? Infinity : n;
}

/** The engine's whole state as JSON (see Supervisor.serialize). */
export interface SerializedCore {
  format: 1;
  cfg: CoreConfig;
  workers: Array<Omit<Worker, never>>;
  nextId: number;
  generation: number;
  streak: number;
  lastFailureAge: number;
  lastProbeAckAge: number;
  gaveUp: boolean;
  shuttingDown: string | null;
  started: boolean;
  upgrade: (Omit<Upgrade, 'waiters'> & { waiters: ReplyTo[] }) | null;
  lastUpgrade: CoreSnapshot['lastUpgrade'];
  respawnAge: number | null;
  /** The how-to-ACK explanation was given (absent from older images: not yet). */
  ackHelpShown?: boolean;
}
