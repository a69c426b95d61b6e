/**
 * Soak benchmark (`npm run soak`): a master with Node workers (manual ACK,
 * graceful drain) upgraded SOAK_UPGRADES times (default 400). Reports the
 * master's fds, zombies, RSS and CPU before and after, RSS every 50 upgrades, and
 * upgrade latency. Not a test: it prints numbers; it fails on a leak (fds or zombies)
 * and when RSS grows by more than 6 MiB from upgrade 50 to upgrade 350 (when run that long).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '@einhyrningsins/ctl';
import { childrenOf, clockTicks, cpuTicks, openFdCount, statusKb, zombiesOf } from '../proc.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const UPGRADES = Number(process.env.SOAK_UPGRADES ?? 400);
/** --min-ready of the master (its default is 0): short, so that 400 upgrades take minutes, not an hour. */
const MIN_READY = process.env.SOAK_MIN_READY ?? '0.1';
/** RSS growth allowed from upgrade 50 to upgrade 350 (issue 11, item 9). */
const RSS_GROWTH_LIMIT_KB = 6 * 1024;
const N = Number(process.env.SOAK_WORKERS ?? 2);

/** The master's process readings that the soak compares before and after. */
function reading(pid: number) {
  return {
    fds: openFdCount(pid),
    rss: statusKb(pid, 'VmRSS') ?? NaN,
    cpu: cpuTicks(pid) ?? NaN,
    kids: { live: childrenOf(pid).length, zombies: zombiesOf(pid).length },
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ein-soak-'));
  const sock = join(dir, 'soak.sock');
  const master = spawn(
    process.execPath,
    [
      ...(process.env.SOAK_MASTER_NODE_ARGS ?? '').split(' ').filter(Boolean),
      join(ROOT, 'bin', 'einhyrningsins'),
      ...['-q', '-n', String(N), '-b', '127.0.0.1:0,r', '-m', 'manual', '--min-ready', MIN_READY, '-d', sock],
      ...['--', process.execPath, join(ROOT, 'test', 'fixtures', 'drain-child.mjs')],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const pid = master.pid as number;
  try {
    let client: ControlClient | null = null;
    for (let i = 0; i < 100 && !client; i++) {
      await sleep(50);
      client = await ControlClient.connect(sock).catch(() => null);
    }
    if (!client) throw new Error('the master did not come up');
    const ready = async () => {
      for (let i = 0; i < 400; i++) {
        const [r] = await client!.call('status');
        const ws = (r as unknown as { state: { workers: Array<{ state: string }> } }).state.workers;
        if (ws.length === N && ws.every((w) => w.state === 'up') && childrenOf(pid).length === N) return;
        await sleep(25);
      }
      throw new Error('workers did not settle');
    };
    await ready();
    const upgrade = async () => {
      const t = performance.now();
      const replies = await client!.call('upgrade');
      if (replies.at(-1)?.message !== 'Upgrade done') throw new Error(`upgrade failed: ${JSON.stringify(replies.at(-1))}`);
      await ready();
      return performance.now() - t;
    };
    for (let i = 0; i < 10; i++) await upgrade(); // warm-up
    const before = reading(pid);
    const lat: number[] = [];
    const rssAt = new Map<number, number>();
    for (let i = 1; i <= UPGRADES; i++) {
      lat.push(await upgrade());
      if (i % 50 === 0) rssAt.set(i, statusKb(pid, 'VmRSS') ?? NaN);
    }
    await sleep(200);
    const after = reading(pid);
    client.close();
    const rows: Array<[string, string, string]> = [
      ['master open fds', String(before.fds), String(after.fds)],
      ['master RSS (MiB)', (before.rss / 1024).toFixed(1), (after.rss / 1024).toFixed(1)],
      ['live children', String(before.kids.live), String(after.kids.live)],
      ['zombie children', String(before.kids.zombies), String(after.kids.zombies)],
    ];
    console.log(`soak: ${UPGRADES} upgrades of ${N} Node workers (manual ACK, graceful drain), after 10 warm-up upgrades\n`);
    console.log('| metric | before | after |\n|---|---|---|');
    for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
    console.log(`| upgrade to all new acked + old gone (ms) | median ${pct(lat, 50).toFixed(0)} | p90 ${pct(lat, 90).toFixed(0)} |`);
    console.log(`| master CPU per upgrade (ms) | ${(((after.cpu - before.cpu) * 1000) / clockTicks() / UPGRADES).toFixed(1)} | |`);
    if (rssAt.size) {
      console.log(`\nmaster RSS (MiB) after upgrade: ${[...rssAt].map(([i, kb]) => `${i}: ${(kb / 1024).toFixed(1)}`).join(', ')}`);
    }
    const leak = after.fds > before.fds || after.kids.zombies > 0 || after.kids.live !== N;
    if (leak) console.error('LEAK: fds, zombies or children grew');
    const r50 = rssAt.get(50);
    const r350 = rssAt.get(350);
    const grew = r50 !== undefined && r350 !== undefined && r350 - r50 > RSS_GROWTH_LIMIT_KB;
    if (grew) console.error(`RSS grew by ${((r350 - r50) / 1024).toFixed(1)} MiB from upgrade 50 to 350 (limit ${RSS_GROWTH_LIMIT_KB / 1024})`);
    return leak || grew ? 1 : 0;
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
