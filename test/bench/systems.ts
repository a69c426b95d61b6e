/**
 * The two things the bench runs under load:
 * - Baseline: one socket bound here (native-reuseport), N children started on it, no supervisor.
 * - Ours: bin/einhyrningsins -n N with the same child, driven over its control socket.
 * Both track every process they start and can always be stopped or killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ControlClient } from '@einhyrningsins/ctl';
import * as native from 'native-reuseport';
import { BIN, ROOT, sleep, until } from '../harness.js';
import { Tracked, childrenOf } from '../proc.js';

/** The child is plain JS, used from the source tree. */
export const CHILD = join(ROOT, 'test', 'bench', 'child.mjs');
/** The baseline's process starter (plain JS, from the source tree). */
const SPAWNER = join(ROOT, 'test', 'bench', 'baseline-spawner.mjs');
export const HOST = '127.0.0.1';

export { sleep };

/** Races a promise against a deadline. */
export async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** The environment without anything einhorn-ish from outside (e.g. a bench run under einhorn). */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('EINHORN_')) env[k] = v;
  return env;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export interface StopReport {
  /** Processes that had to be SIGKILLed (should be 0). */
  killed: number;
  ms: number;
}

export interface System {
  readonly kind: 'baseline' | 'ours';
  readonly port: number;
  /** Spawn to N ready workers. */
  readonly readyMs: number;
  /** The supervisor's pid (null for the baseline). */
  readonly masterPid: number | null;
  workerPids(): Promise<number[]>;
  stop(): Promise<StopReport>;
  /** Synchronous SIGKILL of everything started (last resort). */
  kill(): void;
}

/** Everything started and not yet stopped, for cleanup on failure or a signal. */
export const live = new Set<System>();

// ---- baseline ------------------------------------------------------------------

export class Baseline implements System {
  readonly kind = 'baseline';
  readonly masterPid = null;
  /** Every child started: its exit is known from the spawner's `exit` lines. */
  private readonly children = new Map<number, { t: Tracked; exited: Promise<void>; gone: boolean; done: () => void }>();
  private spawner: ChildProcess | null = null;
  private spawnerExited: Promise<void> = Promise.resolve();
  /** Waiters for `pid` lines from the spawner. */
  private pidWaiters: Array<(pid: number) => void> = [];
  private lineBuf = '';
  private fd: number | null;
  readyMs = 0;
  readonly port: number;

  private constructor(private readonly dir: string) {
    this.fd = native.listenTcp({
      host: HOST,
      port: 0,
      family: 4,
      reuseAddr: true,
      reusePort: false,
      nonBlock: false,
      v6Only: null,
      backlog: 100, // einhyrningsins's default -l
    });
    this.port = native.getsockname(this.fd).port;
  }

  /**
   * `graceful`: the children run the worker library's gracefulDrain too, as ours do. The
   * children are started by a small spawner process (baseline-spawner.mjs), as Server::Starter
   * starts its own: a fork inside the bench process would slow its load generator.
   */
  static async start(n: number, graceful = false): Promise<Baseline> {
    const t0 = performance.now();
    const b = new Baseline(mkdtempSync(join(tmpdir(), 'ein-bench-base-')));
    live.add(b);
    const env = { ...cleanEnv(), EINHORN_FD_COUNT: '1', EINHORN_FD_0: '3', BENCH_READY_DIR: b.dir, BENCH_GRACEFUL: graceful ? '1' : '0' };
    const sp = spawn(process.execPath, [SPAWNER, CHILD], { stdio: ['pipe', 'pipe', 'inherit', b.fd as number], env, cwd: b.dir });
    b.spawner = sp;
    b.spawnerExited = new Promise((r) => sp.once('exit', () => r()));
    sp.stdout?.on('data', (d: Buffer) => b.onSpawnerOutput(d));
    const first = await b.spawnSome(n);
    await b.untilListening(first, n);
    b.readyMs = performance.now() - t0;
    return b;
  }

