/**
 * The upgrade-window figures of `npm run bench` (test/bench/window-stats.ts), on synthetic
 * runs whose answer is known: they must be upgrade_window.py's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseWindows } from './bench/window-stats.js';
import { emptyTrace, upgradeCost } from './bench/window-trace.js';

/** A 20 s run at 100 completions per 100 ms bucket, one request per completion, 1 ms each. */
function steadyRun(): { starts: number[]; lats: number[]; buckets: number[] } {
  const buckets = Array.from({ length: 200 }, () => 100);
  const starts: number[] = [];
  const lats: number[] = [];
  for (let i = 0; i < 200 * 100; i++) {
    starts.push(i);
    lats.push(1);
  }
  return { starts, lats, buckets };
}

test('capacity lost: the shortfall of the window\'s buckets against the median bucket, in ms of full capacity', () => {
  const run = steadyRun();
  // Upgrade asked at 5.0 s, done at 5.5 s: window [4.75 s, 6.0 s); two buckets in it at 20 %.
  run.buckets[50] = 20;
  run.buckets[51] = 20;
  // A dip outside every window is noise: it does not count (and a median is not moved by it).
  run.buckets[150] = 0;
  const a = analyseWindows(run.starts, run.lats, run.buckets, 20_000, [{ triggerMs: 5000, doneMs: 5500 }]);
  assert.equal(a.medianBucket, 100);
  assert.equal(a.upgrades.length, 1);
  const u = a.upgrades[0]!;
  assert.equal(u.windowMs, 1250);
  assert.equal(u.lostMs, 160, '2 x 80 requests at 1 request per ms of full capacity');
  // The noise floor: the mean shortfall outside (one empty bucket in 167) times the window's 13 buckets.
  assert.ok(Math.abs(u.floorMs - (13 * 100) / 167) < 1e-9, `noise floor ${u.floorMs}`);
});

test('window p99: of the requests started in the windows, pooled and per window', () => {
  const run = steadyRun();
  // 2 % of the requests started in [4.75 s, 6.0 s) took 50 ms.
  for (let t = 4750; t < 6000; t += 50) run.lats[t] = 50;
  const a = analyseWindows(run.starts, run.lats, run.buckets, 20_000, [{ triggerMs: 5000, doneMs: 5500 }]);
  assert.equal(a.upgrades[0]!.requests, 1250);
  assert.equal(a.upgrades[0]!.p99Ms, 50);
  assert.equal(a.upgrades[0]!.maxMs, 50);
  assert.equal(a.pooledP99Ms, 50);
  assert.equal(a.outsideP99Ms, 1, 'outside the windows every request took 1 ms');
  assert.equal(a.upgrades[0]!.lostMs, 0);
});

test('fixed window: as long for every tool, [trigger - 0.25 s, + 2.5 s), whatever the upgrade took', () => {
  const run = steadyRun();
  // A fast upgrade: asked at 5.0 s, done at 5.2 s; its own window is [4.75 s, 5.7 s), 950 requests.
  // 20 requests right after the trigger took 50 ms: 2.1 % of its own window, 0.8 % of the fixed one.
  for (let t = 5000; t < 5020; t++) run.lats[t] = 50;
  run.buckets[50] = 40;
  // A dip after the upgrade's own window, inside the fixed one: counted only there.
  run.buckets[60] = 70;
  run.buckets[150] = 0; // noise, outside every window
  const a = analyseWindows(run.starts, run.lats, run.buckets, 20_000, [{ triggerMs: 5000, doneMs: 5200 }]);
  const u = a.upgrades[0]!;
  assert.equal(u.windowMs, 950);
  assert.equal(u.p99Ms, 50, 'in its own window the 20 slow requests are over 1 %');
  assert.equal(u.fixP99Ms, 1, 'in 2.5 s of the same traffic they are under 1 %');
  assert.equal(a.fixPooledP99Ms, 1);
  assert.equal(u.lostMs, 60);
  assert.equal(u.fixLostMs, 90, 'the later dip is in the fixed window');
  // The noise floor is the same mean shortfall outside the own windows, times the buckets a
  // window touches: 26 for the fixed one (47..72, the last one half in, as upgrade_window.py's
  // ceil), 10 for the own one (47..56).
  assert.ok(Math.abs(u.fixFloorMs / u.floorMs - 26 / 10) < 1e-9, `floors ${u.fixFloorMs} / ${u.floorMs}`);
});

