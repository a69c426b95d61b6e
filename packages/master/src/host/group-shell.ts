/**
 * The imperative shell of one group: it carries out what the group's engine asks
 * (spawn through the launcher, signals, timers, logs) and turns what the kernel says
 * (a child's exit, a timer, a spawn's pid) into events for it. The engine itself lives
 * in the fleet (packages/core): the shell never decides, and never sees a reply.
 */
import { constants as osConstants } from 'node:os';
import type { CoreConfig, CoreSnapshot, Event, GroupEffect, LogLevel, WorkerView } from '@einhyrningsins/core';
import * as native from 'native-reuseport';
import { childEnv, envChanges, type PassedSocket } from '../child-env.js';
import { handoffEnv, type HandoffContext, type HandoffName } from '../handoff.js';
import type { Logger } from '../log.js';
import { resolveProgram } from '../program.js';
import { SlotHistory } from '../slot-history.js';
import { BootPriority } from '../boot-priority.js';
import type { SpawnPaceConfig } from '../spawn-pace.js';
import { runnableThreads } from '../proc-stat.js';
import { SpawnTurns, defaultSpawnPace } from './spawn-turns.js';
import { launcherArgs } from './launcher-args.js';
import { processUmask, spawner } from './spawner.js';
import { PipedWorker, readEnd, type WorkerProcess } from './worker-process.js';

export type { WorkerProcess };

/** Signal a worker's process group (its pgid is its pid: the launcher ran setpgid). True if anything was there. */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** The group's sockets as its children see them (fd 3, 4, ...), for the hand-off protocols. */
function handed(listeners: readonly SharedListener[]) {
  return listeners.map((s, i) => ({ childFd: 3 + i, family: s.family, address: s.address ?? '', port: s.port ?? 0, text: s.text ?? '' }));
}

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
  /** What differs per worker (a config's %(process_num)d in command= or directory=). */
  perSlot?: (slot: number) => { program: string; args: readonly string[]; cwd: string };
  /** The children's umask (a config's umask=); none: the runtime's. */
  umask?: number | null;
  /** Run as this user, primary group and supplementary groups (a config's user=; the runtime is root): the launcher's --uid/--gid/--groups. */
  user?: { uid: number; gid: number; groups?: readonly number[] } | null;
}

/** A listening socket handed to every child of the group (at fd 3, 4, ... in its order). */
export interface SharedListener {
  fd: number;
  family: 4 | 6 | 'unix';
  /** Numeric address or socket path, port, and the -b text (for the hand-off protocols that name them). */
  address?: string;
  port?: number;
  text?: string;
}

export interface GroupShellOptions {
  /** Shown in logs ("web"); '' for the master's one unnamed group. */
  name: string;
  /** The group's engine configuration (the drain signal, for -k's death signal). */
  core: Partial<CoreConfig>;
  launch: LaunchSpec;
  listeners: readonly SharedListener[];
  /**
   * How the children receive their sockets, beyond einhorn's variables (always set): the
   * hand-off protocols of handoff.ts (--handoff for the master, `port` for the dyno's web type).
   */
  handoff?: { names: readonly HandoffName[]; ctx: HandoffContext };
  /** EINHORN_SOCK_PATH. */
  socketPath: string;
  killChildrenOnExit: boolean;
  /**
   * Stop signals (the drain signal, the shutdown signal) go to each worker's
   * whole process group, as Heroku signals every process of a dyno; otherwise
   * to the worker alone (einhorn). SIGKILL always takes the group.
   */
  stopGroup?: boolean;
  /** SIGKILL takes the worker's whole process group (default); false: the worker alone (a config's killasgroup=false). */
  killGroup?: boolean;
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
  output?: (child: WorkerProcess, slot: number) => void;
  /** A worker process was started (the memory keeper compacts after a burst of them). */
  onWorkerSpawn?: (pid: number, slot: number) => void;
  /** A worker process exited (after its process group was signalled, before the engine hears of it). */
  onWorkerExit?: (pid: number, slot: number, code: number | null, signal: string | null) => void;
  /** How bursts of spawns are paced (spawn-pace.ts); null: not at all; default: by the CPUs here. */
  spawnPace?: SpawnPaceConfig | null;
  /** The machine's runnable threads (default: /proc/loadavg); a test's stand-in. */
  runnableThreads?: () => number;
}

export { SPAWN_BATCH, defaultSpawnPace } from './spawn-turns.js';