  private onSpawnerOutput(d: Buffer): void {
    this.lineBuf += d.toString();
    let i: number;
    while ((i = this.lineBuf.indexOf('\n')) >= 0) {
      const line = this.lineBuf.slice(0, i);
      this.lineBuf = this.lineBuf.slice(i + 1);
      const [what, pidText] = line.split(' ');
      const pid = Number(pidText);
      if (what === 'pid') {
        let done = () => {};
        const exited = new Promise<void>((r) => (done = r));
        this.children.set(pid, { t: new Tracked(pid), exited, gone: false, done });
        this.pidWaiters.shift()?.(pid);
      } else if (what === 'exit') {
        const c = this.children.get(pid);
        if (c) {
          c.gone = true;
          c.done();
        }
      }
    }
  }

  private async spawnSome(n: number): Promise<Set<number>> {
    const got = Array.from({ length: n }, () => new Promise<number>((r) => this.pidWaiters.push(r)));
    this.spawner?.stdin?.write(`spawn ${n}\n`);
    return new Set(await within('the baseline spawner to start its children', Promise.all(got), 10_000));
  }

  /** The spawner's pid (it forks the children, as Server::Starter's process does). */
  get spawnerPid(): number | null {
    return this.spawner?.pid ?? null;
  }

  private liveChildren() {
    return [...this.children.values()].filter((c) => !c.gone);
  }

  /** Until every child of `pids` has written its ready file (it listens). */
  private async untilListening(pids: Set<number>, n: number): Promise<void> {
    await until(
      `${n} baseline children listening`,
      () => {
        const dead = [...pids].find((p) => this.children.get(p)?.gone);
        if (dead !== undefined) throw new Error(`baseline child ${dead} exited`);
        return pids.size >= n && readdirSync(this.dir).filter((f) => pids.has(Number(f))).length >= n;
      },
      15_000,
      5,
    );
  }

  /**
   * A restart done the way Server::Starter does one (its default --interval 1): start a
   * new set of N children; once every one listens, wait `intervalMs`; then ask the old
   * ones to drain (SIGUSR2: the worker library's gracefulDrain) and wait until they have
   * exited. `ms`: from the start to the old ones gone (the new ones were ready before).
   * The upgrade-window phase's reference, next to which ours is measured.
   */
  async restart(intervalMs: number, timeoutMs = 20_000): Promise<{ ms: number }> {
    const t0 = performance.now();
    const old = this.liveChildren();
    const n = old.length;
    const fresh = await this.spawnSome(n);
    await this.untilListening(fresh, n);
    await sleep(intervalMs);
    for (const c of old) c.t.kill('SIGUSR2');
    await within('old baseline children to drain and exit', Promise.all(old.map((c) => c.exited)), timeoutMs);
    return { ms: performance.now() - t0 };
  }

  async workerPids(): Promise<number[]> {
    return this.liveChildren().map((c) => c.t.pid);
  }

  async stop(): Promise<StopReport> {
    const t0 = performance.now();
    const all = [...this.children.values()];
    for (const c of all) if (!c.gone) c.t.kill('SIGTERM');
    let killed = 0;
    try {
      await within('baseline children exit', Promise.all(all.map((c) => c.exited)), 5000);
      this.spawner?.stdin?.end();
      await within('the baseline spawner to exit', this.spawnerExited, 5000);
    } catch {
      for (const c of all) if (c.t.kill('SIGKILL')) killed++;
      if (this.spawner?.pid !== undefined && this.spawner.exitCode === null && this.spawner.signalCode === null) {
        this.spawner.kill('SIGKILL');
        killed++;
      }
    }
    this.release();
    return { killed, ms: performance.now() - t0 };
  }

  kill(): void {
    for (const c of this.children.values()) c.t.kill('SIGKILL');
    this.spawner?.kill('SIGKILL');
    this.release();
  }

