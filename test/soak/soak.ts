/**
 * Soak benchmark (`npm run soak`): a master with SOAK_WORKERS workers (default 2) upgraded
 * SOAK_UPGRADES times (default 400) after SOAK_WARMUP warm-up upgrades (default 10). Workers
 * are Node (test/fixtures/drain-child.mjs: manual ACK, graceful drain) up to 8 of them, else
 * the bench's tiny C worker (test/bench/tiny-child.c, built with `cc`: it ACKs and sleeps
 * until its drain signal; 1,000 Node workers would need 40 GB); SOAK_CHILD=node|tiny chooses.
 *
 * Each upgrade is sent as `einhyrningsinsctl upgrade` sends it (a connection of its own, every
 * reply read); the master is asked nothing else but one `status` per reading (its own
 * connection): settling is read from /proc. It reports the master's RSS per worker ((RSS -
 * the RSS of the same master with one worker, after 3 upgrades and a `status`) / (N - 1),
 * the base the scale phase of `npm run bench` uses too: test/bench/rss-base.ts says what it
 * is and why), its open fds, live and zombie
 * children every SOAK_EVERY upgrades (default: 20 readings over the run), each read once the
 * master's memory keeper has compacted (3 s after the upgrade), and the trend: the
 * least-squares slope of RSS over the readings after the first tenth of the run, in KB per
 * 100 upgrades and per worker (± two standard errors), and where the growth beyond that noise
 * puts RSS per worker at 1,000 upgrades.
 *
 * SOAK_BIN runs another build's bin/einhyrningsins (A/B); SOAK_MASTER_NODE_ARGS passes node flags to the master.
 *
 * Not a test: it prints numbers. It fails on a leak of fds, zombies or children; when RSS
 * grows by more than 6 MiB over the trend's span (issue 11); and from 1,000 workers on, when
 * RSS per worker is over 16 KB at any reading or the trend puts it over 16 KB at 1,000
 * upgrades, and when RSS is not flat (issue 24: "<= 16 KB of RSS per worker at 1,000 workers,
 * and flat over 1,000 upgrades of them"; both targets' verdicts are printed at the end: MET,
 * MISSED, or not measured by a run of fewer workers or upgrades).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '@einhyrningsins/ctl';
import { childrenOf, clockTicks, cpuTicks, openFdCount, rssBreakdown, rssBreakdownLine, statusKb, zombiesOf } from '../proc.js';
import { BASE_TEXT, BASE_UPGRADES, SETTLE_MS, perWorkerKb } from '../bench/rss-base.js';
import { fitSlope, soakVerdict, type SoakReading } from './soak-trend.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const int = (name: string, def: number, min: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`${name}: expected an integer >= ${min}, got '${v}'`);
  return Number(v);
};
const UPGRADES = int('SOAK_UPGRADES', 400, 1);
const N = int('SOAK_WORKERS', 2, 1);
const WARMUP = int('SOAK_WARMUP', 10, 0);
const EVERY = int('SOAK_EVERY', Math.max(1, Math.round(UPGRADES / 20)), 1);
/** --min-ready of the master (its default is 0): short, so that 400 upgrades take minutes, not an hour. */
const MIN_READY = process.env.SOAK_MIN_READY ?? '0.1';
const CHILD = process.env.SOAK_CHILD ?? (N <= 8 ? 'node' : 'tiny');
if (CHILD !== 'node' && CHILD !== 'tiny') throw new Error(`SOAK_CHILD: expected node or tiny, got '${CHILD}'`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

function childCommand(dir: string): string[] {
  if (CHILD === 'node') return [process.execPath, join(ROOT, 'test', 'fixtures', 'drain-child.mjs')];
  const out = join(dir, 'tiny-child');
  try {
    execFileSync(process.env.CC ?? 'cc', ['-O2', '-o', out, join(ROOT, 'test', 'bench', 'tiny-child.c')], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`cannot build test/bench/tiny-child.c with ${process.env.CC ?? 'cc'} (SOAK_CHILD=node for Node workers): ${(err as Error).message.split('\n')[0]}`);
  }
  return [out];
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ein-soak-'));
  const sock = join(dir, 'soak.sock');
  const master = spawn(
    process.execPath,
    [
      ...(process.env.SOAK_MASTER_NODE_ARGS ?? '').split(' ').filter(Boolean),
      // SOAK_BIN: another build's bin/einhyrningsins, for A/B runs against it.
      process.env.SOAK_BIN ?? join(ROOT, 'bin', 'einhyrningsins'),
      ...['-q', '-n', '1', '-b', '127.0.0.1:0,r', '-m', 'manual', '--min-ready', MIN_READY, '-d', sock],
      ...['--', ...childCommand(dir)],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const pid = master.pid as number;
  const t0 = performance.now();
  try {
    let client: ControlClient | null = null;
    for (let i = 0; i < 100 && !client; i++) {
      await sleep(50);
      client = await ControlClient.connect(sock).catch(() => null);
    }
    if (!client) throw new Error('the master did not come up');
    const c = client;
    const deadlineMs = Math.max(10_000, N * 30);
    /** Until the master has exactly `n` live children (/proc: asking the master would cost it memory and CPU). */
    const settled = async (n: number) => {
      const until = performance.now() + deadlineMs;
      while (performance.now() < until) {
        if (childrenOf(pid).length === n) return;
        await sleep(N > 100 ? 100 : 25);
      }
      throw new Error(`the master did not settle at ${n} children within ${deadlineMs} ms`);
    };
    /**
     * `status` on a connection of its own, closed at once: `n` workers, every one up (asked
     * again every 100 ms while not: a Node worker's ACK can come after its process is counted).
     */
    const checkUp = async (n: number) => {
      const until = performance.now() + deadlineMs;
      for (;;) {
        const s = await ControlClient.connect(sock);
        try {
          const [r] = await s.call('status');
          const ws = (r as unknown as { state: { workers: Array<{ state: string }> } }).state.workers;
          if (ws.length === n && ws.every((w) => w.state === 'up')) return;
          if (performance.now() > until) throw new Error(`status: ${ws.length} workers, ${ws.filter((w) => w.state === 'up').length} up; expected ${n} up`);
        } finally {
          s.close();
        }
        await sleep(100);
      }
    };
    await settled(1);
    const upgrade = async (n: number) => {
      const t = performance.now();
      const u = await ControlClient.connect(sock);
      const replies = await u.call('upgrade').finally(() => u.close());
      if (replies.at(-1)?.message !== 'Upgrade done') throw new Error(`upgrade failed: ${JSON.stringify(replies.at(-1))}`);
      await settled(n);
      return performance.now() - t;
    };
    // The base (test/bench/rss-base.ts): the same master with one worker, through the code an
    // upgrade and `status` load, as the scale phase's.
    for (let i = 0; i < BASE_UPGRADES; i++) await upgrade(1);
    await checkUp(1);
    await sleep(SETTLE_MS);
    const baseKb = statusKb(pid, 'VmRSS') ?? NaN;
    const baseParts = rssBreakdown(pid);
    if (N !== 1) {
      const [r] = await c.call('set_workers', [String(N)]);
      if (r?.message === undefined) throw new Error('set_workers: no reply');
      await settled(N);
    }
    const read = async (upgrade: number): Promise<SoakReading> => {
      await checkUp(N);
      await sleep(SETTLE_MS);
      const rssKb = statusKb(pid, 'VmRSS') ?? NaN;
      return { upgrade, rssKb, perWorkerKb: perWorkerKb(rssKb, baseKb, N), fds: openFdCount(pid), live: childrenOf(pid).length, zombies: zombiesOf(pid).length };
    };
    const first = await read(-WARMUP);
    for (let i = 0; i < WARMUP; i++) await upgrade(N);
    const readings: SoakReading[] = [await read(0)];
    const cpu0 = cpuTicks(pid) ?? NaN;
    const lat: number[] = [];
    let settleTicks = 0;
    for (let i = 1; i <= UPGRADES; i++) {
      lat.push(await upgrade(N));
      if (i % EVERY === 0 || i === UPGRADES) {
        const before = cpuTicks(pid) ?? 0;
        readings.push(await read(i));
        settleTicks += (cpuTicks(pid) ?? 0) - before;
        process.stderr.write(`soak: ${i}/${UPGRADES} upgrades, RSS ${(readings.at(-1)!.rssKb / 1024).toFixed(1)} MiB\n`);
      }
    }
    const cpuMs = (((cpuTicks(pid) ?? NaN) - cpu0 - settleTicks) * 1000) / clockTicks();
    const lastParts = rssBreakdown(pid);
    c.close();
    const last = readings.at(-1) as SoakReading;
    const trend = fitSlope(readings, UPGRADES);
    const v = soakVerdict({ n: N, upgrades: UPGRADES, first, readings, trend });
    const mins = (performance.now() - t0) / 60_000;
    console.log(
      `soak: ${UPGRADES} upgrades of ${N} ${CHILD === 'node' ? 'Node' : 'tiny C'} workers (manual ACK, --min-ready ${MIN_READY}) ` +
        `after ${WARMUP} warm-up upgrades, ${mins.toFixed(1)} min (load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}); ` +
        `master RSS with one worker (the base) ${(baseKb / 1024).toFixed(1)} MiB\n${BASE_TEXT}\n`,
    );
    console.log('| after upgrade | master RSS (MiB) | RSS per worker (KB) | open fds | live children | zombies |\n|---|---|---|---|---|---|');
    for (const r of [first, ...readings]) {
      console.log(`| ${r.upgrade < 0 ? 'start' : r.upgrade} | ${(r.rssKb / 1024).toFixed(1)} | ${r.perWorkerKb.toFixed(1)} | ${r.fds} | ${r.live} | ${r.zombies} |`);
    }
    console.log(
      `\ntrend (least squares over the readings from upgrade ${trend.fromUpgrade} on, ${trend.points} readings): ` +
        `${trend.kbPer100.toFixed(0)} ± ${(2 * trend.sePer100).toFixed(0)} KB per 100 upgrades (${(trend.kbPer100 / N).toFixed(3)} KB per worker; ± two standard errors), ` +
        `${(trend.spanGrowthKb / 1024).toFixed(2)} MiB over the span; RSS per worker at 1,000 upgrades on the growth beyond the noise ` +
        `(${v.growthPer100.toFixed(0)} KB per 100): ${v.projectedPerWorkerKb.toFixed(1)} KB`,
    );
    console.log(`upgrade, command to all new acked and all old gone: median ${pct(lat, 50).toFixed(0)} ms, p90 ${pct(lat, 90).toFixed(0)} ms`);
    console.log(`master CPU per upgrade: ${(cpuMs / UPGRADES).toFixed(1)} ms (${(cpuMs / UPGRADES / N).toFixed(2)} ms per worker)`);
    console.log(`master RSS by mapping (/proc/PID/smaps), the base -> after the last upgrade: ${rssBreakdownLine(lastParts, baseParts)}`);
    void last;
    console.log('');
    for (const line of v.targets) console.log(line);
    for (const p of v.problems) console.error(`FAILED: ${p}`);
    if (!v.problems.length) console.log('soak: ok');
    return v.problems.length ? 1 : 0;
  } finally {
    master.kill('SIGTERM');
    await new Promise((r) => master.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`soak: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  },
);