/** What the shell reads of its group's engine (never changes it). */
export interface GroupView {
  /** The whole state (copies every worker: not per spawn or exit). */
  snapshot(): CoreSnapshot;
  /** One worker, by pid or id. */
  worker(ref: { pid: number } | { id: number }): WorkerView | undefined;
  /** Whether a worker of a generation older than this one is up (counted, not a snapshot). */
  olderUp(generation: number): boolean;
  config(): CoreConfig;
  /** The shutdown signal while shutting down, else null. */
  shuttingDown(): string | null;
}

interface QueuedSpawn {
  id: number;
  slot: number;
  generation: number;
}

export class GroupShell {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Live workers by pid (spawned here or adopted after a reload): their slot (null: an adopted one the engine did not know). */
  private readonly children = new Map<number, number | null>();
  /** Spawns handed to the spawner whose pid has not come back yet. */
  private spawning = 0;
  private launch: LaunchSpec;
  private listeners: readonly SharedListener[];
  /** Restarts and last exit status per slot (what `status` shows). */
  history = new SlotHistory();
  /** When the last worker was spawned (einhorn's last_spinup), on the host's clock. */
  lastSpinup: number | null = null;
  private readonly boot: BootPriority;
  /** Spawns in turns of 8, a burst paced by the CPUs (spawn-turns.ts). */
  private readonly turns: SpawnTurns<QueuedSpawn>;
  private envCopy: { from: NodeJS.ProcessEnv; copy: NodeJS.ProcessEnv } | null = null;

  constructor(
    private readonly opts: GroupShellOptions,
    /** The group's engine state now (read, never changed). */
    private readonly view: GroupView,
    /** An event for this group's engine (queued by the host behind the one being handled). */
    private readonly emit: (ev: Event) => void,
    private readonly now: () => number,
  ) {
    this.boot = new BootPriority(opts.upgradeNice ?? 0, opts.niceWorker ?? null, opts.log);
    this.turns = new SpawnTurns<QueuedSpawn>({
      start: (q) => this.spawn(q.id, q.slot, q.generation),
      inFlight: () => this.spawning,
      pace: opts.spawnPace === undefined ? defaultSpawnPace() : opts.spawnPace,
      runnable: opts.runnableThreads ?? (() => runnableThreads()),
      now: this.now,
      debug: () => (this.opts.log.enabled('debug') ? (m) => this.debug(m) : null),
    });
    this.launch = opts.launch;
    this.listeners = opts.listeners;
  }

  get name(): string {
    return this.opts.name;
  }

  /** Use this launch spec from the next spawn on (an upgrade then rolls it out). */
  setLaunch(spec: LaunchSpec): void {
    this.launch = spec;
  }

  get launchSpec(): LaunchSpec {
    return this.launch;
  }

  /** Hand these sockets to the children spawned from now on (the ones running keep theirs). */
  setListeners(listeners: readonly SharedListener[]): void {
    this.listeners = listeners;
  }

  hasPid(pid: number): boolean {
    return this.children.has(pid);
  }

  /**
   * Carry on with workers an image before a reload started: adopted by pid (they are
   * still this process's children) and reaped as the ones spawned here; one that died
   * during the exec is reaped at once.
   */
  adopt(pids: readonly number[]): void {
    for (const pid of pids) {
      const slot = this.view.worker({ pid })?.slot ?? null;
      this.children.set(pid, slot);
      spawner.adopt(pid, (code, signal) => this.exited(pid, slot, code, signal));
    }
  }

  /** A worker's end: what it left in its process group goes with it, then the engine hears of it. */
  private exited(pid: number, slot: number | null, code: number | null, signal: string | null): void {
    this.children.delete(pid);
    if (signalGroup(pid, 'SIGTERM')) this.log('info', `Sent SIGTERM to what worker ${pid} left in its process group`);
    if (slot !== null) this.opts.onWorkerExit?.(pid, slot, code, signal);
    this.emit({ type: 'exited', pid, code, signal });
  }

  /** The pids of the live workers: those spawned here and those adopted after a reload. */
  *pids(): IterableIterator<number> {
    yield* this.children.keys();
  }