  private release(): void {
    if (this.fd !== null) native.close(this.fd);
    this.fd = null;
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}

// ---- ours ----------------------------------------------------------------------

export interface WorkerState {
  pid: number;
  slot: number;
  generation: number;
  state: string;
  acked: boolean;
}

export class Ours implements System {
  readonly kind = 'ours';
  readyMs = 0;
  port = 0;
  private stderrTail = '';
  private readonly seen = new Map<number, Tracked>();
  private readonly master: Tracked | null;
  private readonly exited: Promise<void>;
  /** One connection for upgrades, one for status polls (requests go one at a time per connection). */
  private ctlUpgrade: ControlClient | null = null;
  private ctlPoll: ControlClient | null = null;

  private constructor(
    readonly n: number,
    private readonly dir: string,
    private readonly proc: ChildProcess,
  ) {
    this.master = proc.pid !== undefined ? new Tracked(proc.pid) : null;
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    proc.stdout?.on('data', (d: Buffer) => this.tail(d));
    proc.stderr?.on('data', (d: Buffer) => this.tail(d));
  }

  /** With `logToFile`: the master's (and its workers') output goes to this file. */
  private logFile: string | null = null;

  get sockPath(): string {
    return join(this.dir, 'b.sock');
  }

  get masterPid(): number {
    return this.proc.pid as number;
  }

  /** The last lines the master (and its workers) printed, for error messages. */
  get log(): string {
    if (this.logFile) {
      try {
        return readFileSync(this.logFile, 'utf8').slice(-8000);
      } catch {
        return '';
      }
    }
    return this.stderrTail;
  }

  private tail(d: Buffer): void {
    this.stderrTail = (this.stderrTail + d.toString()).slice(-8000);
  }

  /**
   * `logToFile`: the master writes its log into a file, as under a journal, instead of a pipe
   * to the bench (the upgrade-window phase: on a loaded machine a pipe the bench reads late
   * blocks the master's synchronous log writes in the very window being measured).
   */
  static async start(n: number, opts: { logToFile?: boolean } = {}): Promise<Ours> {
    const t0 = performance.now();
    const dir = mkdtempSync(join(tmpdir(), 'ein-bench-'));
    // BENCH_OURS_ARGS: extra master options, for A/B runs (e.g. "--upgrade-nice 0").
    const extra = (process.env.BENCH_OURS_ARGS ?? '').split(/\s+/).filter(Boolean);
    const args = [BIN, '-n', String(n), '-b', `${HOST}:0,r`, '-m', 'manual', '-d', join(dir, 'b.sock'), ...extra, '--', process.execPath, CHILD];
    const logFile = opts.logToFile ? join(dir, 'master.log') : null;
    const logFd = logFile ? openSync(logFile, 'a') : null;
    let proc: ChildProcess;
    try {
      proc = spawn(process.execPath, args, { stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'], env: cleanEnv(), cwd: dir });
    } finally {
      if (logFd !== null) closeSync(logFd);
    }
    const o = new Ours(n, dir, proc);
    o.logFile = logFile;
    live.add(o);
    const failed = () => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`einhyrningsins exited (${proc.exitCode ?? proc.signalCode}):\n${o.log}`);
      }
    };
    const m = await until(
      'the master to log "listening on"',
      () => {
        failed();
        return /listening on 127\.0\.0\.1:(\d+)/.exec(o.log);
      },
      10_000,
      10,
    );
    o.port = Number(m[1]);
    o.ctlUpgrade = await ControlClient.connect(o.sockPath);
    o.ctlPoll = await ControlClient.connect(o.sockPath);
    await until(
      `${n} acked workers (master log:\n${o.log})`,
      async () => {
        failed();
        const ws = await o.workers();
        return ws.length === n && ws.every((w) => w.state === 'up' && w.acked);
      },
      15_000,
      10,
    );
    o.readyMs = performance.now() - t0;
    return o;
  }

  /** The workers as `status` reports them (remembered for cleanup). */
  async workers(): Promise<WorkerState[]> {
    const [r] = await within('status reply', (this.ctlPoll as ControlClient).call('status'), 5000);
    const ws = (r as unknown as { state?: { workers?: WorkerState[] } } | undefined)?.state?.workers;
    if (!ws) throw new Error(`status reply without state.workers: ${JSON.stringify(r)}`);
    for (const w of ws) if (!this.seen.has(w.pid)) this.seen.set(w.pid, new Tracked(w.pid));
    return ws;
  }

