/**
 * Start-up cost, as ratios against baselines measured in the same run:
 *
 * 1. `--version` CPU of each program against `node -e 0` (user + system time of the
 *    finished children, from /proc/self/stat's cutime/cstime, `runs` of each,
 *    interleaved);
 * 2. cold start: from spawn to N children ACKed, einhyrningsins (`-m manual`) against
 *    the same children run by test/bench/bare-launcher.mjs (a Node script that binds
 *    with `net`, spawns, and accepts the ACKs); the children print `acked PID` once
 *    their ACK is written, in both cases;
 * 3. the master's RSS once its children are up (VmRSS, 300 ms after the last ACK)
 *    against an idle `node -e` process measured in the same round (one per cold round,
 *    interleaved): the median of the per-round differences, in MB to 0.01 with their range,
 *    so that a 0.1-0.2 MB change is seen (VmRSS repeats to a few pages between runs).
 *
 * Targets: --version <= 1.2x, cold start <= 1.1x, RSS <= bare node + 6 MB.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT } from '../harness.js';
import { clockTicks, reapedChildrenTicks, statusKb } from '../proc.js';
import { CHILD, HOST, cleanEnv, median, sleep, within } from './systems.js';

export interface StartupConfig {
  /** `--version` runs per program (and as many of `node -e 0`). */
  versionRuns: number;
  /** Cold-start pairs (bare, ours), interleaved. */
  coldRounds: number;
  n: number;
}

export interface StartupResult {
  version: Array<{ program: string; nodeMs: number; oursMs: number; ratio: number }>;
  cold: { bareMs: number[]; oursMs: number[]; ratio: number };
  rss: {
    nodeKb: number;
    bareKb: number;
    masterKb: number;
    /** Per cold round: the master's VmRSS minus the idle node's of the same round (KB). */
    extraKb: number[];
  };
}

export interface StartupCheck {
  metric: string;
  ok: boolean;
}

const PROGRAMS = ['einhyrningsins', 'einhyrningsinsctl', 'einhyrningsins-dyno'];
const BARE = join(ROOT, 'test', 'bench', 'bare-launcher.mjs');

/** CPU ms (user + system) of every child this process has waited for so far. */
function childCpuMs(): number {
  return ((reapedChildrenTicks(process.pid) ?? 0) * 1000) / clockTicks();
}

