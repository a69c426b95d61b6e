/**
 * The scale phase of `npm run bench` (issue 24): einhyrningsins with 128, 256 and 1,000
 * trivial workers (test/bench/tiny-child.c: it ACKs, then sleeps until its drain signal).
 *
 * For each N: one master started with -n N; an `ehlo` poller on its own control
 * connection (one request every ~10 ms, each round trip recorded) runs from the moment
 * the control socket answers until the master is stopped, so the round trips cover the
 * spawn of N workers (and their N ACKs on the same socket) and one `upgrade` of them,
 * replies streamed to an operator connection. Measured: spawn to all N acked, master CPU
 * per worker spawned and per worker upgraded, the master's RSS per worker (against a
 * master of 1 worker in the same run, not polled, after 3 upgrades: test/bench/rss-base.ts,
 * the soak's base too), the round trips' max and p99 while spawning and
 * while upgrading, whether the operator's `upgrade` got its final reply, and the master's
 * CPU over 10 s once all are up and nothing happens.
 *
 * Over both windows, the master's event-loop thread: time on a CPU and time runnable but
 * waiting for one (/proc/PID/task/PID/schedstat; on a loaded machine the round trips follow the wait).
 *
 * Besides ehlo, every worker times its own ACK (connect to the master closing the
 * connection, BENCH_ACK_LOG): max and p99 while spawning and while upgrading.
 *
 * Then more upgrades of the same N, back to back (BENCH_SCALE_UPGRADES in all, bounded by
 * BENCH_SCALE_UPGRADE_S seconds): the master's RSS per worker after the first and after the
 * last shows whether anything grows with upgrades.
 *
 * The baseline of the spawn time, in the same run just before each master: the same N
 * children through the same launcher, spawned by a bare synchronous loop
 * (test/bench/bare-spawn.mjs, what the master did before it spawned in turns), to the
 * Nth ACK; the ratio is ours over it.
 *
 * Every wait is bounded; every process started is stopped (SIGTERM, then SIGKILL of
 * whatever is left: the master and every worker it reported).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ControlClient } from '@einhyrningsins/ctl';
import { launcherPath } from 'native-reuseport';
import { BIN, ROOT, sleep } from '../harness.js';
import { type RssPart, Tracked, childrenOf, clockTicks, cpuTicks, rssBreakdown, schedstat, statusKb } from '../proc.js';
import { cleanEnv, within } from './systems.js';
import { BASE_UPGRADES, SETTLE_MS } from './rss-base.js';
import { trips, type LoopTime, type ScaleResult, type ScaleRow, type Trips } from './scale-table.js';
import { traceReport, type LoopTraceFile, type Trip } from './scale-trace.js';

export { scaleTable, type ScaleCheck, type ScaleResult } from './scale-table.js';

export interface ScaleConfig {
  ns: number[];
  /** Seconds of nothing happening over which the idle master's CPU is measured (0: skip). */
  idleS: number;
  /** Upgrades of each N in all (at least 1), back to back ... */
  upgrades: number;
  /** ... or fewer, when they have taken this many seconds. */
  upgradeS: number;
}

const msPerTick = () => 1000 / clockTicks();

/** BENCH_SCALE_TRACE=1: what each slow round trip was (scale-trace.ts), after each N. */
const tracing = () => process.env.BENCH_SCALE_TRACE === '1';
/** Round trips over this are explained by the trace. */
const TRACE_OVER_MS = Number(process.env.BENCH_SCALE_TRACE_OVER_MS ?? 40);
/** CLOCK_MONOTONIC in ms (what the master's loop trace and the workers' ACK log use). */
const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

/** This thread's time waiting for a CPU so far, ms. */
function ownWaitMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[1]) / 1e6;
  } catch {
    return NaN;
  }
}

/** A window of the master's loop thread: call at its start, the result at its end. */
function loopWindow(pid: number): () => LoopTime | null {
  const t0 = performance.now();
  const s0 = schedstat(pid);
  return () => {
    const s1 = schedstat(pid);
    if (!s0 || !s1) return null;
    return { wallMs: performance.now() - t0, runMs: (s1[0] - s0[0]) / 1e6, waitMs: (s1[1] - s0[1]) / 1e6 };
  };
}

