/**
 * `npm run bench:releases`: what the release triggers cost and how fast they act, on this
 * machine, in one run. Not pass/fail (no target is set for them): numbers to compare
 * between runs and branches.
 *
 * 1. --watch: a release renamed over the program -> the change noticed (the 0.25 s quiet
 *    time is most of it) -> "upgrade done" (timer ACK of 0.05 s), median of BENCH_RUNS.
 * 2. Idle cost: the master's CPU (utime + stime) and RSS over BENCH_IDLE_S seconds with
 *    nothing, with --watch, with --fetch polling a loopback HTTP server every 0.5 s, and
 *    polling a file:// source; as a ratio of the idle master measured in the same run,
 *    and per poll.
 *
 * Loopback only; every master is stopped at the end of its phase.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../harness.js';
import { clockTicks, cpuTicks, statusKb } from '../proc.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1] as number;

const dir = mkdtempSync(join(tmpdir(), 'ein-bench-releases-'));
const app = join(dir, 'app');
const release = (v: string) => `#!/bin/sh\n: ${v}\nexec sleep 600\n`;
writeFileSync(app, release('v0'), { mode: 0o755 });

interface Master {
  proc: ChildProcess;
  err: string;
}

function start(args: string[]): Master {
  const proc = spawn(process.execPath, [BIN, '-d', join(dir, 'ctl.sock'), ...args, '-m', '0.05', '--', app], { stdio: ['ignore', 'ignore', 'pipe'] });
  const m: Master = { proc, err: '' };
  proc.stderr!.on('data', (d) => (m.err += d));
  return m;
}

async function waitFor(m: Master, re: RegExp, from = 0, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!re.test(m.err.slice(from))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${re}:\n${m.err.slice(-2000)}`);
    await sleep(2);
  }
}

async function stop(m: Master): Promise<void> {
  if (m.proc.exitCode !== null) return;
  m.proc.kill('SIGTERM');
  await new Promise((r) => m.proc.once('exit', r));
}

const running = new Set<Master>();
async function phase<T>(args: string[], fn: (m: Master) => Promise<T>): Promise<T> {
  const m = start(args);
  running.add(m);
  try {
    await waitFor(m, /Up to 1 \/ 1/);
    return await fn(m);
  } finally {
    await stop(m);
    running.delete(m);
  }
}

async function main(): Promise<void> {
  const noticed: number[] = [];
  const done: number[] = [];
  await phase(['--watch', app], async (m) => {
    for (let i = 1; i <= RUNS; i++) {
      const from = m.err.length;
      writeFileSync(`${app}.new`, release(`v${i}`), { mode: 0o755 });
      const t0 = performance.now();
      renameSync(`${app}.new`, app);
      await waitFor(m, /; upgrading/, from);
      noticed.push(performance.now() - t0);
      await waitFor(m, /upgrade done/, from);
      done.push(performance.now() - t0);
      await sleep(300);
    }
  });
  console.log(`--watch, release renamed over the program (${RUNS} runs, medians): noticed ${median(noticed).toFixed(0)} ms, upgrade done ${median(done).toFixed(0)} ms`);

  let heads = 0;
  const body = Buffer.from(release(`v${RUNS}`));
  const server = http.createServer((req, res) => {
    if (req.method === 'HEAD') heads += 1;
    res.writeHead(200, { etag: '"same"', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/app`;
  const hz = clockTicks();
  const cases: Array<[string, string[], number]> = [
    ['idle master', [], 0],
    ['--watch', ['--watch', app], 0],
    ['--fetch http, every 0.5 s', ['--fetch', url, '--fetch-interval', '0.5'], 2],
    ['--fetch file://, every 0.5 s', ['--fetch', `file://${app}`, '--fetch-interval', '0.5'], 2],
  ];
  let idleMs = 0;
  console.log(`\nidle cost over ${IDLE_S} s | master CPU ms | x idle | per poll ms | RSS kB`);
  for (const [name, args, perSecond] of cases) {
    await phase(args, async (m) => {
      await sleep(2000); // the first poll (a download) and start-up are not counted
      const pid = m.proc.pid as number;
      const c0 = cpuTicks(pid) as number;
      const h0 = heads;
      await sleep(IDLE_S * 1000);
      const ms = (((cpuTicks(pid) as number) - c0) * 1000) / hz;
      if (name === 'idle master') idleMs = ms;
      const polls = perSecond * IDLE_S;
      const extra = polls ? ((ms - idleMs) / polls).toFixed(2) : '-';
      const ratio = idleMs > 0 ? (ms / idleMs).toFixed(2) : '-';
      console.log(`${name} | ${ms.toFixed(0)} | ${ratio} | ${extra} | ${statusKb(pid, 'VmRSS')}` + (name.includes('http') ? ` (${heads - h0} HEADs)` : ''));
    });
  }
  server.close();
}

const cleanup = async () => {
  for (const m of running) await stop(m);
  rmSync(dir, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanup().then(() => process.exit(130)));
main().then(cleanup, async (err) => {
  console.error(err);
  await cleanup();
  process.exitCode = 1;
});
