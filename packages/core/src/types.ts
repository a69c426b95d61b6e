/**
 * The vocabulary of the rolling-restart engine: what it is told (events),
 * what it asks the shell to do (effects), and how it is configured.
 *
 * The core has no clock, no processes and no sockets: every event carries the
 * time it happened at, and every action is returned as an effect.
 */

/** How a worker proves it is ready to serve. */
export type AckMode =
  /** Up once it has lived `ms` milliseconds (or sooner if it sends worker:ack). */
  | { kind: 'timer'; ms: number }
  /** Up only when it sends worker:ack; a failed start if none arrives within `deadlineMs`. */
  | { kind: 'manual'; deadlineMs: number };

export type UpgradeMode = 'smooth' | 'fleet';

export interface CoreConfig {
  /** Target number of serving workers. */
  number: number;
  ackMode: AckMode;
  /**
   * Consecutive failed starts (exit before ack, missed ack deadline, spawn error,
   * or an exit shortly after the ack) tolerated before giving up.
   * Infinity: never give up (einhorn's behaviour), only back off.
   */
  retries: number;
  /** Failed starts an upgrade tolerates before it is abandoned (old workers keep serving). */
  upgradeRetries: number;
  /** Base delay before re-spawning after a failed start; doubles per consecutive failure. */
  respawnDelayMs: number;
  /** Cap of that delay. */
  backoffCapMs: number;
  /**
   * A worker that exits unexpectedly less than this long after its ack counts as a failed start;
   * the streak of failed starts ends only when a worker acked after the last failure lives this long.
   */
  stableAfterMs: number;
  /**
   * During an upgrade, a new worker replaces an old one (and counts towards the upgrade being
   * done) only once it has been up this long; one that exits sooner is a failed start of the
   * upgrade, with the old workers still serving. 0: at its ack.
   */
  minReadyMs: number;
  /** Time between the stop signal and SIGKILL; null: never escalate. */
  signalTimeoutMs: number | null;
  /** The signal that asks a worker to drain and exit. */
  drainSignal: string;
  /** At most this many current-generation workers starting at once. */
  maxUnacked: number;
  /** During an upgrade, at most this many processes beyond `number` at once; Infinity: all at once. */
  maxUpgradeAdditional: number;
  /**
   * How a smooth upgrade hands the load over from the old workers to the new ones.
   * `afterBoot`: no old worker is asked to drain while a worker of the new generation is
   * still starting (booting competes for the CPU with the new workers taking over the
   * connections). `gapMs`: at most one old worker asked to drain per gapMs, so that the
   * new ones warm up on part of the load before they carry all of it. Defaults: false, 0
   * (einhorn's: one old worker per new one up, at once).
   */
  handover?: { afterBoot: boolean; gapMs: number };
  /**
   * How slots (EINHORN_CHILD_INDEX) are given. `unique` (einhorn): the lowest
   * one no living worker has, so a roll's new workers take free numbers.
   * `named` (Heroku's dyno names): the lowest one no starting or up worker of
   * the same generation has, so a replacement (crash, roll) takes the number
   * of the one it replaces, and too many workers are retired highest first.
   */
  slots: 'unique' | 'named';
  /** false: one-shot (hsup's --oneshot): a worker that exits unasked is not replaced, the target drops by one. */
  respawn: boolean;
  /**
   * supervisord's autorestart for a worker that exits unasked after it started (acked and
   * past stableAfterMs): 'true' (default) replaces it; 'false' does not (the target drops by
   * one, as one-shot); 'unexpected' does not when it exited with one of `exitcodes`.
   */
  autorestart?: 'true' | 'false' | 'unexpected';
  /** The expected exit statuses for autorestart 'unexpected' (default [0]). */
  exitcodes?: readonly number[];
  /**
   * supervisord's restart: an upgrade stops every old worker first and starts the new ones
   * once the old are gone (a program that holds a lock or a port cannot run twice). Default
   * (false): the new before the old (smooth or fleet), for programs sharing a socket.
   */
  stopFirst?: boolean;
  /**
   * Exactly these slots are wanted (named slots: supervisord's processes of a program, each
   * started and stopped on its own); `number` is their count. Absent: slots 0..number-1.
   * `inc`, `dec` and `setWorkers` drop it.
   */
  wantedSlots?: readonly number[];
}