/** Compile the tiny child once per run (null: no C compiler here). */
function buildChild(dir: string): string | null {
  const out = join(dir, 'tiny-child');
  try {
    execFileSync(process.env.CC ?? 'cc', ['-O2', '-o', out, join(ROOT, 'test', 'bench', 'tiny-child.c')], { stdio: 'pipe' });
    return out;
  } catch {
    return null;
  }
}

/** One master with N tiny workers and its `ehlo` poller. */
class ScaleMaster {
  readonly dir = mkdtempSync(join(tmpdir(), 'ein-scale-'));
  private readonly proc: ChildProcess;
  private readonly master: Tracked;
  private readonly exited: Promise<void>;
  private readonly seen = new Map<number, Tracked>();
  private logTail = '';
  private logOffset = 0;
  private partial = '';
  /** [time, round trip ms] of every `ehlo`. */
  readonly samples: Array<[number, number]> = [];
  /** Every `ehlo` on CLOCK_MONOTONIC, with this thread's wait for a CPU over it (BENCH_SCALE_TRACE). */
  readonly ehlos: Trip[] = [];
  /** The master's loop trace, read when it has exited (BENCH_SCALE_TRACE). */
  trace: LoopTraceFile | null = null;
  private polling = true;
  /** The poller waits (the idle master's CPU is being measured: its requests would count). */
  paused = false;
  private poller: Promise<void> | null = null;
  private status: ControlClient | null = null;
  /** When the master logged its Nth ACK of the first generation. */
  allAckedAt: number | null = null;