function cpuOf(args: string[]): number {
  const before = childCpuMs();
  const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status ?? r.signal}`);
  return childCpuMs() - before;
}

const started = new Set<ChildProcess>();

/** SIGKILL whatever this module started and did not stop (on failure or a signal). */
export function killStartup(): void {
  for (const p of started) {
    try {
      process.kill(-(p.pid as number), 'SIGKILL');
    } catch {
      p.kill('SIGKILL');
    }
  }
  started.clear();
}

/** Spawn a supervisor (in its own process group), wait for `n` "acked" lines; returns ms and its RSS. */
async function coldStart(kind: 'bare' | 'ours', n: number): Promise<{ ms: number; rssKb: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ein-bench-start-'));
  const sock = join(dir, 's.sock');
  const args =
    kind === 'bare'
      ? [BARE, String(n), sock, process.execPath, CHILD]
      : [join(ROOT, 'bin', 'einhyrningsins'), '-q', '-k', '-n', String(n), '-b', `${HOST}:0,r`, '-m', 'manual', '-d', sock, '--', process.execPath, CHILD];
  const t0 = performance.now();
  const p = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...cleanEnv(), BENCH_ACKED_STDOUT: '1' },
    cwd: dir,
    detached: true,
  });
  started.add(p);
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  try {
    let out = '';
    const ms = await within(
      `${kind}: ${n} children acked`,
      new Promise<number>((resolve, reject) => {
        p.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if ((out.match(/^acked \d+$/gm) ?? []).length >= n) resolve(performance.now() - t0);
        });
        p.once('exit', (code, sig) => reject(new Error(`${kind} exited (${code ?? sig}) before its children acked`)));
      }),
      30_000,
    );
    await sleep(300);
    const rssKb = statusKb(p.pid as number, 'VmRSS') ?? NaN;
    p.kill('SIGTERM');
    await within(`${kind} to stop`, exited, 15_000);
    return { ms, rssKb };
  } finally {
    if (p.exitCode === null && p.signalCode === null) {
      try {
        process.kill(-(p.pid as number), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    started.delete(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function idleNodeRssKb(): Promise<number> {
  const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
  started.add(p);
  await sleep(500);
  const kb = statusKb(p.pid as number, 'VmRSS') ?? NaN;
  p.kill('SIGKILL');
  started.delete(p);
  return kb;
}

export async function startupBench(cfg: StartupConfig): Promise<StartupResult> {
  const version: StartupResult['version'] = [];
  for (const program of PROGRAMS) {
    let node = 0;
    let ours = 0;
    const bin = join(ROOT, 'bin', program);
    for (let i = 0; i < cfg.versionRuns; i++) {
      // ABBA: drift on the machine hits both alike.
      if (i % 2 === 0) {
        node += cpuOf(['-e', '0']);
        ours += cpuOf([bin, '--version']);
      } else {
        ours += cpuOf([bin, '--version']);
        node += cpuOf(['-e', '0']);
      }
    }
    version.push({ program, nodeMs: node / cfg.versionRuns, oursMs: ours / cfg.versionRuns, ratio: ours / node });
  }
  const bareMs: number[] = [];
  const oursMs: number[] = [];
  const bareRss: number[] = [];
  const masterRss: number[] = [];
  const nodeRss: number[] = [];
  const extraKb: number[] = [];
  await coldStart('ours', cfg.n); // warm the page cache for both
  await coldStart('bare', cfg.n);
  for (let i = 0; i < cfg.coldRounds; i++) {
    const order: Array<'bare' | 'ours'> = i % 2 === 0 ? ['bare', 'ours'] : ['ours', 'bare'];
    const idle = await idleNodeRssKb();
    nodeRss.push(idle);
    for (const kind of order) {
      const r = await coldStart(kind, cfg.n);
      (kind === 'bare' ? bareMs : oursMs).push(r.ms);
      (kind === 'bare' ? bareRss : masterRss).push(r.rssKb);
      if (kind === 'ours') extraKb.push(r.rssKb - idle);
    }
  }
  return {
    version,
    cold: { bareMs, oursMs, ratio: median(oursMs) / median(bareMs) },
    rss: { nodeKb: median(nodeRss), bareKb: median(bareRss), masterKb: median(masterRss), extraKb },
  };
}

export function startupTable(r: StartupResult, cfg: StartupConfig, checks: StartupCheck[]): string {
  const rows: string[][] = [];
  for (const v of r.version) {
    const ok = v.ratio <= 1.2;
    checks.push({ metric: `${v.program} --version CPU <= 1.2x node -e 0`, ok });
    rows.push([`${v.program} --version CPU ms (mean of ${cfg.versionRuns})`, v.nodeMs.toFixed(1), v.oursMs.toFixed(1), v.ratio.toFixed(2), `<= 1.20 ${ok ? 'ok' : 'MISSED'}`]);
  }
  const coldOk = r.cold.ratio <= 1.1;
  checks.push({ metric: 'cold start to all acked <= 1.1x bare launcher', ok: coldOk });
  rows.push([
    `spawn to ${cfg.n} children acked, ms (median of ${cfg.coldRounds})`,
    median(r.cold.bareMs).toFixed(0),
    median(r.cold.oursMs).toFixed(0),
    r.cold.ratio.toFixed(2),
    `<= 1.10 ${coldOk ? 'ok' : 'MISSED'}`,
  ]);
  const extraMb = median(r.rss.extraKb) / 1024;
  const lo = Math.min(...r.rss.extraKb) / 1024;
  const hi = Math.max(...r.rss.extraKb) / 1024;
  const rssOk = extraMb <= 6;
  checks.push({ metric: 'master RSS after start <= bare node + 6 MB', ok: rssOk });
  rows.push([
    `RSS after start, MB (idle node -e / bare launcher | master; median of ${r.rss.extraKb.length} rounds, range)`,
    `${(r.rss.nodeKb / 1024).toFixed(2)} / ${(r.rss.bareKb / 1024).toFixed(2)}`,
    (r.rss.masterKb / 1024).toFixed(2),
    `+${extraMb.toFixed(2)} MB (${lo.toFixed(2)}..${hi.toFixed(2)})`,
    `<= +6 MB ${rssOk ? 'ok' : 'MISSED'}`,
  ]);
  const head = ['start-up', 'baseline', 'ours', 'ratio', 'target'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(w[i] as number)).join(' | ')} |`;
  return [line(head), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
