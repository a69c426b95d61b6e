/**
 * The upgrade-window phase's trace (BENCH_WINDOW_TRACE=1): where capacity and latency go
 * around an upgrade, for ours and for the baseline restarted Server::Starter's way.
 *
 * - The bench child (BENCH_TRACE_DIR) answers with `X-Pid` and writes its own events
 *   (`origin` = process start, `listen`, `ack`, `drain` = its stop signal, `exit`, epoch ms);
 *   the load generator keeps each request's pid.
 * - A sampler reads every ~10 ms the CPU (utime + stime, all threads) of the master, of every
 *   worker, of the bench process (the load generator's thread is in it) and of the machine,
 *   and the run-queue wait of each worker's main thread (/proc/PID/schedstat).
 *
 * Per upgrade, in 100 ms buckets from the trigger: completions and p99 by generation (old =
 * started before the trigger, new = after), CPU ms by who, and each worker's events as offsets;
 * averaged over every upgrade of a kind. Diagnostic only: it costs the bench some CPU (the
 * same for both kinds), and the responses are 14 bytes longer.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { clockTicks, cpuTicks, machineBusyTicks } from '../proc.js';
import { percentile } from './window-stats.js';

const epochNow = () => performance.timeOrigin + performance.now();
const TICK_MS = 1000 / clockTicks();

export interface ChildEvents {
  pid: number;
  origin: number;
  listen?: number;
  ack?: number;
  drain?: number;
  exit?: number;
}

/** Every child's events from the trace dir. */
export function readEvents(dir: string): Map<number, ChildEvents> {
  const out = new Map<number, ChildEvents>();
  for (const f of readdirSync(dir)) {
    const m = /^(\d+)\.events$/.exec(f);
    if (!m) continue;
    const pid = Number(m[1]);
    const e: ChildEvents = { pid, origin: NaN };
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const [what, at] = line.split(' ');
      if (!what || at === undefined) continue;
      const t = Number(at);
      if (what === 'origin') e.origin = t;
      else if (what === 'listen' || what === 'ack' || what === 'drain' || what === 'exit') e[what] ??= t;
    }
    out.set(pid, e);
  }
  return out;
}

/** schedstat of a process's main thread: [ns on CPU, ns waiting on a run queue]. */
function schedstat(pid: number): [number, number] | null {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number);
    return [run ?? 0, wait ?? 0];
  } catch {
    return null;
  }
}

export interface Sample {
  t: number;
  /** pid -> cpu ticks (the master as -1, the bench as -2, the machine as -3). */
  ticks: Map<number, number>;
  /** pid -> run-queue wait ns of the main thread. */
  wait: Map<number, number>;
}

/** CPU readings every ~10 ms of the master, the workers (pids from the trace dir), the bench and the machine. */
export class CpuSampler {
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly gone = new Set<number>();

  constructor(
    private readonly dir: string,
    private readonly masterPid: number | null,
  ) {
    this.timer = setInterval(() => this.sample(), 10);
    this.sample();
  }

  private sample(): void {
    const ticks = new Map<number, number>();
    const wait = new Map<number, number>();
    if (this.masterPid !== null) {
      const m = cpuTicks(this.masterPid);
      if (m !== null) ticks.set(-1, m);
    }
    ticks.set(-2, cpuTicks(process.pid) ?? 0);
    ticks.set(-3, machineBusyTicks());
    for (const f of readdirSync(this.dir)) {
      const m = /^(\d+)\.events$/.exec(f);
      if (!m) continue;
      const pid = Number(m[1]);
      if (this.gone.has(pid)) continue;
      const c = cpuTicks(pid);
      if (c === null) {
        this.gone.add(pid);
        continue;
      }
      ticks.set(pid, c);
      const s = schedstat(pid);
      if (s) wait.set(pid, s[1]);
    }
    this.samples.push({ t: epochNow(), ticks, wait });
  }

  stop(): Sample[] {
    clearInterval(this.timer);
    this.sample();
    return this.samples;
  }
}

export interface TraceInput {
  /** Epoch ms of the load's mark; requests' starts are ms since it. */
  markEpochMs: number;
  starts: Float64Array;
  latencies: Float32Array;
  pids: Int32Array;
  /** Epoch ms. */
  ups: Array<{ trigger: number; done: number }>;
  events: Map<number, ChildEvents>;
  samples: Sample[];
}