  async workerPids(): Promise<number[]> {
    return (await this.workers()).map((w) => w.pid);
  }

  /**
   * One rolling upgrade, measured: `upgrade` is sent at t0; `replyMs` is when
   * the final reply came ("Upgrade done"), `ms` when every worker live at t0
   * has exited (/proc) and `n` workers that did not exist before are acked.
   */
  async upgrade(timeoutMs = 20_000): Promise<{ ms: number; replyMs: number; message: string; ok: boolean }> {
    const before = await this.workers();
    const old = before.map((w) => new Tracked(w.pid));
    const oldPids = new Set(before.map((w) => w.pid));
    const t0 = performance.now();
    let replyMs = -1;
    let message = '';
    const reply = (async () => {
      for await (const r of (this.ctlUpgrade as ControlClient).request('upgrade')) {
        message = r.message;
        if (!r.wait) replyMs = performance.now() - t0;
      }
    })();
    reply.catch(() => {});
    const ms = await until(
      `upgrade: old workers ${[...oldPids].join(',')} gone and ${this.n} new acked`,
      async () => {
        if (old.some((t) => t.alive)) return null;
        const ws = await this.workers();
        const fresh = ws.filter((w) => !oldPids.has(w.pid));
        return ws.length === this.n && fresh.length === this.n && fresh.every((w) => w.acked && w.state === 'up')
          ? performance.now() - t0
          : null;
      },
      timeoutMs,
      5,
    );
    await within('the final reply to upgrade', reply, timeoutMs);
    return { ms, replyMs, message, ok: message === 'Upgrade done' };
  }

  /**
   * One rolling upgrade without asking the master anything while it runs (`upgrade`'s
   * status polls cost the master CPU in the very window being measured): done once the
   * final reply has come (the new workers are up) and every worker live before has exited
   * (/proc, every 5 ms).
   */
  async upgradeUnpolled(timeoutMs = 20_000): Promise<{ ms: number; ok: boolean }> {
    const old = (await this.workers()).map((w) => new Tracked(w.pid));
    const t0 = performance.now();
    let message = '';
    await within(
      'the final reply to upgrade',
      (async () => {
        for await (const r of (this.ctlUpgrade as ControlClient).request('upgrade')) message = r.message;
      })(),
      timeoutMs,
    );
    if (message !== 'Upgrade done') throw new Error(`upgrade: ${message}`);
    const ms = await until(`upgrade: old workers gone`, () => (old.some((t) => t.alive) ? null : performance.now() - t0), timeoutMs, 5);
    return { ms, ok: true };
  }

  /** SIGTERM (graceful: workers drain), wait; then SIGKILL whatever is left. */
  async stop(): Promise<StopReport> {
    const t0 = performance.now();
    try {
      await this.workers();
    } catch {
      /* best effort: remember the latest workers */
    }
    this.ctlUpgrade?.close();
    this.ctlPoll?.close();
    this.rememberChildren();
    this.master?.kill('SIGTERM');
    let killed = 0;
    try {
      await within('einhyrningsins to exit', this.exited, 10_000);
    } catch {
      this.rememberChildren();
      if (this.master?.kill('SIGKILL')) killed++;
    }
    // The master waits for its workers; any still alive now is a leak.
    await sleep(50);
    for (const t of this.seen.values()) if (t.kill('SIGKILL')) killed++;
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
    return { killed, ms: performance.now() - t0 };
  }

  /** Every worker ever reported, plus whatever the master has as children right now. */
  private rememberChildren(): void {
    if (!this.master?.alive) return;
    for (const pid of childrenOf(this.master.pid)) if (!this.seen.has(pid)) this.seen.set(pid, new Tracked(pid));
  }

  kill(): void {
    this.rememberChildren();
    this.master?.kill('SIGKILL');
    for (const t of this.seen.values()) t.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}
