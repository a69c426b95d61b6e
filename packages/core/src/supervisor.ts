import type {
  CoreConfig,
  CoreSnapshot,
  Effect,
  Event,
  LogLevel,
  ReplyTo,
  UpgradeMode,
  WorkerState,
  WorkerView,
} from './types.js';
import { backoffDelay } from './backoff.js';

interface Worker {
  id: number;
  pid: number | null;
  slot: number;
  generation: number;
  state: WorkerState;
  spawnedAt: number;
  ackedAt: number | null;
  /** Up for minReadyMs: counts towards an upgrade. */
  ready: boolean;
  signaledAt: number | null;
  signals: string[];
  stopReason: string | null;
  /** Already counted as a failed start (missed its ack deadline). */
  counted: boolean;
  pingedAt: number | null;
  pingRequestId: string | number | null;
}

interface Upgrade {
  mode: UpgradeMode;
  generation: number;
  startedAt: number;
  failures: number;
  waiters: ReplyTo[];
}

export const DEFAULT_CONFIG: Readonly<CoreConfig> = Object.freeze<CoreConfig>({
  number: 1,
  ackMode: { kind: 'timer', ms: 1000 },
  retries: Infinity,
  upgradeRetries: 3,
  respawnDelayMs: 1000,
  backoffCapMs: 30_000,
  stableAfterMs: 10_000,
  minReadyMs: 0,
  signalTimeoutMs: 30_000,
  drainSignal: 'SIGUSR2',
  maxUnacked: Infinity,
  maxUpgradeAdditional: Infinity,
  slots: 'unique',
  respawn: true,
});

const MAX_WORKERS = 10_000;

/**
 * The rolling-restart engine. Feed it events with the time they happened;
 * it returns the effects the shell must carry out. It never reads a clock
 * and never touches a process.
 */
/**
 * What to do about a missed manual-mode ACK deadline: said once (with the first one),
 * so that a worker that does not know the protocol learns it from the log.
 */
export function ackHelp(secs: number): string {
  return (
    `In manual ACK mode (-m manual) each worker must say it is ready within ${secs}s (--ack-timeout): ` +
    'connect to the UNIX socket named in its EINHORN_SOCK_PATH and send the line ' +
    '{"command":"worker:ack","pid":<its pid>} followed by a newline; ' +
    "in Node, the worker library does it: import { ack } from 'einhyrningsins/worker'; await ack(). " +
    'Or let the master count a worker up once it has lived SECONDS, with timer mode: -m SECONDS. ' +
    '(This is said once; later misses log one line each.)'
  );
}

export class Supervisor {
  private readonly cfg: CoreConfig;
  private readonly workers = new Map<number, Worker>();
  private readonly byPid = new Map<number, Worker>();
  private nextId = 1;
  private generation = 0;
  private streak = 0;
  private lastFailureAt = 0;
  /** When the last probe (a worker acked during a streak of failed starts) acked. */
  private lastProbeAckAt = 0;
  private gaveUp = false;
  private shuttingDown: string | null = null;
  private started = false;
  private exitSent = false;
  private upgrade: Upgrade | null = null;
  private lastUpgrade: CoreSnapshot['lastUpgrade'] = null;
  private respawnAt: number | null = null;
  /** The how-to-ACK explanation goes with the first missed deadline only. */
  private ackHelpShown = false;
  private now = 0;
  private out: Effect[] = [];

