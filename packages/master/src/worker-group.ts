import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { monotonicMs } from './clock.js';
import { Supervisor, type CoreConfig, type CoreSnapshot, type Effect, type Event, type LogLevel, type SerializedCore } from '@einhyrningsins/core';
import * as native from 'native-reuseport';
import { childEnv, type PassedSocket } from './child-env.js';
import type { Logger } from './log.js';
import { resolveProgram } from './program.js';
import { SlotHistory } from './slot-history.js';
import { BootPriority } from './boot-priority.js';

/** Signal a worker's process group (its pgid is its pid: the launcher ran setpgid). True if anything was there. */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(osConstants.signals).map(([name, n]) => [n, name]));

/** What to run for each worker of a group; may change between generations. */
export interface LaunchSpec {
  /** The program word, resolved (PATH or path) again at every spawn. */
  program: string;
  args: readonly string[];
  /** The environment the children start from (before einhorn's variables). */
  env: NodeJS.ProcessEnv;
  dropEnv: readonly string[];
  cwd: string;
  /** Extra variables per worker (e.g. DYNO, PORT), set after einhorn's. */
  extraEnv?: (slot: number) => Record<string, string>;
}

/** A listening socket handed to every child of the group. */
export interface SharedListener {
  fd: number;
  family: 4 | 6 | 'unix';
}

export interface WorkerGroupOptions {
  /** Shown in logs ("web"); null for the master's single group. */
  name: string | null;
  core: Partial<CoreConfig>;
  launch: LaunchSpec;
  listeners: readonly SharedListener[];
  /** EINHORN_SOCK_PATH. */
  socketPath: string;
  killChildrenOnExit: boolean;
  /**
   * Stop signals (the drain signal, the shutdown signal) go to each worker's
   * whole process group, as Heroku signals every process of a dyno; otherwise
   * to the worker alone (einhorn). SIGKILL always takes the group.
   */
  stopGroup?: boolean;
  /** Niceness for every child (setpriority before exec), or none. */
  niceWorker?: number | null;
  /** During upgrades, new workers boot this much nicer until they are up (0: off). */
  upgradeNice?: number;
  log: Logger;
  /**
   * einhorn's -g: each child also gets an already-connected control connection at the fd
   * after its sockets (EINHORN_SOCK_FD); the master's end is handed to this function.
   */
  adoptControlFd?: (fd: number, pid: number) => void;
  /** Children's stdout/stderr: inherited, or handed to this function (then piped). */
  output?: (child: ChildProcess, slot: number) => void;
  /** A child exited (before the core hears of it). */
  onChildExit?: (pid: number, slot: number, code: number | null, signal: string | null) => void;
  onReply: (to: number, message: string, wait: boolean, ok: boolean) => void;
  /** The core is done (shutdown finished: no worker left). */
  onExit: (code: number) => void;
  /** A worker process exited (after its group was signalled, before the core hears of it). */
  onWorkerExit?: (pid: number) => void;
  /** Monotonic ms shared by every group of a process. */
  now?: () => number;
  /** Called after every batch of events (the master's sd_notify watches the state with it). */
  onChange?: () => void;
}

/**
 * The imperative shell around one core: turns child exits and timers into
 * events, and carries out the core's effects (spawn through the launcher,
 * signals, timers, replies, logs). The master has one; the dyno driver has
 * one per process type.
 */
export class WorkerGroup {
  private core: Supervisor;
  /** Workers started by an image before a reload: not libuv's children, reaped by waitpid. */
  private readonly adopted = new Set<number>();
  private reaper: NodeJS.Timeout | null = null;
  private readonly onSigchld = () => this.reapAdopted();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly children = new Map<number, ChildProcess>();
  private readonly queue: Event[] = [];
  private busy = false;
  private launch: LaunchSpec;
  private listeners: readonly SharedListener[];
  private readonly now: () => number;
  /** Restarts and last exit status per slot (what `status` shows). */
  history = new SlotHistory();
  /** When the last worker was spawned (einhorn's last_spinup), on the group's clock. */
  lastSpinup: number | null = null;

