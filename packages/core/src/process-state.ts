/**
 * One supervised process with supervisord's states and transitions
 * (supervisor/process.py, Subprocess), pure: `handle(event, now)` applies an
 * event and then supervisord's `transition()` at `now`, and returns effects
 * (spawn, kill, timers, state changes, logs) for a shell to carry out. Driven
 * by the same kinds of events as the core's Supervisor (spawned, spawnFailed,
 * exited(code, signal), timer), so it can sit beside the runtime's groups.
 *
 *   STOPPED --autostart/start--> STARTING --startsecs up--> RUNNING
 *   STARTING --exits sooner / spawn error--> BACKOFF --after N s (N = attempt)--> STARTING
 *   BACKOFF --more than startretries--> FATAL
 *   RUNNING --exits--> EXITED --autorestart (true, or unexpected code)--> STARTING
 *   STARTING/RUNNING --stop--> STOPPING --exits--> STOPPED; --stopwaitsecs--> SIGKILL (again every stopwaitsecs)
 *   BACKOFF --stop--> STOPPED
 *
 * Times are milliseconds on the caller's monotonic clock. One timer per
 * process (key `timerKey`), set to the next moment `transition()` has
 * something to do; a timer event (or any event) runs it.
 */
import { processConfigMs, type ProcessStateConfig, type ProcessStateConfigMs } from './process-state-config.js';

export type ProcessStateName = 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'EXITED' | 'FATAL';

/** supervisord's groupings (states.py). */
export const RUNNING_STATES: readonly ProcessStateName[] = ['RUNNING', 'BACKOFF', 'STARTING'];
export const STOPPED_STATES: readonly ProcessStateName[] = ['STOPPED', 'EXITED', 'FATAL'];
export const SIGNALLABLE_STATES: readonly ProcessStateName[] = ['RUNNING', 'STARTING', 'STOPPING'];

export type ProcessEvent =
  /** Run transition() only (creation: autostart; a periodic check). */
  | { type: 'tick' }
  | { type: 'timer'; key: string }
  /** supervisorctl start NAME. */
  | { type: 'start' }
  /** supervisorctl stop NAME. */
  | { type: 'stop' }
  /** supervisorctl signal SIG NAME (not meant to stop it). */
  | { type: 'signal'; signal: string }
  /** The runtime is shutting down: nothing is started again; running processes are stopped. */
  | { type: 'shutdown' }
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'spawnFailed'; id: number; error: string }
  | { type: 'exited'; pid: number; code: number | null; signal: string | null };

export type ProcessEffect =
  /** Start the program; answer with spawned/spawnFailed carrying this id. */
  | { type: 'spawn'; id: number }
  /** Signal the process (`group`: its process group, -pid). */
  | { type: 'kill'; pid: number; signal: string; group: boolean }
  | { type: 'setTimer'; key: string; ms: number }
  | { type: 'clearTimer'; key: string }
  | { type: 'state'; from: ProcessStateName; to: ProcessStateName; expected: boolean }
  | { type: 'log'; level: 'debug' | 'info' | 'warn'; message: string };

/** The answer to start/stop/signal, with supervisord's fault names. */
export type CommandResult =
  | { ok: true }
  | { ok: false; fault: 'ALREADY_STARTED' | 'NOT_RUNNING' | 'STILL_STOPPING' | 'SHUTTING_DOWN'; message: string };

/** What a re-exec carries to rebuild the machine (with the same monotonic clock). */
export interface ProcessStateSnapshot {
  state: ProcessStateName;
  pid: number;
  laststart: number;
  laststop: number;
  delay: number;
  backoff: number;
  killing: boolean;
  exitstatus: number | null;
  spawnerr: string | null;
  spawnId: number;
  pendingSpawn: boolean;
  shuttingDown: boolean;
}

export class ProcessMachine {
  readonly timerKey: string;
  private readonly cfg: ProcessStateConfigMs;
  private s: ProcessStateSnapshot = {
    state: 'STOPPED', pid: 0, laststart: 0, laststop: 0, delay: 0, backoff: 0, killing: false,
    exitstatus: null, spawnerr: null, spawnId: 0, pendingSpawn: false, shuttingDown: false,
  };
  /** Whether a start has ever been requested (supervisord's `laststart` != 0, which 0 cannot tell here). */
  private started = false;
  private timerAt: number | null = null;
  private out: ProcessEffect[] = [];

  constructor(
    readonly name: string,
    config: ProcessStateConfig,
    snapshot?: ProcessStateSnapshot & { started: boolean },
  ) {
    this.cfg = processConfigMs(config);
    this.timerKey = `process:${name}`;
    if (snapshot) {
      const { started, ...rest } = snapshot;
      this.s = { ...rest };
      this.started = started;
    }
  }

  get state(): ProcessStateName {
    return this.s.state;
  }
  get pid(): number {
    return this.s.pid;
  }
  /** The last exit status (-1: killed by a signal), null before any exit or after a too-quick one. */
  get exitstatus(): number | null {
    return this.s.exitstatus;
  }
  /** Why the last start failed ("Exited too quickly ...", "Bad exit code N", a spawn error), as supervisorctl shows. */
  get spawnerr(): string | null {
    return this.s.spawnerr;
  }
  get backoff(): number {
    return this.s.backoff;
  }