  /** Before the engine handles `ev`: note a worker's end in its slot's history, while the engine still knows the worker. */
  before(ev: Event): void {
    if (ev.type !== 'exited' && ev.type !== 'spawnFailed') return;
    const w = this.view.worker(ev.type === 'exited' ? { pid: ev.pid } : { id: ev.id });
    if (!w) return;
    if (ev.type === 'spawnFailed') this.history.spawnFailed(w.slot, ev.error);
    else this.history.exited(w.slot, ev.code, ev.signal, w.state === 'stopping' || w.state === 'killed');
  }

  /** After the engine handled an event, before its effects: a worker just up gets its priority back first. */
  after(): void {
    if (this.boot.pending) this.boot.settle((pid) => this.view.worker({ pid })?.state);
  }

  /** Drop every pending timer (at exit). */
  stopTimers(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.turns.clear();
  }

  private log(level: LogLevel, message: string, ctx: { pid?: number; slot?: number } = {}): void {
    this.opts.log.log(level, this.opts.name ? `[${this.opts.name}] ${message}` : message, ctx);
  }

  private debug(message: string): void {
    if (this.opts.log.enabled('debug')) this.log('debug', message);
  }

  apply(e: GroupEffect): void {
    switch (e.type) {
      case 'spawn':
        return this.turns.push({ id: e.id, slot: e.slot, generation: e.generation ?? 0 });
      case 'kill':
        // SIGKILL escalation takes the worker's whole process group (its own
        // grandchildren included); other signals go to the worker alone.
        if (e.signal === 'SIGKILL' && this.opts.killGroup !== false) signalGroup(e.pid, 'SIGKILL');
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
            this.emit({ type: 'timer', key: e.key });
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
      case 'log': {
        const ctx: { pid?: number; slot?: number } = {};
        if (e.pid !== undefined) ctx.pid = e.pid;
        if (e.slot !== undefined) ctx.slot = e.slot;
        return this.log(e.level, e.message, ctx);
      }
    }
  }

  /**
   * Every spawn waiting for its turn started now (before a reload's snapshot; the runtime
   * then waits for them: spawner.settle). True if any was.
   */
  startQueued(): boolean {
    let q: QueuedSpawn | undefined;
    let any = false;
    while ((q = this.turns.next())) {
      any = true;
      this.spawn(q.id, q.slot, q.generation);
    }
    return any;
  }

  /** Spawns started whose pid has not come back yet. */
  get spawnsPending(): number {
    return this.spawning;
  }

