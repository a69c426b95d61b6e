/**
 * The upgrade-window phase of `npm run bench`: latency and lost capacity around each
 * upgrade under load, ours against the bare baseline restarting the same children the way
 * Server::Starter does (a new set started, its default 1 s interval once they listen, then
 * the old ones drained), in the same run, rounds interleaved (A B B A ...).
 *
 * As the shared bench's upgrade_window.py: 50 keep-alive connections (no planned
 * reconnects), every request kept; 20 s of load with an upgrade at 2.5 s, 5.5 s, ... each
 * waited for (old workers gone and N new ready); per upgrade the p99 of the requests
 * started in [trigger - 0.25 s, done + 0.5 s] and the capacity lost in that window
 * (window-stats.ts). The load client is the bench's own (load.ts, bounded by the phase's
 * duration): no wrk, nothing from outside the repository.
 *
 * Targets (issue 24, against Server::Starter): capacity lost per upgrade <= 0.8x and window
 * p99 <= 1.1x the baseline's.
 */
import { performance } from 'node:perf_hooks';
import { Load } from './load.js';
import { ForeignLoad, cpuTicks } from '../proc.js';
import { Baseline, HOST, Ours, sleep } from './systems.js';
import { analyseWindows, medianOf, type WindowAnalysis } from './window-stats.js';
import { CpuSampler, addTrace, emptyTrace, readEvents, traceTable, upgradeCost, type TraceBuckets, type UpgradeCost } from './window-trace.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface WindowConfig {
  n: number;
  rounds: number;
  /** Seconds of load per run, upgrades at firstS + k * spacingS. */
  seconds: number;
  upgrades: number;
  firstS: number;
  spacingS: number;
  conns: number;
  timeoutMs: number;
  /** The baseline's wait between its new children listening and the old ones drained (Server::Starter's --interval). */
  intervalMs: number;
  warmupS: number;
}

export const WINDOW_DEFAULTS = { seconds: 20, upgrades: 5, firstS: 2.5, spacingS: 3, intervalMs: 1000, warmupS: 2 } as const;

export interface WindowRun {
  kind: 'baseline' | 'ours';
  round: number;
  analysis: WindowAnalysis;
  upgradeMs: number[];
  errors: number;
  rps: number;
  foreignShare: number;
}

export interface WindowResult {
  runs: WindowRun[];
  lost: { baseline: number; ours: number; ratio: number };
  p99: { baseline: number; ours: number; ratio: number };
  /** With BENCH_WINDOW_TRACE=1: each kind's extra CPU per upgrade and the capacity floor it sets. */
  cost?: { baseline: UpgradeCost; ours: UpgradeCost };
}

export interface WindowCheck {
  metric: string;
  ok: boolean;
}

const loads = new Set<Load>();

/** Stop every load generator this phase started (on failure or a signal). */
export function killWindow(): void {
  for (const l of loads) l.kill();
  loads.clear();
}

const epochNow = () => performance.timeOrigin + performance.now();

/** BENCH_WINDOW_TRACE=1: where capacity and latency go (window-trace.ts), per kind. */
const tracing = () => process.env.BENCH_WINDOW_TRACE === '1';
const traces = new Map<string, TraceBuckets>();