export type WorkerState = 'starting' | 'up' | 'stopping' | 'killed';

export interface WorkerView {
  id: number;
  pid: number | null;
  slot: number;
  generation: number;
  state: WorkerState;
  spawnedAt: number;
  ackedAt: number | null;
  /** Up for at least minReadyMs (an upgrade may retire an old worker for it). */
  ready: boolean;
  signaledAt: number | null;
  /** Signals recorded against this worker (drain, KILL, shutdown signal). */
  signals: readonly string[];
  /** Why it is stopping, when it is. */
  stopReason: string | null;
  pingedAt: number | null;
  pingRequestId: string | number | null;
}

/** Opaque token the shell uses to route replies to a control connection. */
export type ReplyTo = number;

export type Event =
  | { type: 'start' }
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'spawnFailed'; id: number; error: string }
  | { type: 'exited'; pid: number; code: number | null; signal: string | null }
  | { type: 'ack'; pid: number }
  | { type: 'ping'; pid: number; requestId: string | number | null }
  | { type: 'timer'; key: string }
  | { type: 'inc'; replyTo?: ReplyTo }
  | { type: 'dec'; replyTo?: ReplyTo }
  | { type: 'setWorkers'; count: number; replyTo?: ReplyTo }
  | { type: 'setSlots'; slots: readonly number[]; replyTo?: ReplyTo }
  | { type: 'upgrade'; mode: UpgradeMode; replyTo?: ReplyTo }
  /** `slots`: only the workers in these slots (default every worker). */
  | { type: 'signal'; signals: string[]; slots?: readonly number[]; replyTo?: ReplyTo }
  | { type: 'shutdown'; signal: string; replyTo?: ReplyTo }
  | { type: 'configure'; changes: ConfigChanges; replyTo?: ReplyTo }
  /** A changed group's settings (the Fleet, when a release changes its launch); `number` and `wantedSlots` stay the quantity's. */
  | { type: 'reconfigure'; config: Partial<CoreConfig> };

/** Settings that may change at run time (the `config` command). */
export type ConfigChanges = Partial<
  Pick<
    CoreConfig,
    'respawnDelayMs' | 'signalTimeoutMs' | 'maxUnacked' | 'maxUpgradeAdditional' | 'retries' | 'upgradeRetries' | 'minReadyMs'
  >
>;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type Effect =
  | { type: 'spawn'; id: number; slot: number; generation: number }
  | { type: 'kill'; pid: number; signal: string }
  | { type: 'setTimer'; key: string; ms: number }
  | { type: 'clearTimer'; key: string }
  | { type: 'reply'; to: ReplyTo; message: string; wait: boolean; ok: boolean }
  | { type: 'log'; level: LogLevel; message: string; pid?: number; slot?: number }
  | { type: 'exit'; code: number };

export interface UpgradeView {
  mode: UpgradeMode;
  generation: number;
  startedAt: number;
  failures: number;
}

/** What sd_notify says of a group, without a copy of every worker (CoreSnapshot has them). */
export interface CoreSummary {
  generation: number;
  /** Workers wanted (config.number). */
  wanted: number;
  /** Workers of the current generation up. */
  up: number;
  upgrading: boolean;
  lastUpgrade: CoreSnapshot['lastUpgrade'];
  shuttingDown: string | null;
}

export interface CoreSnapshot {
  config: Readonly<CoreConfig>;
  generation: number;
  streak: number;
  gaveUp: boolean;
  shuttingDown: string | null;
  upgrade: UpgradeView | null;
  lastUpgrade: { generation: number; ok: boolean; message: string; finishedAt: number } | null;
  workers: WorkerView[];
}
