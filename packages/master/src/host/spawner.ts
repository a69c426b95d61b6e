/**
 * Workers started off the event loop, one per process: the launcher is posix_spawn'ed on
 * the native addon's threads (native/spawn.c), the pid comes back in a later turn, and
 * exits are reaped on SIGCHLD with waitpid of exactly those pids (reapSpawned). Node's
 * child_process.spawn forked the whole master on the event loop's thread and waited there
 * for the child's exec: 8 ms each, hundreds on a loaded machine, with ACKs, operator
 * commands and health checks waiting behind it.
 */
import { constants as osConstants } from 'node:os';
import * as native from 'native-reuseport';
import { probe, probeStart } from '../loop-probe.js';

const SIGNAL_NAMES = new Map<number, string>(Object.entries(osConstants.signals).map(([name, n]) => [n, name]));

/**
 * This process's umask as it was when the program started. The master sets it for a moment
 * around a unix socket's bind() (control-server.ts, unix-bind.ts); a spawn on another thread
 * at that moment would give the child that one, so every child gets this one by name
 * (the launcher's --umask) unless its program asks for its own.
 */
export const processUmask: number = (() => {
  const m = process.umask(0o022);
  process.umask(m);
  return m;
})();

/** What to start: the launcher, its argv (argv[0] included), the environment, and the child's fds 0, 1, 2, 3, ... */
export interface SpawnSpec {
  path: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
  fds: number[];
}

export type ExitHandler = (code: number | null, signal: string | null) => void;
export type SpawnDone = (r: { pid: number } | { error: string }) => void;

function envList(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const k in env) {
    const v = env[k];
    if (v !== undefined) out.push(`${k}=${v}`);
  }
  return out;
}

class Spawner {
  private initialized = false;
  private readonly pending = new Map<number, SpawnDone>();
  private readonly exits = new Map<number, ExitHandler>();
  /** Called once after the next batch of results is handed out. */
  private afterResults: Array<() => void> = [];
  private reapQueued = false;
  private reapAllNext = false;
  private readonly onSigchld = () => this.scheduleReap();
  /** Held (ref'd) while children are watched: a live child keeps the process up, as a ChildProcess does. */
  private keepAlive: NodeJS.Timeout | null = null;

  private init(): void {
    if (this.initialized) return;
    native.spawnInit(() => this.takeResults());
    process.on('SIGCHLD', this.onSigchld);
    this.initialized = true;
  }

  /** Start a spawn; `done` hears of its pid (or error) in a later turn, `onExit` of its end after that. */
  start(spec: SpawnSpec, done: SpawnDone): void {
    this.init();
    const id = native.spawnStart(spec.path, spec.argv, envList(spec.env), spec.fds);
    this.pending.set(id, done);
  }

  /**
   * The same spawn on the event loop's thread, pid at once (vfork: no copy of the master,
   * but the loop waits for the launcher's exec). For children with PR_SET_PDEATHSIG: it
   * fires when the child's parent *thread* ends, and a reload's execve ends every thread
   * but this one.
   * @throws the spawn's error.
   */
  startSync(spec: SpawnSpec): number {
    this.init();
    return native.spawnSync(spec.path, spec.argv, envList(spec.env), spec.fds);
  }

  /** `pid`'s exit (code, signal name) goes to `handler`; it is reaped on SIGCHLD. */
  onExit(pid: number, handler: ExitHandler): void {
    this.exits.set(pid, handler);
    this.hold();
  }

  private hold(): void {
    if (this.exits.size === 0) {
      this.keepAlive?.unref();
      return;
    }
    this.keepAlive ??= setInterval(() => undefined, 2 ** 31 - 1);
    this.keepAlive.ref();
  }

  /** A worker started by the image before a re-exec (our child still): reaped as the others. */
  adopt(pid: number, handler: ExitHandler): void {
    this.init();
    native.spawnedAdopt(pid);
    this.onExit(pid, handler);
    // One may have died during the exec (its SIGCHLD went to the old image), or been
    // reaped by a --reexec-as wrapper (then it is not our child any more): ask for each.
    this.reapAllNext = true;
    this.scheduleReap();
  }

  /** Spawns started and not yet reported. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Wait (blocking) for every spawn in flight and report them all now: a reload's
   * snapshot must not hold a starting worker without a pid.
   */
  settle(): void {
    if (this.pending.size === 0) return;
    native.spawnWait();
    this.takeResults();
  }

  /** Once after the next batch of spawn results (a worker's early ACK waits for its pid). */
  whenResults(fn: () => void): void {
    this.afterResults.push(fn);
  }

  /** Hand out the spawns completed so far, now (without waiting for the addon's wake-up). */
  poll(): void {
    if (this.pending.size > 0) this.takeResults();
  }

  private takeResults(): void {
    const t0 = probeStart();
    for (const r of native.spawnResults()) {
      const done = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (!done) continue;
      done('pid' in r ? { pid: r.pid } : { error: r.error });
    }
    // A child that exited before its pid was registered sent its SIGCHLD too early.
    this.reap();
    if (this.afterResults.length > 0) {
      const fns = this.afterResults;
      this.afterResults = [];
      for (const fn of fns) fn();
    }
    probe?.task('spawn-results', t0);
  }

  private scheduleReap(): void {
    if (this.reapQueued) return;
    this.reapQueued = true;
    setImmediate(() => {
      this.reapQueued = false;
      this.reap();
    });
  }

  /** Every exited child of ours, to its handler (in the order the kernel gave them). */
  reap(): void {
    if (!this.initialized) return;
    const t0 = probeStart();
    const all = this.reapAllNext;
    this.reapAllNext = false;
    for (const r of native.reapSpawned(all)) {
      const handler = this.exits.get(r.pid);
      this.exits.delete(r.pid);
      const signal = r.signal === null ? null : (SIGNAL_NAMES.get(r.signal) ?? `SIG${r.signal}`);
      handler?.(r.code, signal);
    }
    this.hold();
    probe?.task('reap', t0);
  }
}

/** The process's one spawner (the registry of spawned pids is process-wide, in the addon). */
export const spawner = new Spawner();