const B = 100;
const PRE = 3; // buckets before the trigger
const POST = 22; // buckets after

export interface TraceBuckets {
  /** Per bucket (from -PRE), summed over upgrades (divide by `upgrades`). */
  oldDone: number[];
  newDone: number[];
  oldLat: number[][];
  newLat: number[][];
  cpuMaster: number[];
  cpuOld: number[];
  cpuNew: number[];
  cpuBench: number[];
  cpuOther: number[];
  waitOld: number[];
  waitNew: number[];
  upgrades: number;
  /** Offsets from the trigger (ms), every worker of every upgrade. */
  offsets: Record<'newOrigin' | 'newListen' | 'newAck' | 'newFirstServed' | 'oldDrain' | 'oldLastServed' | 'oldExit', number[]>;
  /** ms of master CPU from the trigger to done, per upgrade. */
  masterCpuMs: number[];
  /** ms of CPU each new worker used in its first 500 ms after its first request. */
  newWarmCpuMs: number[];
  /** ms of CPU each new worker used before its first answer (its boot). */
  newBootCpuMs: number[];
  /** Requests each new worker answered in its first 200 ms of serving. */
  newFirst200: number[];
  /**
   * Per upgrade, the busiest new worker's share (0..1) of the new workers' requests from 200 ms
   * after the last old worker's last answer to the end of the trace: keep-alive connections
   * stay on the worker that accepted them, so this is how the cutover split them.
   */
  busiestNewShare: number[];
  /** A new worker's CPU and requests, by how many requests it had answered before (WARM_BINS). */
  warmCpuMs: number[];
  warmReqs: number[];
}

/** Bins of requests answered so far by a new worker, for its CPU per request (warm-up by count or by time?). */
const WARM_BINS = [0, 500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 20000, Infinity];

function zeros(n: number): number[] {
  return Array.from({ length: n }, () => 0);
}

export function emptyTrace(): TraceBuckets {
  const n = PRE + POST;
  return {
    oldDone: zeros(n),
    newDone: zeros(n),
    oldLat: Array.from({ length: n }, () => []),
    newLat: Array.from({ length: n }, () => []),
    cpuMaster: zeros(n),
    cpuOld: zeros(n),
    cpuNew: zeros(n),
    cpuBench: zeros(n),
    cpuOther: zeros(n),
    waitOld: zeros(n),
    waitNew: zeros(n),
    upgrades: 0,
    offsets: { newOrigin: [], newListen: [], newAck: [], newFirstServed: [], oldDrain: [], oldLastServed: [], oldExit: [] },
    masterCpuMs: [],
    newWarmCpuMs: [],
    newBootCpuMs: [],
    newFirst200: [],
    busiestNewShare: [],
    warmCpuMs: zeros(WARM_BINS.length - 1),
    warmReqs: zeros(WARM_BINS.length - 1),
  };
}