async function oneRun(kind: 'baseline' | 'ours', round: number, cfg: WindowConfig): Promise<WindowRun> {
  const traceDir = tracing() ? mkdtempSync(join(tmpdir(), 'ein-bench-trace-')) : null;
  if (traceDir) process.env.BENCH_TRACE_DIR = traceDir;
  let sys: Baseline | Ours;
  try {
    sys = kind === 'baseline' ? await Baseline.start(cfg.n, true) : await Ours.start(cfg.n, { logToFile: true });
  } finally {
    delete process.env.BENCH_TRACE_DIR;
  }
  try {
    const opts = { host: HOST, port: sys.port, connections: cfg.conns, timeoutMs: cfg.timeoutMs, reconnectEvery: 0, recordPid: traceDir !== null };
    if (cfg.warmupS > 0) {
      const warm = await Load.start(opts);
      loads.add(warm);
      await sleep(cfg.warmupS * 1000);
      await warm.stop();
      loads.delete(warm);
    }
    const load = await Load.start({ ...opts, record: true });
    loads.add(load);
    const ups: Array<{ trigger: number; done: number }> = [];
    let result;
    let samples: ReturnType<CpuSampler['stop']> = [];
    // The baseline's spawner stands for Server::Starter's process (it forks the children).
    const supervisor = sys instanceof Baseline ? sys.spawnerPid : sys.masterPid;
    const foreign = new ForeignLoad(() => (supervisor !== null ? (cpuTicks(supervisor) ?? 0) : 0));
    const sampler = traceDir ? new CpuSampler(traceDir, supervisor) : null;
    try {
      await load.mark();
      const t0 = epochNow();
      for (let k = 0; k < cfg.upgrades; k++) {
        const at = t0 + (cfg.firstS + k * cfg.spacingS) * 1000;
        if (at > t0 + cfg.seconds * 1000 - 1500) break;
        await sleep(Math.max(0, at - epochNow()));
        const trigger = epochNow();
        const ms = sys instanceof Baseline ? (await sys.restart(cfg.intervalMs)).ms : (await (sys as Ours).upgradeUnpolled()).ms;
        ups.push({ trigger, done: trigger + ms });
      }
      await sleep(Math.max(0, t0 + cfg.seconds * 1000 - epochNow()));
    } finally {
      result = await load.stop();
      loads.delete(load);
      if (sampler) samples = sampler.stop();
    }
    const foreignShare = foreign.share();
    const mark = result.markEpochMs as number;
    if (traceDir) {
      // Every upgrade waited for its old workers' exit: their events are all written.
      const acc = traces.get(kind) ?? emptyTrace();
      traces.set(kind, acc);
      addTrace(acc, { markEpochMs: mark, starts: result.starts ?? new Float64Array(), latencies: result.latencies ?? new Float32Array(), pids: result.pids ?? new Int32Array(), ups, events: readEvents(traceDir), samples });
    }
    const analysis = analyseWindows(
      result.starts ?? [],
      result.latencies ?? [],
      result.buckets,
      result.elapsedMs,
      ups.map((u) => ({ triggerMs: u.trigger - mark, doneMs: u.done - mark })),
    );
    return { kind, round, analysis, upgradeMs: ups.map((u) => u.done - u.trigger), errors: result.errors, rps: result.rps, foreignShare };
  } finally {
    await sys.stop();
    if (traceDir) rmSync(traceDir, { recursive: true, force: true });
  }
}

export async function windowBench(cfg: WindowConfig, note: (msg: string) => void): Promise<WindowResult> {
  const runs: WindowRun[] = [];
  traces.clear();
  for (let round = 0; round < cfg.rounds; round++) {
    const order: Array<'baseline' | 'ours'> = round % 2 === 0 ? ['baseline', 'ours'] : ['ours', 'baseline'];
    for (const kind of order) {
      const r = await oneRun(kind, round, cfg);
      runs.push(r);
      const lost = medianOf(r.analysis.upgrades.map((u) => u.lostMs));
      note(
        `  window round ${round + 1} ${kind}: p99 ${r.analysis.pooledP99Ms.toFixed(2)} ms, lost ${lost.toFixed(0)} ms / upgrade, ` +
          `upgrade ${medianOf(r.upgradeMs).toFixed(0)} ms, ${r.errors} errors (other processes: ${Math.round(r.foreignShare * 100)} % CPU)`,
      );
    }
  }
  for (const [kind, t] of traces) note(traceTable(kind, t));
  const tb = traces.get('baseline');
  const to = traces.get('ours');
  const cost = tb && to ? { baseline: upgradeCost(tb, availableParallelism()), ours: upgradeCost(to, availableParallelism()) } : undefined;
  const of = (kind: string) => runs.filter((r) => r.kind === kind);
  // As upgrade_window.py's summary: lost = median over every upgrade, p99 = median over the runs of the pooled p99.
  const lostOf = (kind: string) => medianOf(of(kind).flatMap((r) => r.analysis.upgrades.map((u) => u.lostMs)));
  const p99Of = (kind: string) => medianOf(of(kind).map((r) => r.analysis.pooledP99Ms));
  const lb = lostOf('baseline');
  const lo = lostOf('ours');
  const pb = p99Of('baseline');
  const po = p99Of('ours');
  return { runs, lost: { baseline: lb, ours: lo, ratio: lo / lb }, p99: { baseline: pb, ours: po, ratio: po / pb }, ...(cost ? { cost } : {}) };
}