  private readonly boot: BootPriority;

  constructor(private readonly opts: WorkerGroupOptions) {
    this.core = new Supervisor(opts.core);
    this.boot = new BootPriority(opts.upgradeNice ?? 0, opts.niceWorker ?? null, opts.log);
    this.launch = opts.launch;
    this.listeners = opts.listeners;
    const t0 = monotonicMs();
    this.now = opts.now ?? (() => monotonicMs() - t0);
  }

  get name(): string | null {
    return this.opts.name;
  }

  /** Use this launch spec from the next spawn on (an upgrade then rolls it out). */
  setLaunch(spec: LaunchSpec): void {
    this.launch = spec;
  }

  /** Hand these sockets to the children spawned from now on (the ones running keep theirs). */
  setListeners(listeners: readonly SharedListener[]): void {
    this.listeners = listeners;
  }

  get launchSpec(): LaunchSpec {
    return this.launch;
  }

  snapshot(): CoreSnapshot {
    return this.core.snapshot();
  }

  hasPid(pid: number): boolean {
    return this.children.has(pid) || this.adopted.has(pid);
  }

  /** The core's whole state for the next image (see reload.ts). */
  serialize(): SerializedCore {
    return this.core.serialize(this.now());
  }

  /**
   * Carry on from the core of the image before a reload: its workers are adopted by
   * pid (they are still this process's children), its timers re-armed for what is
   * left of them. Workers that died during the exec are reaped at once.
   */
  restore(data: SerializedCore, elapsedMs = 0): void {
    const { core, effects } = Supervisor.restore(data, this.now(), elapsedMs);
    this.core = core;
    for (const w of core.snapshot().workers) if (w.pid !== null) this.adopted.add(w.pid);
    if (this.adopted.size > 0) {
      process.on('SIGCHLD', this.onSigchld);
      // SIGCHLD can be coalesced with one libuv consumed first: look every second too.
      this.reaper = setInterval(() => this.reapAdopted(), 1000);
      this.reaper.unref();
    }
    for (const e of effects) this.apply(e);
    setImmediate(() => this.reapAdopted());
  }

  private reapAdopted(): void {
    for (const pid of [...this.adopted]) {
      let r: { code: number | null; signal: number | null } | null;
      try {
        r = native.reapPid(pid);
      } catch {
        r = { code: null, signal: null }; // ECHILD: gone, and not ours to reap any more
      }
      if (r === null) continue;
      this.adopted.delete(pid);
      const signal = r.signal === null ? null : (SIGNAL_NAMES.get(r.signal) ?? `SIG${r.signal}`);
      const slot = this.core.snapshot().workers.find((w) => w.pid === pid)?.slot;
      if (slot !== undefined) this.opts.onChildExit?.(pid, slot, r.code, signal);
      if (signalGroup(pid, 'SIGTERM')) this.log('info', `Sent SIGTERM to what worker ${pid} left in its process group`);
      this.feed({ type: 'exited', pid, code: r.code, signal });
    }
    if (this.adopted.size === 0 && this.reaper) {
      clearInterval(this.reaper);
      this.reaper = null;
      process.off('SIGCHLD', this.onSigchld);
    }
  }

  /** The pids of the live workers: those Node spawned and those adopted after a reload. */
  *pids(): IterableIterator<number> {
    yield* this.children.keys();
    yield* this.adopted;
  }