  constructor(
    readonly n: number,
    child: string,
    readonly t0 = performance.now(),
  ) {
    const extra = (process.env.BENCH_OURS_ARGS ?? '').split(/\s+/).filter(Boolean);
    // BENCH_SCALE_BIN: another build's bin/einhyrningsins, for A/B runs against it.
    // BENCH_SCALE_NODE_ARGS: node's own flags for the master (e.g. --cpu-prof --cpu-prof-dir=DIR).
    const nodeArgs = (process.env.BENCH_SCALE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const args = [...nodeArgs, process.env.BENCH_SCALE_BIN ?? BIN, '-n', String(n), '-m', 'manual', '-d', this.sock, ...extra, '--', child];
    // The master logs into a file, as under a service manager's journal: through a pipe, its
    // log lines waited for this process (busy with the pollers) to read them, and a full pipe
    // blocks the master's writes.
    const logFd = openSync(this.logPath, 'a');
    try {
      const env: NodeJS.ProcessEnv = { ...cleanEnv(), BENCH_ACK_LOG: this.ackLog };
      if (tracing()) env.EINHYRNINGSINS_LOOP_TRACE = this.tracePath;
      this.proc = spawn(process.execPath, args, { stdio: ['ignore', logFd, logFd], env, cwd: this.dir });
    } finally {
      closeSync(logFd);
    }
    this.master = new Tracked(this.proc.pid as number);
    this.exited = new Promise((r) => this.proc.once('exit', () => r()));
  }

  get logPath(): string {
    return join(this.dir, 'master.log');
  }

  get tracePath(): string {
    return join(this.dir, 'loop.json');
  }

  /** Read what the master logged since the last look: "Up to K / N manual ACKs" tells when all are up. */
  private readLog(): void {
    let fd: number;
    try {
      fd = openSync(this.logPath, 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(1 << 16);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.logOffset);
        if (n <= 0) break;
        this.logOffset += n;
        const text = buf.subarray(0, n).toString();
        this.logTail = (this.logTail + text).slice(-4000);
        const lines = (this.partial + text).split('\n');
        this.partial = lines.pop() as string;
        for (const l of lines) {
          const m = /Up to (\d+) \/ (\d+) manual ACKs/.exec(l);
          if (m && m[1] === m[2]) this.allAckedAt ??= performance.now();
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  get sock(): string {
    return join(this.dir, 's.sock');
  }

  get ackLog(): string {
    return join(this.dir, 'acks.log');
  }

  /** Every worker's ACK round trip so far, ms by pid (test/bench/tiny-child.c writes them). */
  acks(): Map<number, number> {
    return new Map([...this.ackTrips()].map(([pid, t]) => [pid, t.ms]));
  }

  /** ... with when each started (CLOCK_MONOTONIC ms). */
  ackTrips(): Map<number, Trip> {
    const out = new Map<number, Trip>();
    let text = '';
    try {
      text = readFileSync(this.ackLog, 'utf8');
    } catch {
      return out;
    }
    for (const l of text.split('\n')) {
      const [pid, us, start] = l.split(' ');
      if (pid && us) out.set(Number(pid), { kind: 'ack', pid: Number(pid), ms: Number(us) / 1000, start: Number(start) / 1000 });
    }
    return out;
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  get log(): string {
    this.readLog();
    return this.logTail;
  }

  private failed(): void {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`einhyrningsins exited (${this.proc.exitCode ?? this.proc.signalCode}):\n${this.log}`);
  }

  /** Connect the poller (unless `poll` is false) and the status connection as soon as the socket answers. */
  async connect(poll = true): Promise<void> {
    const deadline = performance.now() + 10_000;
    for (;;) {
      this.failed();
      try {
        const ping = poll ? await ControlClient.connect(this.sock, { timeoutMs: 1000 }) : null;
        this.status = await ControlClient.connect(this.sock, { timeoutMs: 1000 });
        if (ping) this.poller = this.poll(ping);
        return;
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await sleep(5);
      }
    }
  }

  private async poll(c: ControlClient): Promise<void> {
    try {
      while (this.polling) {
        if (this.paused) {
          await sleep(10);
          continue;
        }
        const t = performance.now();
        const mono = monoMs();
        const w0 = ownWaitMs();
        await within('ehlo', c.call('ehlo'), 30_000);
        const ms = performance.now() - t;
        this.samples.push([t, ms]);
        if (tracing()) this.ehlos.push({ kind: 'ehlo', start: mono, ms, clientWaitMs: ownWaitMs() - w0 });
        await sleep(10);
      }
    } finally {
      c.close();
    }
  }

  tripsBetween(from: number, to: number): Trips {
    return trips(this.samples.filter(([t, ms]) => t + ms >= from && t <= to).map(([, ms]) => ms));
  }

  /** The workers as `status` reports them (remembered for cleanup). */
  async workers(): Promise<Array<{ pid: number; acked: boolean; state: string }>> {
    const [r] = await within('status', (this.status as ControlClient).call('status'), 30_000);
    const ws = (r as unknown as { state?: { workers?: Array<{ pid: number; acked: boolean; state: string }> } }).state?.workers ?? [];
    for (const w of ws) if (!this.seen.has(w.pid)) this.seen.set(w.pid, new Tracked(w.pid));
    return ws;
  }

  /** When the master logged its Nth ACK (status is not polled meanwhile: at 1,000 workers it costs the master tens of ms). */
  async allAcked(timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      this.readLog();
      if (this.allAckedAt !== null) break;
      this.failed();
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for the log of ${this.n} ACKs`);
      await sleep(5);
    }
    return this.allAckedAt;
  }

  /** Until N workers are acked and up, none other (none of `old`). */
  async allUp(timeoutMs: number, old: ReadonlySet<number> = new Set()): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      this.failed();
      const ws = await this.workers();
      if (ws.length === this.n && ws.every((w) => w.acked && w.state === 'up' && !old.has(w.pid))) return performance.now();
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${this.n} acked workers (${ws.filter((w) => w.acked).length} acked)`);
      await sleep(50);
    }
  }

  cpuMs(): number {
    return (cpuTicks(this.pid) ?? 0) * msPerTick();
  }

  rssKb(): number {
    return statusKb(this.pid, 'VmRSS') ?? NaN;
  }

  /** `upgrade` as an operator sends it, every reply read; the final message ('' if cut off). */
  async upgrade(timeoutMs: number): Promise<string> {
    const c = await ControlClient.connect(this.sock);
    let last = '';
    try {
      await within(
        'upgrade',
        (async () => {
          for await (const r of c.request('upgrade')) if (!r.wait) last = r.message;
        })(),
        timeoutMs,
      );
    } catch (err) {
      last = `cut off: ${(err as Error).message}`;
    } finally {
      c.close();
    }
    return last;
  }

  /** SIGTERM and wait; then SIGKILL whatever is left. Returns how many had to be killed. */
  async stop(): Promise<number> {
    this.polling = false;
    await this.poller?.catch(() => {});
    try {
      await this.workers();
    } catch {
      /* best effort */
    }
    this.status?.close();
    for (const pid of this.master.alive ? childrenOf(this.pid) : []) if (!this.seen.has(pid)) this.seen.set(pid, new Tracked(pid));
    this.master.kill('SIGTERM');
    let killed = 0;
    try {
      await within('einhyrningsins to exit', this.exited, 30_000);
    } catch {
      if (this.master.kill('SIGKILL')) killed++;
    }
    await sleep(50);
    for (const t of this.seen.values()) if (t.kill('SIGKILL')) killed++;
    if (tracing()) {
      try {
        this.trace = JSON.parse(readFileSync(this.tracePath, 'utf8')) as LoopTraceFile;
      } catch {
        this.trace = null;
      }
      // BENCH_SCALE_TRACE_KEEP=DIR: the raw files too (N-loop.json, N-acks.log, N-ehlo.json).
      const keep = process.env.BENCH_SCALE_TRACE_KEEP;
      if (keep && this.trace) {
        writeFileSync(join(keep, `${this.n}-loop.json`), JSON.stringify(this.trace));
        writeFileSync(join(keep, `${this.n}-ehlo.json`), JSON.stringify(this.ehlos));
        try {
          writeFileSync(join(keep, `${this.n}-acks.log`), readFileSync(this.ackLog));
        } catch {
          /* none */
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    return killed;
  }

  kill(): void {
    this.polling = false;
    this.master.kill('SIGKILL');
    for (const t of this.seen.values()) t.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const running = new Set<ScaleMaster>();

/** SIGKILL everything the scale phase started (last resort). */
export function killScale(): void {
  for (const m of running) m.kill();
  running.clear();
}

/** The baseline: N children through the launcher from a bare loop, ms from its start to the Nth ACK. */
async function bareSpawn(n: number, child: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ein-scale-bare-'));
  const sock = join(dir, 's.sock');
  const t0 = performance.now();
  const proc = spawn(process.execPath, [BARE_SPAWN, String(n), sock, launcherPath, child], { stdio: ['ignore', 'pipe', 'inherit'], env: cleanEnv(), cwd: dir });
  const pid = proc.pid as number;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kids: Tracked[] = [];
  try {
    const upAt = await within(
      `the bare loop's ${n} ACKs`,
      new Promise<number>((resolve, reject) => {
        proc.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('acked')) resolve(performance.now());
        });
        proc.once('exit', (code) => reject(new Error(`bare-spawn.mjs exited (${code})`)));
      }),
      120_000,
    );
    for (const p of childrenOf(pid)) kids.push(new Tracked(p));
    return upAt - t0;
  } finally {
    proc.kill('SIGTERM');
    try {
      await within('bare-spawn.mjs to exit', exited, 30_000);
    } catch {
      proc.kill('SIGKILL');
    }
    for (const k of kids) k.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const BARE_SPAWN = join(ROOT, 'test', 'bench', 'bare-spawn.mjs');

/**
 * The master's children from its threads' children lists (a few small files): not `status`,
 * which at 1,000 workers costs the master tens of ms and this process ~100 ms to parse, and
 * made the round trip in flight when the upgrade starts one of 140-190 ms (seen in the trace).
 */
function workerPids(pid: number): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      for (const w of readFileSync(`/proc/${pid}/task/${t}/children`, 'latin1').split(' ')) if (w.trim() !== '') out.push(Number(w));
    } catch {
      /* thread gone */
    }
  }
  return out;
}

/** One upgrade of every worker, to its end (the old all gone, N new up); [ms, CPU ms, reply]. */
async function upgradeAll(m: ScaleMaster): Promise<{ ms: number; cpuMs: number; reply: string; from: number; to: number; old: Set<number>; loop: LoopTime | null }> {
  const old = new Set(workerPids(m.pid));
  if (old.size !== m.n) throw new Error(`expected ${m.n} workers before the upgrade, the master has ${old.size} children`);
  const cpu0 = m.cpuMs();
  const loopEnd = loopWindow(m.pid);
  const from = performance.now();
  const reply = await m.upgrade(120_000);
  const tu1 = performance.now();
  // The old workers' exits are part of the upgrade: wait until they are all gone.
  const olds = [...old].map((p) => new Tracked(p));
  const deadline = performance.now() + 30_000;
  while (olds.some((t) => t.alive) && performance.now() < deadline) await sleep(20);
  const to = Math.max(tu1, performance.now());
  const cpuMs = m.cpuMs() - cpu0;
  return { ms: to - from, cpuMs, reply, from, to, old, loop: loopEnd() };
}

async function one(n: number, child: string, cfg: ScaleConfig, note: (m: string) => void): Promise<ScaleRow> {
  const row: ScaleRow = {
    n,
    upMs: NaN,
    bareUpMs: NaN,
    spawnAcks: trips([]),
    upgradeAcks: trips([]),
    spawnCpuMsPerWorker: NaN,
    spawnTrips: trips([]),
    upgradeMs: NaN,
    upgradeCpuMsPerWorker: NaN,
    upgradeTrips: trips([]),
    upgradeReply: '',
    rssKb: NaN,
    rssAfterUpgradeKb: NaN,
    upgradesDone: 0,
    rssAfterLastUpgradeKb: NaN,
    laterUpgradeCpuMsPerWorker: NaN,
    idleCpuMsPer10s: null,
    killed: 0,
  };
  try {
    row.bareUpMs = await bareSpawn(n, child);
  } catch (err) {
    row.error = `baseline: ${(err as Error).message}`;
    note(`scale N=${n} baseline failed: ${row.error}`);
    return row;
  }
  const m = new ScaleMaster(n, child);
  running.add(m);
  let windows: { spawn: [number, number]; upgrade: [number, number]; first: Set<number>; acks: Map<number, Trip> } | null = null;
  try {
    await m.connect();
    const cpu0 = m.cpuMs();
    const loopEnd = loopWindow(m.pid);
    const tConnected = performance.now();
    const tUp = await m.allAcked(120_000);
    row.spawnLoop = loopEnd();
    await m.allUp(10_000);
    row.upMs = tUp - m.t0;
    row.spawnCpuMsPerWorker = (m.cpuMs() - cpu0) / n;
    row.spawnTrips = m.tripsBetween(tConnected, tUp);
    const firstAcks = m.acks();
    const spawnWindow = [tConnected, tUp];
    row.spawnAcks = trips([...firstAcks.values()]);
    // Settled: the memory keeper compacts 2 s after workers come or go.
    await sleep(SETTLE_MS);
    row.rssKb = m.rssKb();
    if (cfg.idleS > 0) {
      m.paused = true;
      // After each worker's one-off `stable` timer (10 s after its ACK): idle means nothing pending.
      await sleep(Math.max(100, tUp + 10_500 - performance.now()));
      const c0 = m.cpuMs();
      await sleep(cfg.idleS * 1000);
      row.idleCpuMsPer10s = ((m.cpuMs() - c0) * 10) / cfg.idleS;
      m.paused = false;
    }
    note(`scale N=${n}: all up in ${Math.round(row.upMs)} ms (bare loop ${Math.round(row.bareUpMs)} ms); upgrading`);
    const u = await upgradeAll(m);
    row.upgradeReply = u.reply;
    row.upgradeMs = u.ms;
    row.upgradeCpuMsPerWorker = u.cpuMs / n;
    row.upgradeTrips = m.tripsBetween(u.from, u.to);
    row.upgradeLoop = u.loop;
    await m.allUp(10_000, u.old);
    row.upgradeAcks = trips([...m.acks()].filter(([pid]) => !firstAcks.has(pid)).map(([, ms]) => ms));
    windows = { spawn: spawnWindow as [number, number], upgrade: [u.from, u.to], first: new Set(firstAcks.keys()), acks: m.ackTrips() };
    row.upgradesDone = 1;
    await sleep(SETTLE_MS);
    row.rssAfterUpgradeKb = m.rssKb();
    // More upgrades, back to back, within the time given.
    const until = performance.now() + cfg.upgradeS * 1000;
    let laterCpu = 0;
    while (row.upgradesDone < cfg.upgrades && performance.now() < until) {
      const v = await upgradeAll(m);
      if (v.reply !== 'Upgrade done') throw new Error(`upgrade ${row.upgradesDone + 1}: ${v.reply}`);
      await m.allUp(10_000, v.old);
      laterCpu += v.cpuMs;
      row.upgradesDone += 1;
    }
    if (row.upgradesDone > 1) {
      row.laterUpgradeCpuMsPerWorker = laterCpu / ((row.upgradesDone - 1) * n);
      await sleep(SETTLE_MS);
      row.rssAfterLastUpgradeKb = m.rssKb();
      row.rssParts = rssBreakdown(m.pid);
      note(`scale N=${n}: ${row.upgradesDone} upgrades done`);
    }
  } catch (err) {
    row.error = `${(err as Error).message}\n${m.log}`;
    note(`scale N=${n} failed: ${row.error}`);
  } finally {
    row.killed = await m.stop();
    running.delete(m);
  }
  if (m.trace && windows) {
    const w = windows;
    const off = monoMs() - performance.now();
    const within = (t: Trip, [a, b]: [number, number]) => t.start + t.ms >= a + off && t.start <= b + off;
    const acks = [...w.acks.values()];
    for (const [what, range, ackSet] of [
      ['spawning', w.spawn, acks.filter((t) => w.first.has(t.pid as number))],
      ['upgrading', w.upgrade, acks.filter((t) => !w.first.has(t.pid as number))],
    ] as const) {
      const lines = traceReport(m.trace, [...m.ehlos.filter((t) => within(t, range)), ...ackSet], TRACE_OVER_MS, range[0] + off);
      note(`scale N=${n} trace, ${what}: round trips over ${TRACE_OVER_MS} ms (${lines.length})${lines.length ? `\n${lines.join('\n')}` : ''}`);
    }
  }
  return row;
}

/**
 * The master's RSS with one worker, the base of the per-worker figures (test/bench/rss-base.ts,
 * as the soak's): not polled, after BASE_UPGRADES upgrades (each to one child left) and one
 * `status`, read SETTLE_MS later.
 */
async function baseRss(child: string): Promise<{ kb: number; parts: Record<RssPart, number> }> {
  const m = new ScaleMaster(1, child);
  running.add(m);
  try {
    await m.connect(false);
    await m.allUp(30_000);
    for (let i = 0; i < BASE_UPGRADES; i++) {
      const reply = await m.upgrade(60_000);
      if (reply !== 'Upgrade done') throw new Error(`base: upgrade ${i + 1}: ${reply}`);
      const deadline = performance.now() + 30_000;
      while (childrenOf(m.pid).length !== 1) {
        if (performance.now() > deadline) throw new Error(`base: upgrade ${i + 1}: the old worker did not go`);
        await sleep(25);
      }
    }
    await m.workers();
    await sleep(SETTLE_MS);
    return { kb: m.rssKb(), parts: rssBreakdown(m.pid) };
  } finally {
    await m.stop();
    running.delete(m);
  }
}

export async function scaleBench(cfg: ScaleConfig, note: (m: string) => void): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ein-scale-cc-'));
  try {
    const child = buildChild(dir);
    if (!child) return { baseRssKb: NaN, rows: [], skipped: 'no C compiler (cc) to build test/bench/tiny-child.c' };
    note('scale: a master with 1 worker (the RSS base)');
    const base = await baseRss(child);
    const rows: ScaleRow[] = [];
    for (const n of cfg.ns) {
      note(`scale N=${n}: spawning`);
      rows.push(await one(n, child, cfg, note));
    }
    return { baseRssKb: base.kb, baseRssParts: base.parts, rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