  /**
   * The environment the children start from, as a plain object: process.env itself (the
   * master's launch) answers every read through the C++ environment (32 us to copy its 40
   * variables at each of 1,000 spawns, 3 us from a plain copy). The master never changes its
   * own environment, so the copy is made once per environment object.
   */
  private plainEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    if (env !== process.env) return env;
    if (this.envCopy?.from !== env) this.envCopy = { from: env, copy: { ...env } };
    return this.envCopy.copy;
  }

  private isStopSignal(signal: string): boolean {
    return signal === this.view.config().drainSignal || signal === this.view.shuttingDown();
  }

  private spawn(id: number, slot: number, generation = 0): void {
    const spec = this.launch.perSlot ? { ...this.launch, ...this.launch.perSlot(slot) } : this.launch;
    let path: string;
    try {
      path = resolveProgram(spec.program, spec.env.PATH, spec.cwd);
    } catch (err) {
      this.emit({ type: 'spawnFailed', id, error: (err as Error).message });
      return;
    }
    const listeners = this.listeners;
    const passed: PassedSocket[] = listeners.map((s, i) => ({
      childFd: 3 + i,
      family: s.family === 'unix' ? 'AF_UNIX' : s.family === 6 ? 'AF_INET6' : 'AF_INET',
    }));
    const env = {
      ...childEnv({
        base: this.plainEnv(spec.env),
        drop: spec.dropEnv,
        masterPid: process.pid,
        sockPath: this.opts.socketPath,
        sockets: passed,
        slot,
      }),
      ...(spec.extraEnv?.(slot) ?? {}),
      ...(this.opts.handoff ? handoffEnv(this.opts.handoff.names, handed(listeners), this.opts.handoff.ctx) : {}),
    };
    let pair: [number, number] | null = null;
    if (this.opts.adoptControlFd) {
      try {
        pair = native.socketPair();
      } catch (err) {
        this.emit({ type: 'spawnFailed', id, error: (err as Error).message });
        return;
      }
      env.EINHORN_SOCK_FD = String(3 + listeners.length);
    }
    const extraFds = pair ? [pair[1]] : [];
    const closePair = () => {
      if (pair) for (const fd of pair) native.close(fd);
      pair = null;
    };
    const bootNice = this.boot.forSpawn(() => this.view.olderUp(generation));
    const launch = launcherArgs({
      closeFrom: 3 + listeners.length + extraFds.length,
      nice: bootNice ?? this.opts.niceWorker ?? null,
      deathSignal: this.opts.killChildrenOnExit ? (osConstants.signals[(this.opts.core.drainSignal ?? 'SIGUSR2') as NodeJS.Signals] ?? osConstants.signals.SIGUSR2) : null,
      user: spec.user ?? null,
      cwd: spec.cwd,
      umask: spec.umask ?? processUmask,
      path,
      argv: [spec.program, ...spec.args],
    });
    // No closure in spawn() may use `env`: the worker's exit handler keeps spawn()'s context,
    // and every live worker held its whole environment (~2.5 KB; child-env.ts envChanges).
    if (this.opts.log.enabled('debug')) {
      this.debug(
        `Spawning index ${slot} (generation ${generation}): ${[path, ...spec.args].join(' ')}` +
          `${spec.cwd === process.cwd() ? '' : ` in ${spec.cwd}`}; ${envChanges(spec.env, env)}` +
          (bootNice !== null ? `; nice ${bootNice} until it is up` : this.opts.niceWorker != null ? `; nice ${this.opts.niceWorker}` : ''),
      );
    }
    // Output pipes: socketpairs, as libuv makes for 'pipe' (our ends close-on-exec).
    const outPairs: [number, number][] = [];
    if (this.opts.output) {
      try {
        for (let i = 0; i < 2; i++) outPairs.push(native.socketPair());
      } catch (err) {
        for (const p of outPairs) for (const fd of p) native.close(fd);
        closePair();
        this.emit({ type: 'spawnFailed', id, error: (err as Error).message });
        return;
      }
    }
    const closeOut = (ends: 0 | 1) => {
      for (const p of outPairs) native.close(p[ends]);
    };
    const fds = [0, outPairs[0]?.[1] ?? 1, outPairs[1]?.[1] ?? 2, ...listeners.map((s) => s.fd), ...extraFds];
    const spawnSpec = { path: native.launcherPath, argv: [native.launcherPath, ...launch], env, fds };
    const started = (pid: number) => {
      if (!this.view.worker({ id })) {
        // The engine forgot it while it was being spawned (its group went away): not left running.
        this.log('warn', `Worker ${pid} (index ${slot}) started after its group let it go; stopping it`);
        if (pair) native.close(pair[0]);
        pair = null;
        closeOut(0);
        spawner.onExit(pid, () => undefined);
        signalGroup(pid, 'SIGTERM');
        return;
      }
      if (pair) {
        this.opts.adoptControlFd?.(pair[0], pid);
        pair = null;
      }
      this.children.set(pid, slot);
      this.lastSpinup = this.now();
      if (bootNice !== null) this.boot.spawned(pid);
      let child: PipedWorker | null = null;
      if (this.opts.output) {
        child = new PipedWorker(pid, readEnd(outPairs[0]![0]), readEnd(outPairs[1]![0]));
        this.opts.output(child, slot);
      }
      spawner.onExit(pid, (code, signal) => {
        this.exited(pid, slot, code, signal);
        child?.emit('exit', code, signal);
      });
      this.opts.onWorkerSpawn?.(pid, slot);
      this.emit({ type: 'spawned', id, pid });
    };
    const failed = (error: string) => {
      closeOut(0);
      if (pair) native.close(pair[0]);
      pair = null;
      this.emit({ type: 'spawnFailed', id, error });
    };
    let pid: number | null = null;
    let error: string | null = null;
    try {
      // With -k the child's death signal is armed against its parent *thread*: a spawner
      // thread would end at a reload's execve and fire it, so those are spawned from this one.
      if (this.opts.killChildrenOnExit) pid = spawner.startSync(spawnSpec);
      else {
        spawner.start(spawnSpec, (r) => {
          this.spawning--;
          if ('pid' in r) started(r.pid);
          else failed(r.error);
        });
        this.spawning++;
      }
    } catch (err) {
      error = (err as Error).message;
    }
    // The child (or the addon, until it is spawned) has its own copies of its ends.
    closeOut(1);
    if (pair) native.close(pair[1]);
    if (error !== null) failed(error);
    else if (pid !== null) started(pid);
  }
}