  snapshot(): ProcessStateSnapshot & { started: boolean } {
    return { ...this.s, started: this.started };
  }

  handle(event: ProcessEvent, now: number): { effects: ProcessEffect[]; result?: CommandResult } {
    this.out = [];
    let result: CommandResult | undefined;
    switch (event.type) {
      case 'start':
        result = this.startCommand(now);
        break;
      case 'stop':
        result = this.stopCommand(now);
        break;
      case 'signal':
        result = this.signalCommand(event.signal);
        break;
      case 'shutdown':
        this.shutdown(now);
        break;
      case 'spawned':
        if (event.id === this.s.spawnId && this.s.pendingSpawn) {
          this.s.pendingSpawn = false;
          this.s.pid = event.pid;
          this.s.spawnerr = null;
          this.log('info', `spawned: '${this.name}' with pid ${event.pid}`);
          if (this.s.state === 'STOPPING') {
            // stopped while the spawn was on its way: the stop signal goes now
            this.s.delay = now + this.cfg.stopwaitMs;
            this.out.push({ type: 'kill', pid: event.pid, signal: this.cfg.stopsignal, group: this.cfg.stopasgroup });
          }
        }
        break;
      case 'spawnFailed':
        if (event.id === this.s.spawnId && this.s.pendingSpawn) {
          this.s.pendingSpawn = false;
          this.s.spawnerr = event.error;
          this.log('info', `spawnerr: ${event.error}`);
          if (this.s.state === 'STOPPING') {
            // stopped while the spawn was on its way: nothing to stop any more
            this.s.killing = false;
            this.change('STOPPED', now);
          } else {
            this.change('BACKOFF', now);
          }
        }
        break;
      case 'exited':
        if (event.pid === this.s.pid && this.s.pid !== 0) this.finish(event.code, event.signal, now);
        break;
      case 'timer':
      case 'tick':
        break;
    }
    this.transition(now);
    this.syncTimer(now);
    return result === undefined ? { effects: this.out } : { effects: this.out, result };
  }

  private log(level: 'debug' | 'info' | 'warn', message: string): void {
    this.out.push({ type: 'log', level, message });
  }

  private change(to: ProcessStateName, now: number, expected = true): void {
    const from = this.s.state;
    if (from === to) return;
    this.s.state = to;
    if (to === 'BACKOFF') {
      this.s.backoff += 1;
      this.s.delay = now + this.s.backoff * 1000;
    }
    this.out.push({ type: 'state', from, to, expected });
  }

  private spawn(now: number): void {
    if (this.s.pid !== 0 || this.s.pendingSpawn) {
      this.log('warn', `process '${this.name}' already running`);
      return;
    }
    this.s.killing = false;
    this.s.spawnerr = null;
    this.s.exitstatus = null;
    this.s.laststart = now;
    this.started = true;
    this.change('STARTING', now);
    this.s.spawnId += 1;
    this.s.pendingSpawn = true;
    this.out.push({ type: 'spawn', id: this.s.spawnId });
  }

  /** supervisord's kill(sig): from BACKOFF straight to STOPPED; else signal and STOPPING. */
  private kill(signal: string, now: number): string | null {
    if (this.s.state === 'BACKOFF') {
      this.log('debug', `Attempted to kill ${this.name}, which is in BACKOFF state.`);
      this.change('STOPPED', now);
      return null;
    }
    if (this.s.pid === 0 && !this.s.pendingSpawn) {
      return `attempted to kill ${this.name} with sig SIG${signal} but it wasn't running`;
    }
    const group = this.s.state === 'STOPPING' ? this.cfg.killasgroup : this.cfg.stopasgroup;
    this.s.killing = true;
    this.s.delay = now + this.cfg.stopwaitMs;
    this.change('STOPPING', now);
    if (this.s.pid !== 0) {
      this.log('debug', `killing ${this.name} (pid ${this.s.pid}) ${group ? 'process group ' : ''}with signal SIG${signal}`);
      this.out.push({ type: 'kill', pid: this.s.pid, signal, group });
    }
    return null;
  }

  private startCommand(now: number): CommandResult {
    if (this.s.shuttingDown) return { ok: false, fault: 'SHUTTING_DOWN', message: `${this.name}: shutting down` };
    if (RUNNING_STATES.includes(this.s.state)) return { ok: false, fault: 'ALREADY_STARTED', message: `${this.name}: already started` };
    if (this.s.state === 'STOPPING') return { ok: false, fault: 'STILL_STOPPING', message: `${this.name}: still stopping` };
    this.spawn(now);
    return { ok: true };
  }

  private stopCommand(now: number): CommandResult {
    if (!RUNNING_STATES.includes(this.s.state)) return { ok: false, fault: 'NOT_RUNNING', message: `${this.name}: not running` };
    const err = this.kill(this.cfg.stopsignal, now);
    return err === null ? { ok: true } : { ok: false, fault: 'NOT_RUNNING', message: err };
  }