test('capacity floor: the extra CPU of an upgrade, in ms of what the load loop serves with it', () => {
  // Two upgrades averaged (the buckets are sums). Before the trigger (3 buckets) and after it
  // but for two buckets: 1,000 completions per 100 ms, 120 ms of worker CPU and 80 of load
  // generator: the loop uses both cores (0.2 ms of CPU per request, 10 requests per ms).
  const t = emptyTrace();
  t.upgrades = 2;
  for (let b = 0; b < t.oldDone.length; b++) {
    t.oldDone[b] = 2 * 1000;
    t.cpuOld[b] = 2 * 120;
    t.cpuBench[b] = 2 * 80;
  }
  // Bucket +0: the new workers boot (60 ms) and the old ones serve 800 on 96 ms.
  t.oldDone[3] = 2 * 800;
  t.cpuOld[3] = 2 * 96;
  t.cpuNew[3] = 2 * 60;
  t.cpuBench[3] = 2 * 64;
  // Bucket +100: the cutover; two cold new workers serve 700 on 124 ms (84 at the warm cost).
  t.oldDone[4] = 0;
  t.cpuOld[4] = 0;
  t.newDone[4] = 2 * 700;
  t.cpuNew[4] = 2 * 124;
  t.cpuBench[4] = 2 * 56;
  // The new workers' own accounts: 30 ms of boot each (two per upgrade); 1,400 requests in
  // their first bin on 248 ms, and warm (20,000+ requests) at 0.12 ms per request.
  t.newBootCpuMs.push(30, 30, 30, 30);
  t.warmReqs[0] = 2 * 700;
  t.warmCpuMs[0] = 2 * 124;
  const last = t.warmReqs.length - 1;
  t.warmReqs[last] = 2 * 10_000;
  t.warmCpuMs[last] = 2 * 1_200;
  const c = upgradeCost(t, 2);
  assert.ok(Math.abs(c.bootCpuMs - 60) < 1e-9, `boot ${c.bootCpuMs}`);
  assert.ok(Math.abs(c.warmCpuMs - 40) < 1e-9, `warm-up ${c.warmCpuMs}: 124 - 84 ms`);
  assert.ok(Math.abs(c.extraCpuMs - 100) < 1e-9, `extra CPU ${c.extraCpuMs}: 60 to boot + 40 to warm`);
  assert.ok(Math.abs(c.loopUsPerReq - 200) < 1e-9, `${c.loopUsPerReq}`);
  assert.ok(Math.abs(c.ratePerMs - 10) < 1e-9);
  assert.ok(Math.abs(c.floorMs - 50) < 1e-9, `floor ${c.floorMs}: 100 ms of CPU on two busy cores is 50 ms of capacity`);
  // Idle: only bucket +100 left 20 ms of the 200 unused (the boot bucket's 220 counts as none).
  assert.ok(Math.abs(c.idleMsPer100 - 20 / 22) < 1e-9, `idle ${c.idleMsPer100}`);
  assert.equal(c.spanMs, 2200);
  // On a shared machine the extra CPU is taken from the other processes too, in proportion:
  // with the loop on 1.5 cores before the trigger (90 ms of workers and 60 of load generator
  // per 100 ms) and others on 0.5, the loop loses its share of the extra CPU, extra / 2 ms.
  for (let b = 0; b < 3; b++) {
    t.cpuOld[b] = 2 * 90;
    t.cpuBench[b] = 2 * 60;
    t.cpuOther[b] = 2 * 50;
  }
  const shared = upgradeCost(t, 2);
  assert.ok(Math.abs(shared.loopUsPerReq - 150) < 1e-9, `${shared.loopUsPerReq}`);
  assert.ok(Math.abs(shared.floorMs - 50) < 1e-9, `floor ${shared.floorMs}`);
});
