/**
 * The soak's trend and verdict (test/soak/soak-trend.ts), on readings whose answer is known.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitSlope, soakVerdict, type SoakReading } from './soak/soak-trend.js';

const BASE_KB = 50_000;
/** Readings every 50 upgrades of `n` workers, RSS = 8 KB per worker + `kbPerUpgrade` per upgrade (+ a sawtooth). */
function run(n: number, upgrades: number, kbPerUpgrade: number, saw = 0): SoakReading[] {
  const out: SoakReading[] = [];
  for (let u = 0; u <= upgrades; u += 50) {
    const rssKb = BASE_KB + 8 * n + kbPerUpgrade * u + (u % 100 === 0 ? saw : -saw);
    out.push({ upgrade: u, rssKb, perWorkerKb: (rssKb - BASE_KB) / n, fds: 23, live: n, zombies: 0 });
  }
  return out;
}

test('the slope is per 100 upgrades and leaves out the first tenth of the run', () => {
  const r = run(100, 1000, 3);
  // A jump in the first tenth (caches filling) is not a trend.
  (r[1] as SoakReading).rssKb += 5000;
  const t = fitSlope(r, 1000);
  assert.equal(t.fromUpgrade, 100);
  assert.ok(Math.abs(t.kbPer100 - 300) < 1e-6, String(t.kbPer100));
  assert.ok(Math.abs(t.spanGrowthKb - 2700) < 1e-6, String(t.spanGrowthKb));
});

test('a flat run with noise passes; a sawtooth does not make a slope', () => {
  const r = run(1000, 1000, 0, 400);
  const t = fitSlope(r, 1000);
  assert.ok(Math.abs(t.kbPer100) < 10, String(t.kbPer100));
  const v = soakVerdict({ n: 1000, upgrades: 1000, first: r[0] as SoakReading, readings: r, trend: t });
  assert.deepEqual(v.problems, []);
});

test('1,000 workers growing 10 KB per upgrade: 9 KB per worker after 100, over 16 KB at 1,000 upgrades on the trend', () => {
  const r = run(1000, 100, 10);
  const v = soakVerdict({ n: 1000, upgrades: 100, first: r[0] as SoakReading, readings: r, trend: fitSlope(r, 100) });
  assert.equal(v.problems.length, 1, v.problems.join('; '));
  assert.match(v.problems[0] as string, /at 1,000 upgrades \(limit 16\)/);
  assert.ok(v.projectedPerWorkerKb > 16);
});

test('fewer than 1,000 workers: no per-worker limit, the absolute growth limit (6 MiB over the span) holds', () => {
  const flat = run(100, 1000, 0);
  flat.forEach((x) => (x.perWorkerKb = 60)); // the fixed part dominates at 100 workers: not a failure
  assert.deepEqual(soakVerdict({ n: 100, upgrades: 1000, first: flat[0] as SoakReading, readings: flat, trend: fitSlope(flat, 1000) }).problems, []);
  const leak = run(100, 1000, 8);
  const v = soakVerdict({ n: 100, upgrades: 1000, first: leak[0] as SoakReading, readings: leak, trend: fitSlope(leak, 1000) });
  assert.equal(v.problems.length, 1);
  assert.match(v.problems[0] as string, /RSS grew by 7\.0 MiB over upgrades 100\.\.1000/);
});

test('fds, zombies and children are leaks whatever the memory does', () => {
  const r = run(2, 400, 0);
  const last = r.at(-1) as SoakReading;
  last.fds += 1;
  last.zombies = 2;
  last.live = 1;
  const v = soakVerdict({ n: 2, upgrades: 400, first: r[0] as SoakReading, readings: r, trend: fitSlope(r, 400) });
  assert.deepEqual(v.problems, ['open fds grew from 23 to 24', '2 zombie children at the end', '1 live children at the end, expected 2']);
});

test('a short run: noise that looks like a slope does not project into a failure at 1,000 upgrades', () => {
  // 1,000 workers, readings every 2 upgrades, RSS moving ±300-500 KB (the keeper's sawtooth).
  const noise = [0, -200, 100, 300, -500, 400];
  const r: SoakReading[] = noise.map((d, i) => {
    const rssKb = BASE_KB + 12_000 + d;
    return { upgrade: 2 + 2 * i, rssKb, perWorkerKb: (rssKb - BASE_KB) / 1000, fds: 23, live: 1000, zombies: 0 };
  });
  const t = fitSlope(r, 12);
  assert.ok(t.kbPer100 > 1000, `the raw slope is large: ${t.kbPer100}`);
  const v = soakVerdict({ n: 1000, upgrades: 12, first: r[0] as SoakReading, readings: r, trend: t });
  assert.equal(v.growthPer100, 0);
  assert.deepEqual(v.problems, []);
});