/** Adds one run's upgrades to `acc`. */
export function addTrace(acc: TraceBuckets, x: TraceInput): void {
  const n = PRE + POST;
  // The CPU used between two samples, spread over the buckets each interval covers.
  const spread = (into: number[], t0: number, t1: number, ms: number, trigger: number) => {
    if (ms <= 0 || t1 <= t0) return;
    for (let b = 0; b < n; b++) {
      const bs = trigger + (b - PRE) * B;
      const be = bs + B;
      const ov = Math.min(be, t1) - Math.max(bs, t0);
      if (ov > 0) into[b] = (into[b] as number) + (ms * ov) / (t1 - t0);
    }
  };
  for (const up of x.ups) {
    const T = up.trigger;
    const isOld = (e: ChildEvents) => e.origin < T && (e.exit === undefined || e.exit > T - PRE * B);
    const isNew = (e: ChildEvents) => e.origin >= T && e.origin < up.done;
    const old = new Set<number>();
    const neu = new Set<number>();
    for (const e of x.events.values()) {
      if (isOld(e)) old.add(e.pid);
      else if (isNew(e)) neu.add(e.pid);
    }
    acc.upgrades += 1;
    const first = new Map<number, number>();
    const last = new Map<number, number>();
    const first200 = new Map<number, number>();
    for (let r = 0; r < x.starts.length; r++) {
      const pid = x.pids[r] as number;
      const end = x.markEpochMs + (x.starts[r] as number) + (x.latencies[r] as number);
      if (neu.has(pid)) {
        if (!first.has(pid) || end < (first.get(pid) as number)) first.set(pid, end);
      }
      if (old.has(pid)) last.set(pid, Math.max(last.get(pid) ?? -Infinity, end));
      const b = Math.floor((end - T) / B) + PRE;
      if (b < 0 || b >= n) continue;
      const lat = x.latencies[r] as number;
      if (old.has(pid)) {
        acc.oldDone[b] = (acc.oldDone[b] as number) + 1;
        (acc.oldLat[b] as number[]).push(lat);
      } else if (neu.has(pid)) {
        acc.newDone[b] = (acc.newDone[b] as number) + 1;
        (acc.newLat[b] as number[]).push(lat);
      }
    }
    for (let r = 0; r < x.starts.length; r++) {
      const pid = x.pids[r] as number;
      const f = first.get(pid);
      if (f === undefined) continue;
      const end = x.markEpochMs + (x.starts[r] as number) + (x.latencies[r] as number);
      if (end < f + 200) first200.set(pid, (first200.get(pid) ?? 0) + 1);
    }
    const ends = new Map<number, number[]>();
    for (let r = 0; r < x.starts.length; r++) {
      const pid = x.pids[r] as number;
      if (!neu.has(pid)) continue;
      let a = ends.get(pid);
      if (!a) ends.set(pid, (a = []));
      a.push(x.markEpochMs + (x.starts[r] as number) + (x.latencies[r] as number));
    }
    for (const a of ends.values()) a.sort((p, q) => p - q);
    /** Requests `pid` had answered by time t. */
    const servedBy = (pid: number, t: number) => {
      const a = ends.get(pid);
      if (!a) return 0;
      let lo = 0;
      let hi = a.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((a[mid] as number) <= t) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    for (const pid of neu) {
      const e = x.events.get(pid) as ChildEvents;
      acc.offsets.newOrigin.push(e.origin - T);
      if (e.listen !== undefined) acc.offsets.newListen.push(e.listen - T);
      if (e.ack !== undefined) acc.offsets.newAck.push(e.ack - T);
      const f = first.get(pid);
      if (f !== undefined) acc.offsets.newFirstServed.push(f - T);
      acc.newFirst200.push(first200.get(pid) ?? 0);
    }
    let lastOld = -Infinity;
    for (const pid of old) lastOld = Math.max(lastOld, last.get(pid) ?? -Infinity);
    if (Number.isFinite(lastOld) && neu.size > 1) {
      const from = lastOld + 200;
      const to = T + POST * B;
      const counts = [...neu].map((pid) => {
        const a = ends.get(pid) ?? [];
        return a.filter((t) => t >= from && t < to).length;
      });
      const total = counts.reduce((p, q) => p + q, 0);
      if (total > 0) acc.busiestNewShare.push(Math.max(...counts) / total);
    }
    for (const pid of old) {
      const e = x.events.get(pid) as ChildEvents;
      if (e.drain !== undefined && e.drain >= T) acc.offsets.oldDrain.push(e.drain - T);
      if (e.exit !== undefined && e.exit >= T) acc.offsets.oldExit.push(e.exit - T);
      const l = last.get(pid);
      if (l !== undefined && l >= T) acc.offsets.oldLastServed.push(l - T);
    }
    // CPU between consecutive samples.
    let master = 0;
    const warm = new Map<number, number>();
    const boot = new Map<number, number>();
    for (let i = 1; i < x.samples.length; i++) {
      const a = x.samples[i - 1] as Sample;
      const s = x.samples[i] as Sample;
      if (s.t < T - PRE * B - 50 || a.t > T + POST * B + 50) continue;
      const d = (k: number) => {
        const v1 = s.ticks.get(k);
        const v0 = a.ticks.get(k);
        return v1 === undefined ? 0 : (v1 - (v0 ?? 0)) * TICK_MS;
      };
      const dm = d(-1);
      if (s.t > T && a.t < up.done) master += dm;
      spread(acc.cpuMaster, a.t, s.t, dm, T);
      const db = d(-2);
      spread(acc.cpuBench, a.t, s.t, db, T);
      let dOld = 0;
      let dNew = 0;
      let wOld = 0;
      let wNew = 0;
      for (const pid of s.ticks.keys()) {
        if (pid < 0) continue;
        const dp = d(pid);
        // A worker seen for the first time: what it used since its start (the sampler missed it).
        const t0 = a.ticks.has(pid) ? a.t : Math.min(a.t, x.events.get(pid)?.origin ?? a.t);
        const w = ((s.wait.get(pid) ?? 0) - (a.wait.get(pid) ?? 0)) / 1e6;
        if (old.has(pid)) {
          spread(acc.cpuOld, t0, s.t, dp, T);
          dOld += dp;
          wOld += Math.max(0, w);
        } else if (neu.has(pid)) {
          spread(acc.cpuNew, t0, s.t, dp, T);
          dNew += dp;
          wNew += Math.max(0, w);
          const f = first.get(pid);
          if (f === undefined || a.t < f) boot.set(pid, (boot.get(pid) ?? 0) + dp);
          if (f !== undefined && s.t > f && a.t < f + 500) warm.set(pid, (warm.get(pid) ?? 0) + dp);
          if (f !== undefined && a.t >= f && a.ticks.has(pid)) {
            const n0 = servedBy(pid, a.t);
            const n1 = servedBy(pid, s.t);
            const bin = WARM_BINS.findIndex((lim, i) => n0 >= lim && n0 < (WARM_BINS[i + 1] as number));
            if (bin >= 0 && bin < WARM_BINS.length - 1) {
              acc.warmCpuMs[bin] = (acc.warmCpuMs[bin] as number) + dp;
              acc.warmReqs[bin] = (acc.warmReqs[bin] as number) + (n1 - n0);
            }
          }
        }
      }
      spread(acc.waitOld, a.t, s.t, wOld, T);
      spread(acc.waitNew, a.t, s.t, wNew, T);
      spread(acc.cpuOther, a.t, s.t, Math.max(0, d(-3) - dm - db - dOld - dNew), T);
    }
    acc.masterCpuMs.push(master);
    for (const v of warm.values()) acc.newWarmCpuMs.push(v);
    for (const v of boot.values()) acc.newBootCpuMs.push(v);
  }
}

function med(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** A table of the averaged buckets and the events' medians. */
export function traceTable(kind: string, t: TraceBuckets): string {
  const u = Math.max(1, t.upgrades);
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const lines: string[] = [];
  const o = t.offsets;
  const span = (xs: number[]) => (xs.length ? `${f(med(xs))} (${f(Math.min(...xs))}..${f(Math.max(...xs))})` : '-');
  lines.push(`trace ${kind}: ${t.upgrades} upgrades; offsets from the trigger, ms: median (min..max)`);
  lines.push(`  new: process start ${span(o.newOrigin)}, listening ${span(o.newListen)}, acked ${span(o.newAck)}, first request answered ${span(o.newFirstServed)}`);
  lines.push(`  old: drain signal ${span(o.oldDrain)}, last request answered ${span(o.oldLastServed)}, exit ${span(o.oldExit)}`);
  lines.push(
    `  master CPU trigger..done ${span(t.masterCpuMs)} ms; new worker: requests in its first 200 ms of serving ${span(t.newFirst200)}, ` +
      `CPU in its first 500 ms of serving ${span(t.newWarmCpuMs)} ms`,
  );
  const pct = (xs: number[]) => (xs.length ? `${f(med(xs) * 100)} % (${f(Math.min(...xs) * 100)}..${f(Math.max(...xs) * 100)})` : '-');
  lines.push(`  busiest new worker's share of the new workers' requests after the cutover: ${pct(t.busiestNewShare)}`);
  lines.push(
    '  new worker CPU per request (µs) by requests answered before: ' +
      t.warmReqs
        .map((r, i) => `${WARM_BINS[i]}+: ${r > 0 ? f(((t.warmCpuMs[i] as number) * 1000) / r) : '-'}`)
        .join(', '),
  );
  lines.push('  bucket ms | done old  new | p99 old  new | CPU ms: master  old  new  bench  other | runq wait ms old new');
  for (let b = 0; b < t.oldDone.length; b++) {
    const at = (b - PRE) * B;
    lines.push(
      `  ${String(at).padStart(5)} | ${f(t.oldDone[b]! / u).padStart(5)} ${f(t.newDone[b]! / u).padStart(5)} | ` +
        `${f(percentile(t.oldLat[b]!, 0.99), 2).padStart(5)} ${f(percentile(t.newLat[b]!, 0.99), 2).padStart(5)} | ` +
        `${f(t.cpuMaster[b]! / u, 1).padStart(5)} ${f(t.cpuOld[b]! / u).padStart(4)} ${f(t.cpuNew[b]! / u).padStart(4)} ` +
        `${f(t.cpuBench[b]! / u).padStart(5)} ${f(t.cpuOther[b]! / u).padStart(5)} | ${f(t.waitOld[b]! / u).padStart(4)} ${f(t.waitNew[b]! / u).padStart(4)}`,
    );
  }
  return lines.join('\n');
}

/** What an upgrade costs in CPU, and the capacity that CPU is worth (from the averaged trace). */
export interface UpgradeCost {
  /** The new workers' CPU per upgrade before their first answer (boot), ms. */
  bootCpuMs: number;
  /** The new workers' CPU per upgrade above their warm CPU per request (the WARM_BINS' last
   * bin's) while they warm up, ms. */
  warmCpuMs: number;
  /** CPU of all workers and the master per upgrade, from the trigger to the end of the trace,
   * above what their requests cost at the CPU per request before the trigger, ms: boot and
   * warm-up, and also the old workers' drain, the master, and a post-cutover split that is
   * more or less efficient than the one before. */
  extraCpuMs: number;
  /** CPU per request of the whole load loop before the trigger (workers, master, load generator), µs. */
  loopUsPerReq: number;
  /** Completions per ms before the trigger. */
  ratePerMs: number;
  /**
   * bootCpuMs + warmCpuMs (what any supervisor's upgrade costs: N new processes to boot
   * and warm up) in ms of full capacity. While the machine has no idle CPU, that CPU is
   * taken from whatever else runs, in proportion: from the load loop (its CPU per request x
   * its rate, in cores) and from other processes (their CPU per ms before the trigger), so the
   * loop loses extraCpuMs / (loop cores + other cores) ms of its capacity (extraCpuMs / cores
   * on a quiet machine), whatever the order of the upgrade's events: the floor.
   */
  floorMs: number;
  /** Idle CPU (all cores) per 100 ms bucket after the trigger, ms. */
  idleMsPer100: number;
  /** How far after the trigger the trace reaches, ms. */
  spanMs: number;
}

/** The floor of the capacity an upgrade loses, from its extra CPU (pure: the averaged trace in). */
export function upgradeCost(t: TraceBuckets, cores: number): UpgradeCost {
  const u = Math.max(1, t.upgrades);
  const n = t.oldDone.length;
  const at = (xs: number[], b: number) => (xs[b] as number) / u;
  const workers = (b: number) => at(t.cpuOld, b) + at(t.cpuNew, b) + at(t.cpuMaster, b);
  const done = (b: number) => at(t.oldDone, b) + at(t.newDone, b);
  let preDone = 0;
  let preWorkers = 0;
  let preLoop = 0;
  let preOther = 0;
  for (let b = 0; b < PRE; b++) {
    preDone += done(b);
    preWorkers += workers(b);
    preLoop += workers(b) + at(t.cpuBench, b);
    preOther += at(t.cpuOther, b);
  }
  const perReq = preDone > 0 ? preWorkers / preDone : NaN;
  const loopPerReq = preDone > 0 ? preLoop / preDone : NaN;
  const ratePerMs = preDone / (PRE * B);
  let extra = 0;
  let idle = 0;
  for (let b = PRE; b < n; b++) {
    extra += workers(b) - perReq * done(b);
    idle += Math.max(0, cores * B - (workers(b) + at(t.cpuBench, b) + at(t.cpuOther, b)));
  }
  const bootCpuMs = t.newBootCpuMs.reduce((p, q) => p + q, 0) / u;
  // Warm: the last bin (20,000 requests and more); the excess of the bins before it.
  const lastBin = t.warmReqs.length - 1;
  const warmPerReq = (t.warmCpuMs[lastBin] as number) / (t.warmReqs[lastBin] as number);
  let warmExcess = 0;
  for (let i = 0; i < lastBin; i++) warmExcess += Math.max(0, (t.warmCpuMs[i] as number) - warmPerReq * (t.warmReqs[i] as number));
  const warmCpuMs = warmExcess / u;
  return {
    extraCpuMs: extra,
    loopUsPerReq: loopPerReq * 1000,
    ratePerMs,
    bootCpuMs,
    warmCpuMs,
    floorMs: (bootCpuMs + warmCpuMs) / (loopPerReq * ratePerMs + preOther / (PRE * B)),
    idleMsPer100: idle / (n - PRE),
    spanMs: (n - PRE) * B,
  };
}