  feed(event: Event): void {
    this.queue.push(event);
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length) {
        const ev = this.queue.shift() as Event;
        this.record(ev);
        const effects = this.core.handle(ev, this.now());
        // A worker just up gets its priority back before anything else happens (the old
        // one it replaces is signalled, the upgrade's waiters are told).
        if (this.boot.pending) this.boot.settle(this.core.snapshot());
        for (const effect of effects) this.apply(effect);
      }
    } finally {
      this.busy = false;
    }
    this.opts.onChange?.();
  }

  /** Note a worker's end in its slot's history, while the core still knows the worker. */
  private record(ev: Event): void {
    if (ev.type !== 'exited' && ev.type !== 'spawnFailed') return;
    const w = this.core.snapshot().workers.find((x) => (ev.type === 'exited' ? x.pid === ev.pid : x.id === ev.id));
    if (!w) return;
    if (ev.type === 'spawnFailed') this.history.spawnFailed(w.slot, ev.error);
    else this.history.exited(w.slot, ev.code, ev.signal, w.state === 'stopping' || w.state === 'killed');
  }

  /** Drop every pending timer (at exit). */
  stopTimers(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    if (this.reaper) clearInterval(this.reaper);
    this.reaper = null;
  }

  private log(level: LogLevel, message: string, ctx: { pid?: number; slot?: number } = {}): void {
    this.opts.log.log(level, this.opts.name ? `[${this.opts.name}] ${message}` : message, ctx);
  }

  private debug(message: string): void {
    if (this.opts.log.enabled('debug')) this.log('debug', message);
  }

  private apply(e: Effect): void {
    switch (e.type) {
      case 'spawn':
        return this.spawn(e.id, e.slot, e.generation);
      case 'kill':
        // SIGKILL escalation takes the worker's whole process group (its own
        // grandchildren included); other signals go to the worker alone.
        if (e.signal === 'SIGKILL') signalGroup(e.pid, 'SIGKILL');
        else if (this.opts.stopGroup && this.isStopSignal(e.signal)) {
          if (signalGroup(e.pid, e.signal as NodeJS.Signals)) {
            this.debug(`Sent ${e.signal} to worker ${e.pid}'s process group`);
            return;
          }
        }
        this.debug(`Sending ${e.signal} to worker ${e.pid}${e.signal === 'SIGKILL' ? ' and its process group' : ''}`);
        try {
          process.kill(e.pid, e.signal as NodeJS.Signals);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') this.log('warn', `kill ${e.signal} ${e.pid}: ${(err as Error).message}`);
        }
        return;
      case 'setTimer': {
        const old = this.timers.get(e.key);
        if (old) clearTimeout(old);
        this.debug(`Timer ${e.key}: in ${Math.round(e.ms)} ms`);
        this.timers.set(
          e.key,
          setTimeout(() => {
            this.timers.delete(e.key);
            this.debug(`Timer ${e.key}: fired`);
            this.feed({ type: 'timer', key: e.key });
          }, Math.max(0, e.ms)),
        );
        return;
      }
      case 'clearTimer': {
        const t = this.timers.get(e.key);
        if (t) clearTimeout(t);
        if (t) this.opts.log.trace(`Timer ${e.key}: cleared`);
        this.timers.delete(e.key);
        return;
      }
      case 'reply':
        return this.opts.onReply(e.to, e.message, e.wait, e.ok);
      case 'log': {
        const ctx: { pid?: number; slot?: number } = {};
        if (e.pid !== undefined) ctx.pid = e.pid;
        if (e.slot !== undefined) ctx.slot = e.slot;
        return this.log(e.level, e.message, ctx);
      }
      case 'exit':
        this.stopTimers();
        return this.opts.onExit(e.code);
    }
  }

  private isStopSignal(signal: string): boolean {
    const snap = this.core.snapshot();
    return signal === snap.config.drainSignal || signal === snap.shuttingDown;
  }

  private spawn(id: number, slot: number, generation = 0): void {
    const spec = this.launch;
    let path: string;
    try {
      path = resolveProgram(spec.program, spec.env.PATH, spec.cwd);
    } catch (err) {
      this.queue.push({ type: 'spawnFailed', id, error: (err as Error).message });
      return;
    }
    const listeners = this.listeners;
    const passed: PassedSocket[] = listeners.map((s, i) => ({
      childFd: 3 + i,
      family: s.family === 'unix' ? 'AF_UNIX' : s.family === 6 ? 'AF_INET6' : 'AF_INET',
    }));
    const env = {
      ...childEnv({
        base: spec.env,
        drop: spec.dropEnv,
        masterPid: process.pid,
        sockPath: this.opts.socketPath,
        sockets: passed,
        slot,
      }),
      ...(spec.extraEnv?.(slot) ?? {}),
    };
    let pair: [number, number] | null = null;
    if (this.opts.adoptControlFd) {
      try {
        pair = native.socketPair();
      } catch (err) {
        this.queue.push({ type: 'spawnFailed', id, error: (err as Error).message });
        return;
      }
      env.EINHORN_SOCK_FD = String(3 + listeners.length);
    }
    const extraFds = pair ? [pair[1]] : [];
    const closePair = () => {
      if (pair) for (const fd of pair) native.close(fd);
      pair = null;
    };
    const launch = ['--setpgid', '--close-from', String(3 + listeners.length + extraFds.length)];
    const bootNice = this.boot.forSpawn(generation, this.core.snapshot());
    if (bootNice !== null) launch.push('--nice', String(bootNice));
    else if (this.opts.niceWorker != null) launch.push('--nice', String(this.opts.niceWorker));
    if (this.opts.killChildrenOnExit) {
      const sig = (this.opts.core.drainSignal ?? 'SIGUSR2') as NodeJS.Signals;
      launch.push('--pdeathsig', String(osConstants.signals[sig] ?? osConstants.signals.SIGUSR2), '--ppid', String(process.pid));
    }
    launch.push('--', path, spec.program, ...spec.args);
    if (this.opts.log.enabled('debug')) {
      const base = spec.env;
      const set = Object.keys(env).filter((k) => base[k] !== env[k]);
      const dropped = Object.keys(base).filter((k) => !(k in env));
      this.debug(
        `Spawning index ${slot} (generation ${generation}): ${[path, ...spec.args].join(' ')}` +
          `${spec.cwd === process.cwd() ? '' : ` in ${spec.cwd}`}; sets ${set.join(', ') || 'nothing'}` +
          (dropped.length ? `; drops ${dropped.join(', ')}` : '') +
          (bootNice !== null ? `; nice ${bootNice} until it is up` : this.opts.niceWorker != null ? `; nice ${this.opts.niceWorker}` : ''),
      );
    }
    const out = this.opts.output ? 'pipe' : 'inherit';
    let child: ChildProcess;
    try {
      child = spawn(native.launcherPath, launch, {
        stdio: ['inherit', out, out, ...listeners.map((s) => s.fd), ...extraFds],
        env,
        cwd: spec.cwd,
      });
    } catch (err) {
      closePair();
      this.queue.push({ type: 'spawnFailed', id, error: (err as Error).message });
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      closePair();
      child.once('error', (err) => this.feed({ type: 'spawnFailed', id, error: err.message }));
      return;
    }
    if (pair) {
      native.close(pair[1]); // the child has its copy
      this.opts.adoptControlFd?.(pair[0], pid);
      pair = null;
    }
    this.children.set(pid, child);
    this.lastSpinup = this.now();
    if (bootNice !== null) this.boot.spawned(pid);
    this.opts.output?.(child, slot);
    child.on('error', (err) => this.log('warn', `child ${pid}: ${err.message}`));
    child.once('exit', (code, signal) => {
      this.children.delete(pid);
      this.opts.onChildExit?.(pid, slot, code, signal);
      // Whatever the worker left running in its process group goes with it.
      if (signalGroup(pid, 'SIGTERM')) this.log('info', `Sent SIGTERM to what worker ${pid} left in its process group`);
      this.opts.onWorkerExit?.(pid);
      this.feed({ type: 'exited', pid, code, signal });
    });
    this.queue.push({ type: 'spawned', id, pid });
  }
}