  constructor(config: Partial<CoreConfig> = {}) {
    this.cfg = { ...DEFAULT_CONFIG, ...config };
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

  snapshot(): CoreSnapshot {
    const workers: WorkerView[] = [...this.workers.values()].map((w) => ({
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
    }));
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

  // ---- events ---------------------------------------------------------------

  private dispatch(ev: Event): void {
    switch (ev.type) {
      case 'start':
        if (!this.started) {
          this.started = true;
          this.log('info', `Starting ${this.cfg.number} worker${this.cfg.number === 1 ? '' : 's'}`);
        }
        return;
      case 'spawned':
        return this.onSpawned(ev.id, ev.pid);
      case 'spawnFailed':
        return this.onSpawnFailed(ev.id, ev.error);
      case 'exited':
        return this.onExited(ev.pid, ev.code, ev.signal);
      case 'ack':
        return this.onAck(ev.pid);
      case 'ping': {
        const w = this.byPid.get(ev.pid);
        if (!w) return this.log('warn', `Could not find state for PID ${ev.pid}; ignoring ping.`);
        w.pingedAt = this.now;
        w.pingRequestId = ev.requestId;
        return;
      }
      case 'timer':
        return this.onTimer(ev.key);
      case 'inc':
        return this.setTarget(this.cfg.number + 1, ev.replyTo, 'inc');
      case 'dec':
        if (this.cfg.number <= 0) {
          return this.reply(ev.replyTo, `Can't decrease number of workers (already at 0).`, false);
        }
        return this.setTarget(this.cfg.number - 1, ev.replyTo, 'dec');
      case 'setWorkers':
        if (!Number.isInteger(ev.count) || ev.count < 0 || ev.count > MAX_WORKERS) {
          return this.reply(ev.replyTo, `Invalid count: '${ev.count}'. Must be an integer in [0,${MAX_WORKERS}].`, false);
        }
        return this.setTarget(ev.count, ev.replyTo, 'set');
      case 'upgrade':
        return this.onUpgrade(ev.mode, ev.replyTo);
      case 'signal':
        return this.onSignal(ev.signals, ev.replyTo);
      case 'shutdown':
        return this.onShutdown(ev.signal, ev.replyTo);
      case 'configure': {
        Object.assign(this.cfg, ev.changes);
        const what = Object.entries(ev.changes)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ');
        this.log('info', `Configuration changed: ${what}`);
        return this.reply(ev.replyTo, `Successfully merged in config: ${what}`, true);
      }
    }
  }

  private onSpawned(id: number, pid: number): void {
    const w = this.workers.get(id);
    if (!w) return;
    w.pid = pid;
    this.byPid.set(pid, w);
    this.progress(`===> Launched ${pid} (index: ${w.slot})`, w);
    if (w.state === 'stopping' || w.state === 'killed') {
      // Retired (shutdown) before we knew its pid: deliver the signal now.
      const sig = w.signals[w.signals.length - 1] ?? this.cfg.drainSignal;
      this.effect({ type: 'kill', pid, signal: sig });
      return;
    }
    const mode = this.cfg.ackMode;
    if (mode.kind === 'timer') this.effect({ type: 'setTimer', key: `ack:${id}`, ms: mode.ms });
    else this.effect({ type: 'setTimer', key: `deadline:${id}`, ms: mode.deadlineMs });
  }

  private onSpawnFailed(id: number, error: string): void {
    const w = this.workers.get(id);
    if (!w) return;
    this.workers.delete(id);
    this.log('error', `Could not start worker (index: ${w.slot}): ${error}`, w);
    this.recordFailure(w, `(index ${w.slot}) could not be started: ${error}`);
  }

  private onExited(pid: number, code: number | null, signal: string | null): void {
    const w = this.byPid.get(pid);
    if (!w) {
      this.log('debug', `Reaped unknown child ${pid}`);
      return;
    }
    this.byPid.delete(pid);
    this.workers.delete(w.id);
    this.clearTimers(w);
    const how = signal ? `killed by ${signal}` : `exit status ${code ?? '?'}`;
    if (w.state === 'stopping' || w.state === 'killed') {
      this.progress(`===> Exited worker ${pid} (${how})`, w);
      return;
    }
    if (!this.cfg.respawn) {
      // One-shot: a worker that ends is not replaced.
      this.cfg.number = Math.max(0, this.cfg.number - 1);
      this.progress(`===> Worker ${pid} ended (${how}); not replaced (one-shot), ${this.cfg.number} left`, w);
      return;
    }
    if (w.state === 'starting') {
      this.progress(`===> Exited worker ${pid} before it was ACKed (${how})`, w, 'warn');
      if (!w.counted) this.recordFailure(w, `${pid} (index ${w.slot}) exited before it was acked (${how})`);
      return;
    }
    // An acked worker died without being asked to.
    const upFor = this.now - (w.ackedAt ?? w.spawnedAt);
    if (upFor < this.cfg.stableAfterMs) {
      this.log('warn', `Worker ${pid} exited ${Math.round(upFor)} ms after its ack (${how})`, w);
      this.recordFailure(w, `${pid} (index ${w.slot}) exited ${Math.round(upFor)} ms after its ack (${how})`);
    } else {
      this.log('warn', `Worker ${pid} exited unexpectedly (${how}); replacing it`, w);
    }
  }

  private onAck(pid: number): void {
    const w = this.byPid.get(pid);
    if (!w) {
      this.log('warn', `Could not find state for PID ${pid}; ignoring ACK.`);
      return;
    }
    if (w.state !== 'starting') {
      this.log(w.state === 'up' ? 'warn' : 'debug', `Pid ${pid} already ACKed or stopping; ignoring new ACK.`, w);
      return;
    }
    this.markUp(w, 'manual');
  }

  /**
   * An ack is a promise, not yet a success: the streak of failed starts ends only when
   * this worker has lived stableAfterMs after it (an exit sooner is one more failed start),
   * and an upgrade counts it once it has been up for minReadyMs.
   */
  private markUp(w: Worker, how: 'manual' | 'timer'): void {
    w.state = 'up';
    w.ackedAt = this.now;
    this.clearTimers(w, ['ack', 'deadline']);
    if (this.cfg.minReadyMs > 0) this.effect({ type: 'setTimer', key: `ready:${w.id}`, ms: this.cfg.minReadyMs });
    else w.ready = true;
    if (this.streak > 0) {
      this.lastProbeAckAt = this.now;
      this.effect({ type: 'setTimer', key: `stable:${w.id}`, ms: this.cfg.stableAfterMs });
    }
    const upCount = this.count((x) => x.generation === this.generation && x.state === 'up');
    let msg = `Up to ${upCount} / ${this.cfg.number} ${how} ACKs`;
    if (this.streak > 0) msg += ` (after ${this.streak} failed start${this.streak === 1 ? '' : 's'}: on probation for ${this.cfg.stableAfterMs / 1000}s)`;
    this.progress(msg, w);
  }

  /** A worker acked after the last failed start has lived stableAfterMs: the streak is over. */
  private onStable(w: Worker): void {
    if (w.state !== 'up' || w.ackedAt === null || this.streak === 0 || this.lastFailureAt > w.ackedAt) return;
    this.log('info', `Worker ${w.pid} is stable, breaking the streak of ${this.streak} failed starts`, w);
    this.streak = 0;
    this.gaveUp = false;
    this.respawnAt = null;
  }

  private onTimer(key: string): void {
    const sep = key.indexOf(':');
    const kind = sep < 0 ? key : key.slice(0, sep);
    if (kind === 'respawn') {
      this.respawnAt = null;
      return;
    }
    const w = this.workers.get(Number(key.slice(sep + 1)));
    if (!w) return;
    if (kind === 'ack' && w.state === 'starting') {
      this.markUp(w, 'timer');
    } else if (kind === 'ready' && w.state === 'up') {
      w.ready = true;
    } else if (kind === 'stable') {
      this.onStable(w);
    } else if (kind === 'deadline' && w.state === 'starting') {
      const secs = (this.cfg.ackMode.kind === 'manual' ? this.cfg.ackMode.deadlineMs : 0) / 1000;
      this.log('error', `Worker ${w.pid} did not ACK within ${secs}s; stopping it`, w);
      if (!this.ackHelpShown) {
        this.ackHelpShown = true;
        this.log('error', ackHelp(secs));
      }
      w.counted = true;
      this.retire(w, 'no ack before the deadline', this.cfg.drainSignal);
      this.recordFailure(w, `${w.pid} (index ${w.slot}) did not ack within ${secs}s`);
    } else if (kind === 'kill' && (w.state === 'stopping' || w.state === 'killed') && w.pid !== null) {
      this.log('warn', `Child ${w.pid} is still active after ${(this.cfg.signalTimeoutMs ?? 0) / 1000}s. Sending SIGKILL.`, w);
      w.state = 'killed';
      w.signals.push('SIGKILL');
      w.signaledAt = this.now;
      this.effect({ type: 'kill', pid: w.pid, signal: 'SIGKILL' });
    }
  }

  private setTarget(n: number, replyTo: ReplyTo | undefined, how: 'inc' | 'dec' | 'set'): void {
    const old = this.cfg.number;
    if (n > MAX_WORKERS) {
      return this.reply(replyTo, `Can't increase number of workers beyond ${MAX_WORKERS}.`, false);
    }
    this.cfg.number = n;
    this.gaveUp = false;
    this.streak = 0;
    this.respawnAt = null;
    let msg: string;
    if (how === 'inc') msg = `Incrementing number of workers from ${old} -> ${n}`;
    else if (how === 'dec') msg = `Decrementing number of workers from ${old} -> ${n}`;
    else if (n === old) msg = `Worker count is already ${n}`;
    else if (n > old) msg = `Altering worker count, ${old} -> ${n}. Will spin up additional workers.`;
    else msg = `Altering worker count, ${old} -> ${n}. Will gracefully terminate workers.`;
    if (this.shuttingDown) msg += ' (shutting down: no new workers will start)';
    this.log('info', msg);
    this.reply(replyTo, msg, true);
  }

  private onUpgrade(mode: UpgradeMode, replyTo: ReplyTo | undefined): void {
    if (this.shuttingDown) {
      return this.reply(replyTo, 'Not upgrading: the master is shutting down.', false);
    }
    const from = this.generation;
    this.generation += 1;
    this.streak = 0;
    this.gaveUp = false;
    this.respawnAt = null;
    const as = mode === 'smooth' ? 'smoothly' : 'fleet';
    if (this.upgrade) {
      const acked = this.count((w) => w.generation === from && w.state === 'up');
      const up = this.upgrade;
      up.mode = mode;
      up.generation = this.generation;
      up.failures = 0;
      this.reply(replyTo, `Upgrade merged into the running one: upgrading ${as} to generation ${this.generation}`, true, true);
      if (replyTo !== undefined) up.waiters.push(replyTo);
      this.progress(
        `Currently upgrading (${acked} / ${this.cfg.number} ACKs; bumping version and starting over)...`,
      );
      return;
    }
    this.upgrade = {
      mode,
      generation: this.generation,
      startedAt: this.now,
      failures: 0,
      waiters: replyTo === undefined ? [] : [replyTo],
    };
    this.reply(replyTo, `Upgrading ${as}, as commanded`, true, true);
    this.progress(`Starting ${mode} upgrade from generation ${from} to ${this.generation}...`);
  }

  private onSignal(signals: string[], replyTo: ReplyTo | undefined): void {
    const pids = this.pids((w) => w.pid !== null);
    for (const sig of signals) for (const pid of pids) this.effect({ type: 'kill', pid, signal: sig });
    const msg = `Sent ${signals.join(', ')} to ${pids.length} worker${pids.length === 1 ? '' : 's'}`;
    this.log('info', pids.length ? `${msg}: [${pids.join(', ')}]` : msg);
    this.reply(replyTo, msg, true);
  }

  private onShutdown(signal: string, replyTo: ReplyTo | undefined): void {
    if (this.shuttingDown) {
      // Asked again: stop waiting.
      const pids = this.pids((w) => w.pid !== null && w.state !== 'killed');
      for (const w of this.workers.values()) {
        if (w.pid === null || w.state === 'killed') continue;
        w.state = 'killed';
        w.signals.push('SIGKILL');
        this.effect({ type: 'kill', pid: w.pid, signal: 'SIGKILL' });
      }
      this.log('warn', `Asked to stop again: sending SIGKILL to [${pids.join(', ')}]`);
      this.reply(replyTo, `Already going down; sent SIGKILL to ${pids.length} workers`, true);
      return;
    }
    this.shuttingDown = signal;
    if (this.upgrade) this.finishUpgrade(false, 'the master is shutting down');
    let n = 0;
    for (const w of this.workers.values()) {
      if (w.state === 'killed') continue;
      this.retire(w, 'shutdown', signal);
      n += 1;
    }
    this.log('info', `Shutting down: sent ${signal} to ${n} worker${n === 1 ? '' : 's'}`);
    this.reply(replyTo, `Einhorn is going down! Sent ${signal} to ${n} worker${n === 1 ? '' : 's'}.`, true);
  }

  // ---- the decision pass ----------------------------------------------------

  private reconcile(): void {
    if (this.shuttingDown) {
      if (this.workers.size === 0 && !this.exitSent) {
        this.exitSent = true;
        this.log('info', 'All workers are gone; exiting');
        this.effect({ type: 'exit', code: 0 });
      }
      return;
    }
    if (!this.started) return;
    const target = this.cfg.number;
    const gen = this.generation;
    const isCur = (w: Worker) => w.generation === gen;
    const live = (w: Worker) => w.state === 'starting' || w.state === 'up';

    const ready = (w: Worker) => w.state === 'up' && w.ready;
    // 1. An upgrade is done once the new generation alone can carry the load (up for minReadyMs).
    if (this.upgrade && this.count((w) => isCur(w) && ready(w)) >= target) {
      this.finishUpgrade(true, `Upgraded successfully to generation ${gen}.`);
    }

    // 2. Retire what is too much.
    if (this.upgrade) {
      const cur = this.list((w) => isCur(w) && live(w));
      if (cur.length > target) this.retireSome(cur, cur.length - target, 'too many workers');
      if (this.upgrade.mode === 'smooth') {
        const old = this.list((w) => !isCur(w) && live(w));
        const curUp = this.count((w) => isCur(w) && ready(w));
        const excess = old.length + curUp - target;
        if (excess > 0) {
          this.progress(`Smooth upgrade: killing off ${Math.min(excess, old.length)} old workers.`);
          this.retireSome(old, excess, 'replaced by a new generation');
        }
      }
    } else {
      const all = this.list(live);
      if (all.length > target) this.retireSome(all, all.length - target, 'too many workers');
    }

    // 3. Start what is missing.
    if (this.gaveUp) return;
    const curLive = this.count((w) => isCur(w) && live(w));
    const missing = this.upgrade ? target - curLive : target - this.count(live);
    if (missing <= 0) return;
    const starting = this.count((w) => isCur(w) && w.state === 'starting');
    let n = Math.min(missing, this.cfg.maxUnacked - starting);
    if (this.upgrade) {
      n = Math.min(n, target + this.cfg.maxUpgradeAdditional - this.workers.size);
    }
    if (this.streak > 0) {
      // Failing: probe with one worker at a time, each the backoff delay after the last
      // failure and after the previous probe's ack (which may yet turn out to be a failure).
      if (starting > 0) return;
      const at =
        Math.max(this.lastFailureAt, this.lastProbeAckAt) + backoffDelay(this.streak, this.cfg.respawnDelayMs, this.cfg.backoffCapMs);
      if (this.now < at) {
        if (this.respawnAt !== at) {
          this.respawnAt = at;
          this.effect({ type: 'setTimer', key: 'respawn', ms: at - this.now });
        }
        return;
      }
      n = Math.min(n, 1);
    }
    for (let i = 0; i < n; i++) this.spawn();
  }

  private spawn(): void {
    const used = new Set<number>();
    const named = this.cfg.slots === 'named';
    for (const w of this.workers.values()) {
      if (!named || (w.generation === this.generation && (w.state === 'starting' || w.state === 'up'))) used.add(w.slot);
    }
    let slot = 0;
    while (used.has(slot)) slot += 1;
    const w: Worker = {
      id: this.nextId++,
      pid: null,
      slot,
      generation: this.generation,
      state: 'starting',
      spawnedAt: this.now,
      ackedAt: null,
      ready: false,
      signaledAt: null,
      signals: [],
      stopReason: null,
      counted: false,
      pingedAt: null,
      pingRequestId: null,
    };
    this.workers.set(w.id, w);
    this.effect({ type: 'spawn', id: w.id, slot, generation: w.generation });
  }

  /** Retire `n` of `pool`: unacked before acked, then older generations, then the youngest. */
  private retireSome(pool: Worker[], n: number, reason: string): void {
    let order: Worker[];
    if (this.cfg.slots === 'named') {
      // Older generations first; among them the ones whose name a new up worker
      // already has; then the highest numbers (Heroku scales down from the top).
      const taken = new Set(this.list((w) => w.generation === this.generation && w.state === 'up').map((w) => w.slot));
      const replaced = (w: Worker) => Number(w.generation !== this.generation && taken.has(w.slot));
      order = [...pool].sort((a, b) => a.generation - b.generation || replaced(b) - replaced(a) || b.slot - a.slot || a.id - b.id);
    } else {
      order = [...pool].sort(
        (a, b) =>
          Number(a.state === 'up') - Number(b.state === 'up') ||
          a.generation - b.generation ||
          (a.state === 'up' && b.state === 'up' ? a.spawnedAt - b.spawnedAt : b.spawnedAt - a.spawnedAt) ||
          a.id - b.id,
      );
    }
    const victims = order.slice(0, Math.max(0, n));
    for (const w of victims) this.retire(w, reason, this.cfg.drainSignal);
    const pids = victims.map((w) => w.pid).filter((p) => p !== null);
    if (pids.length) this.progress(`Sending ${this.cfg.drainSignal} to [${pids.join(', ')}]`);
  }

  private retire(w: Worker, reason: string, signal: string): void {
    w.state = 'stopping';
    w.stopReason = reason;
    w.signals.push(signal);
    w.signaledAt = this.now;
    this.clearTimers(w, ['ack', 'deadline', 'ready', 'stable']);
    if (w.pid !== null) this.effect({ type: 'kill', pid: w.pid, signal });
    if (this.cfg.signalTimeoutMs !== null) {
      this.effect({ type: 'setTimer', key: `kill:${w.id}`, ms: this.cfg.signalTimeoutMs });
    }
  }

  private recordFailure(w: Worker, why: string): void {
    this.streak += 1;
    this.lastFailureAt = this.now;
    const up = this.upgrade;
    if (up && w.generation === up.generation) {
      up.failures += 1;
      if (up.failures > this.cfg.upgradeRetries) {
        this.finishUpgrade(
          false,
          `Upgrade to generation ${up.generation} failed: a new worker ${why}, ${up.failures} failed starts ` +
            `(limit ${this.cfg.upgradeRetries} retries); the previous workers keep serving.`,
        );
        return;
      }
    }
    if (this.streak > this.cfg.retries) {
      this.gaveUp = true;
      this.log(
        'error',
        `Giving up after ${this.streak} consecutive failed starts (last: ${why}). ` +
          `Run upgrade, inc or set_workers to try again.`,
      );
      if (this.upgrade) this.finishUpgrade(false, `Upgrade failed: giving up after ${this.streak} failed starts (last: ${why}).`);
      return;
    }
    const delay = backoffDelay(this.streak, this.cfg.respawnDelayMs, this.cfg.backoffCapMs);
    this.log('info', `${this.streak} consecutive failed start${this.streak === 1 ? '' : 's'}; next attempt in ${delay / 1000}s`);
  }

  private finishUpgrade(ok: boolean, message: string): void {
    const up = this.upgrade;
    if (!up) return;
    this.upgrade = null;
    this.lastUpgrade = { generation: up.generation, ok, message, finishedAt: this.now };
    this.log(ok ? 'info' : 'error', message);
    for (const to of up.waiters) {
      this.out.push({ type: 'reply', to, message, wait: true, ok });
      this.out.push({ type: 'reply', to, message: ok ? 'Upgrade done' : 'Upgrade failed', wait: false, ok });
    }
    if (!ok) {
      // Stop the new generation's workers that never came up; the acked ones keep serving.
      for (const w of this.workers.values()) {
        if (w.generation === up.generation && w.state === 'starting') this.retire(w, 'upgrade abandoned', this.cfg.drainSignal);
      }
    }
  }

  // ---- helpers --------------------------------------------------------------

  private clearTimers(w: Worker, kinds: readonly string[] = ['ack', 'deadline', 'kill', 'ready', 'stable']): void {
    for (const k of kinds) this.effect({ type: 'clearTimer', key: `${k}:${w.id}` });
  }

  private progress(message: string, w?: Worker, level: LogLevel = 'info'): void {
    this.log(level, message, w);
    if (this.upgrade) {
      for (const to of this.upgrade.waiters) this.out.push({ type: 'reply', to, message, wait: true, ok: true });
    }
  }

  private log(level: LogLevel, message: string, w?: Worker): void {
    const e: Effect = { type: 'log', level, message };
    if (w?.pid != null) e.pid = w.pid;
    if (w) e.slot = w.slot;
    this.out.push(e);
  }

  private reply(to: ReplyTo | undefined, message: string, ok: boolean, wait = false): void {
    if (to !== undefined) this.out.push({ type: 'reply', to, message, wait, ok });
  }

  private effect(e: Effect): void {
    this.out.push(e);
  }

  private list(pred: (w: Worker) => boolean): Worker[] {
    return [...this.workers.values()].filter(pred);
  }

  private count(pred: (w: Worker) => boolean): number {
    let n = 0;
    for (const w of this.workers.values()) if (pred(w)) n += 1;
    return n;
  }

  private pids(pred: (w: Worker) => boolean): number[] {
    return this.list(pred)
      .map((w) => w.pid)
      .filter((p): p is number => p !== null);
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
      core.workers.set(w.id, w);
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
