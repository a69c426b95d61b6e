/**
 * Issue 24's memory targets as the scale phase of `npm run bench` and `npm run soak` both
 * state them (test/bench/rss-base.ts): one base, one formula, plain verdicts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_TEXT, flatVerdict, perWorkerKb, perWorkerVerdict } from './bench/rss-base.js';
import { scaleTable, type ScaleCheck } from './bench/scale-table.js';
import { fitSlope, soakVerdict, type SoakReading } from './soak/soak-trend.js';

test('RSS per worker: over the master of one, for the N - 1 workers beyond it', () => {
  assert.equal(perWorkerKb(48_000 + 999 * 12, 48_000, 1000), 12);
  assert.equal(perWorkerKb(48_000, 48_000, 1), 0);
  assert.match(BASE_TEXT, /one worker, same options, after 3 upgrades and one status, read 3 s later/);
});

test('the 16 KB verdict: MET when every reading at 1,000 workers is under it, MISSED naming the worst, not measured below 1,000', () => {
  const met = perWorkerVerdict(1000, [
    { label: 'start', kb: 11.8 },
    { label: 'after upgrade 1', kb: 13.9 },
  ]);
  assert.equal(met.met, true);
  assert.match(met.line, /<= 16 KB at 1,000 workers: MET at N=1000 \(start 11\.8, after upgrade 1 13\.9 KB; worst 13\.9 after upgrade 1; 2 readings\)/);
  const missed = perWorkerVerdict(1000, [
    { label: 'start', kb: 16.8 },
    { label: 'after 10', kb: 15 },
  ]);
  assert.equal(missed.met, false);
  assert.match(missed.line, /MISSED at N=1000 .*worst 16\.8 start/);
  assert.equal(perWorkerVerdict(1000, [{ label: 'start', kb: NaN }]).met, false);
  const small = perWorkerVerdict(256, [{ label: 'start', kb: 30 }]);
  assert.equal(small.met, null);
  assert.match(small.line, /not measured \(256 workers; it is stated at 1000\)/);
});

test('the flatness verdict: only a run of 1,000 workers x 1,000 upgrades says MET or MISSED; growth beyond two standard errors counts', () => {
  // 1,000 workers, 100 KB per 100 upgrades +- 60 (2 SE 120): inside the noise.
  assert.equal(flatVerdict({ n: 1000, upgrades: 1000, kbPer100: 100, sePer100: 60 }).met, true);
  // 300 +- 2x50: 200 KB per 100 beyond the noise = 2 MB over 1,000 upgrades = 2 KB per worker.
  const grow = flatVerdict({ n: 1000, upgrades: 1000, kbPer100: 300, sePer100: 50 });
  assert.equal(grow.met, false);
  assert.equal(grow.beyondNoiseKbPerWorker, 2);
  assert.match(grow.line, /flat over 1000 upgrades of 1,000 workers: MISSED \(trend 300 ± 100 KB per 100 upgrades; beyond the noise 200 KB per 100, 2\.00 KB per worker/);
  const short = flatVerdict({ n: 1000, upgrades: 150, kbPer100: 0, sePer100: 10 });
  assert.equal(short.met, null);
  assert.match(short.line, /not measured by this run \(1000 workers x 150 upgrades; SOAK_WORKERS=1000 SOAK_UPGRADES=1000 npm run soak measures it\)/);
});

test("the soak: a reading over 16 KB before the warm-up upgrades fails it too (it looked at the last reading only), and prints both targets' verdicts", () => {
  const base = 48_000;
  const reading = (upgrade: number, kbPerWorker: number): SoakReading => ({
    upgrade,
    rssKb: base + 999 * kbPerWorker,
    perWorkerKb: kbPerWorker,
    fds: 22,
    live: 1000,
    zombies: 0,
  });
  const readings = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000].map((u) => reading(u, 14));
  const first = reading(-10, 16.8);
  const v = soakVerdict({ n: 1000, upgrades: 1000, first, readings, trend: fitSlope(readings, 1000) });
  assert.deepEqual(v.problems, ['RSS per worker 16.8 KB at the start (limit 16)']);
  assert.equal(v.targets.length, 2);
  assert.match(v.targets[0] as string, /RSS per worker <= 16 KB at 1,000 workers: MISSED/);
  assert.match(v.targets[1] as string, /flat over 1000 upgrades of 1,000 workers: MET/);
  const ok = soakVerdict({ n: 1000, upgrades: 1000, first: reading(-10, 12), readings, trend: fitSlope(readings, 1000) });
  assert.deepEqual(ok.problems, []);
  assert.match(ok.targets[0] as string, /: MET at N=1000/);
});

test("the scale table states the base, each 1,000-worker row's verdict, that flatness is the soak's, and the marginal cost between the largest N", () => {
  const row = (n: number, kb: number) => ({
    n,
    upMs: 1000,
    bareUpMs: 1100,
    spawnAcks: { count: n, p99: 5, max: 9 },
    upgradeAcks: { count: n, p99: 5, max: 9 },
    spawnCpuMsPerWorker: 0.5,
    spawnTrips: { count: 100, p99: 5, max: 9 },
    upgradeMs: 1200,
    upgradeCpuMsPerWorker: 0.6,
    upgradeTrips: { count: 100, p99: 5, max: 9 },
    upgradeReply: 'Upgrade done',
    rssKb: 48_000 + (n - 1) * kb,
    rssAfterUpgradeKb: 48_000 + (n - 1) * (kb + 1),
    upgradesDone: 10,
    rssAfterLastUpgradeKb: 48_000 + (n - 1) * (kb + 1.2),
    laterUpgradeCpuMsPerWorker: 0.5,
    idleCpuMsPer10s: 0,
    killed: 0,
  });
  const checks: ScaleCheck[] = [];
  const text = scaleTable({ baseRssKb: 48_000, rows: [row(256, 20), row(1000, 12)] }, checks);
  assert.match(text, /master RSS with 1 worker \(the base\) 46\.9 MiB; RSS per worker = \(RSS - base\) \/ \(N - 1\)/);
  assert.match(text, /RSS per worker <= 16 KB at 1,000 workers: MET at N=1000 \(start 12\.0, after upgrade 1 13\.0, after upgrade 10 13\.2 KB/);
  assert.match(text, /flat over 1,000 upgrades of 1,000 workers: not measured by this phase .*N=1000: RSS .* MiB after upgrade 1, .* MiB after upgrade 10 \(\+0\.2 MiB\)/);
  assert.match(text, /marginal RSS per worker from N=256 to N=1000 .*: 9\.3 KB at start/);
  assert.deepEqual(
    checks.filter((c) => /16 KB/.test(c.metric)).map((c) => c.ok),
    [true],
  );
  const over: ScaleCheck[] = [];
  scaleTable({ baseRssKb: 48_000, rows: [row(1000, 16.5)] }, over);
  assert.deepEqual(
    over.filter((c) => /16 KB/.test(c.metric)).map((c) => c.ok),
    [false],
  );
});