export function windowTable(r: WindowResult, cfg: WindowConfig, checks: WindowCheck[]): string {
  const rows: string[][] = [];
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const B = r.runs.filter((x) => x.kind === 'baseline');
  const O = r.runs.filter((x) => x.kind === 'ours');
  const ups = (xs: WindowRun[]) => xs.flatMap((x) => x.analysis.upgrades);
  const spread = (xs: number[], d = 0) => (xs.length ? `${f(Math.min(...xs), d)}..${f(Math.max(...xs), d)}` : 'n/a');
  const lostOk = r.lost.ratio <= 0.8;
  const p99Ok = r.p99.ratio <= 1.1;
  checks.push({ metric: 'upgrade window: capacity lost per upgrade <= 0.8x the Server::Starter-style restart', ok: lostOk });
  checks.push({ metric: 'upgrade window: p99 <= 1.1x the Server::Starter-style restart', ok: p99Ok });
  rows.push([
    'window p99 ms (median of runs; runs min..max)',
    `${f(r.p99.baseline, 2)} (${spread(B.map((x) => x.analysis.pooledP99Ms), 1)})`,
    `${f(r.p99.ours, 2)} (${spread(O.map((x) => x.analysis.pooledP99Ms), 1)})`,
    f(r.p99.ratio, 2),
    `<= 1.10 ${p99Ok ? 'ok' : 'MISSED'}`,
  ]);
  rows.push([
    'capacity lost ms / upgrade (median of upgrades; runs\' medians)',
    `${f(r.lost.baseline, 0)} (${B.map((x) => f(medianOf(x.analysis.upgrades.map((u) => u.lostMs)), 0)).join(' ')})`,
    `${f(r.lost.ours, 0)} (${O.map((x) => f(medianOf(x.analysis.upgrades.map((u) => u.lostMs)), 0)).join(' ')})`,
    f(r.lost.ratio, 2),
    `<= 0.80 ${lostOk ? 'ok' : 'MISSED'}`,
  ]);
  // The same in one fixed 2.5 s window for both (upgrade_window.py's second table): a tool's
  // own window is as long as its upgrade, so the same slow requests weigh more in a fast one.
  const fixP99 = (xs: WindowRun[]) => medianOf(xs.map((x) => x.analysis.fixPooledP99Ms));
  const fixLost = (xs: WindowRun[]) => medianOf(ups(xs).map((u) => u.fixLostMs));
  const fixFloor = (xs: WindowRun[]) => medianOf(ups(xs).map((u) => u.fixFloorMs));
  rows.push([
    'fixed 2.5 s window: p99 ms (as long for both)',
    f(fixP99(B), 2),
    f(fixP99(O), 2),
    f(fixP99(O) / fixP99(B), 2),
    'info',
  ]);
  rows.push([
    'fixed 2.5 s window: lost ms / noise floor ms / lost - floor',
    `${f(fixLost(B), 0)} / ${f(fixFloor(B), 0)} / ${f(fixLost(B) - fixFloor(B), 0)}`,
    `${f(fixLost(O), 0)} / ${f(fixFloor(O), 0)} / ${f(fixLost(O) - fixFloor(O), 0)}`,
    f((fixLost(O) - fixFloor(O)) / (fixLost(B) - fixFloor(B)), 2),
    'info',
  ]);
  rows.push([
    'noise floor ms (a window as long, no upgrade)',
    f(medianOf(ups(B).map((u) => u.floorMs)), 0),
    f(medianOf(ups(O).map((u) => u.floorMs)), 0),
    '',
    'info',
  ]);
  rows.push([
    'upgrade ms (median) / window s',
    `${f(medianOf(B.flatMap((x) => x.upgradeMs)), 0)} / ${f(medianOf(ups(B).map((u) => u.windowMs / 1000)), 2)}`,
    `${f(medianOf(O.flatMap((x) => x.upgradeMs)), 0)} / ${f(medianOf(ups(O).map((u) => u.windowMs / 1000)), 2)}`,
    '',
    'info',
  ]);
  rows.push([
    'p99 ms outside the windows / req/s',
    `${f(medianOf(B.map((x) => x.analysis.outsideP99Ms)), 2)} / ${f(medianOf(B.map((x) => x.rps)), 0)}`,
    `${f(medianOf(O.map((x) => x.analysis.outsideP99Ms)), 2)} / ${f(medianOf(O.map((x) => x.rps)), 0)}`,
    '',
    'info',
  ]);
  if (r.cost) {
    // The trace's answer to "can ours lose <= 0.8x?": not below the CPU its new workers need.
    const c = r.cost;
    const cpu = (x: UpgradeCost) => `${f(x.bootCpuMs, 0)} + ${f(x.warmCpuMs, 0)} / ${f(x.extraCpuMs, 0)} / ${f(x.idleMsPer100, 0)}`;
    rows.push(['trace: CPU ms per upgrade, new boot + warm-up / all extra / idle per 100 ms', cpu(c.baseline), cpu(c.ours), '', 'info']);
    rows.push([
      'trace: capacity floor ms (boot + warm-up CPU / the cores it is taken from)',
      f(c.baseline.floorMs, 0),
      f(c.ours.floorMs, 0),
      f(c.ours.floorMs / c.baseline.floorMs, 2),
      'info',
    ]);
    rows.push([
      'trace: 0.8x the baseline\'s lost vs ours\' floor, ms',
      f(0.8 * r.lost.baseline, 0),
      f(c.ours.floorMs, 0),
      '',
      !Number.isFinite(c.ours.floorMs) ? 'n/a' : c.ours.floorMs > 0.8 * r.lost.baseline ? 'floor above the target' : 'floor below the target',
    ]);
  }
  const errs = (xs: WindowRun[]) => xs.reduce((a, x) => a + x.errors, 0);
  const errOk = errs(B) + errs(O) === 0;
  checks.push({ metric: 'upgrade window: 0 failed requests', ok: errOk });
  rows.push(['failed requests', String(errs(B)), String(errs(O)), '', `0 ${errOk ? 'ok' : 'MISSED'}`]);
  const busy = Math.max(...r.runs.map((x) => x.foreignShare));
  const head = ['upgrade window', 'baseline (Server::Starter-style)', 'ours', 'ratio', 'target'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(w[i] as number)).join(' | ')} |`;
  return [
    `Upgrade window (N=${cfg.n}, ${cfg.conns} keep-alive connections, ${cfg.rounds} rounds x ${cfg.seconds} s, upgrades every ${cfg.spacingS} s; ` +
      `baseline: new children, ${cfg.intervalMs} ms once they listen, old ones drained${busy > 0.1 ? `; WARNING: busy machine, other processes up to ${Math.round(busy * 100)} % CPU` : ''}):`,
    line(head),
    `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}