  private signalCommand(signal: string): CommandResult {
    if (!SIGNALLABLE_STATES.includes(this.s.state) || this.s.pid === 0) {
      return { ok: false, fault: 'NOT_RUNNING', message: `${this.name}: not running` };
    }
    this.log('debug', `sending ${this.name} (pid ${this.s.pid}) sig SIG${signal}`);
    this.out.push({ type: 'kill', pid: this.s.pid, signal, group: false });
    return { ok: true };
  }

  /** ProcessGroup.stop_all for this process, and no more starts. */
  private shutdown(now: number): void {
    this.s.shuttingDown = true;
    if (this.s.state === 'RUNNING' || this.s.state === 'STARTING') this.kill(this.cfg.stopsignal, now);
    else if (this.s.state === 'BACKOFF') this.giveUp(now);
  }

  private giveUp(now: number): void {
    this.s.delay = 0;
    this.s.backoff = 0;
    this.change('FATAL', now);
  }

  /** supervisord's finish(pid, status). */
  private finish(code: number | null, signal: string | null, now: number): void {
    const es = code ?? -1;
    const how = code !== null ? `exit status ${code}` : `terminated by SIG${signal ?? 'UNKNOWN'}`;
    this.s.laststop = now;
    const tooQuickly = now - this.s.laststart < this.cfg.startsecsMs;
    const expected = this.cfg.exitcodes.includes(es);
    this.s.pid = 0;
    if (this.s.killing) {
      this.s.killing = false;
      this.s.delay = 0;
      this.s.exitstatus = es;
      this.change('STOPPED', now);
      this.log(expected ? 'info' : 'warn', `stopped: ${this.name} (${how})`);
    } else if (tooQuickly) {
      this.s.exitstatus = null;
      this.s.spawnerr = 'Exited too quickly (process log may have details)';
      this.change('BACKOFF', now);
      this.log('warn', `exited: ${this.name} (${how}; not expected)`);
    } else {
      this.s.delay = 0;
      this.s.backoff = 0;
      this.s.exitstatus = es;
      if (this.s.state === 'STARTING') this.change('RUNNING', now);
      if (expected) {
        this.change('EXITED', now, true);
        this.log('info', `exited: ${this.name} (${how}; expected)`);
      } else {
        this.s.spawnerr = `Bad exit code ${es}`;
        this.change('EXITED', now, false);
        this.log('warn', `exited: ${this.name} (${how}; not expected)`);
      }
    }
  }

  /** supervisord's transition(), run after every event. */
  private transition(now: number): void {
    const state = this.s.state;
    if (!this.s.shuttingDown) {
      if (state === 'EXITED') {
        const ar = this.cfg.autorestart;
        if (ar === 'true' || (ar === 'unexpected' && !this.cfg.exitcodes.includes(this.s.exitstatus as number))) this.spawn(now);
      } else if (state === 'STOPPED' && !this.started) {
        if (this.cfg.autostart) this.spawn(now);
      } else if (state === 'BACKOFF') {
        if (this.s.backoff <= this.cfg.startretries && now >= this.s.delay) this.spawn(now);
      }
    }
    if (state === 'STARTING' && this.s.state === 'STARTING' && !this.s.pendingSpawn && now - this.s.laststart >= this.cfg.startsecsMs) {
      this.s.delay = 0;
      this.s.backoff = 0;
      this.change('RUNNING', now);
      this.log('info', `success: ${this.name} entered RUNNING state, process has stayed up for > than ${this.cfg.startsecsMs / 1000} seconds (startsecs)`);
    }
    if (this.s.state === 'BACKOFF' && this.s.backoff > this.cfg.startretries) {
      this.giveUp(now);
      this.log('info', `gave up: ${this.name} entered FATAL state, too many start retries too quickly`);
    } else if (state === 'STOPPING' && this.s.state === 'STOPPING' && this.s.delay - now <= 0) {
      this.log('warn', `killing '${this.name}' (${this.s.pid}) with SIGKILL`);
      this.kill('KILL', now);
    }
  }

  /** When transition() next has something to do on its own. */
  private nextDeadline(): number | null {
    switch (this.s.state) {
      case 'STARTING':
        return this.s.pendingSpawn ? null : this.s.laststart + this.cfg.startsecsMs;
      case 'BACKOFF':
        return this.s.backoff <= this.cfg.startretries && !this.s.shuttingDown ? this.s.delay : null;
      case 'STOPPING':
        return this.s.delay;
      default:
        return null;
    }
  }

  private syncTimer(now: number): void {
    const at = this.nextDeadline();
    if (at === this.timerAt) return;
    if (this.timerAt !== null) this.out.push({ type: 'clearTimer', key: this.timerKey });
    this.timerAt = at;
    if (at !== null) this.out.push({ type: 'setTimer', key: this.timerKey, ms: Math.max(0, at - now) });
  }
}
