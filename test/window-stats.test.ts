/**
 * The upgrade-window figures of `npm run bench` (test/bench/window-stats.ts), on synthetic
 * runs whose answer is known: they must be upgrade_window.py's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseWindows } from './bench/window-stats.js';

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
