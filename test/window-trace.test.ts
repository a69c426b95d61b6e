/**
 * The upgrade-window trace's analysis (test/bench/window-trace.ts) on a synthetic upgrade
 * whose answer is known: requests sorted into old and new generations by pid, worker events
 * as offsets from the trigger, CPU spread over the buckets, CPU per request by requests served.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addTrace, emptyTrace, type ChildEvents, type Sample } from './bench/window-trace.js';

const MARK = 1_000_000; // epoch ms of the load's mark
const T = MARK + 2000; // the trigger
const OLD = 101;
const NEW = 202;
const TICK_MS = 10; // USER_HZ 100 on Linux

test('one upgrade: completions by generation, events as offsets, CPU per request by requests answered', () => {
  // The old worker answers 1 request per ms until +150 ms; the new one from +160 ms, 1 per ms.
  const starts: number[] = [];
  const lats: number[] = [];
  const pids: number[] = [];
  for (let t = -300; t < 150; t++) {
    starts.push(2000 + t);
    lats.push(0.5);
    pids.push(OLD);
  }
  for (let t = 160; t < 2200; t++) {
    starts.push(2000 + t);
    lats.push(t < 300 ? 10 : 0.5);
    pids.push(NEW);
  }
  const events = new Map<number, ChildEvents>([
    [OLD, { pid: OLD, origin: MARK - 5000, listen: MARK - 4900, ack: MARK - 4890, drain: T + 150, exit: T + 155 }],
    [NEW, { pid: NEW, origin: T + 10, listen: T + 140, ack: T + 145 }],
  ]);
  // Samples every 100 ms: the new worker uses 50 ms of CPU per 100 ms, the master 10 ms in the first.
  const samples: Sample[] = [];
  for (let i = -3; i <= 22; i++) {
    const t = T + i * 100;
    const ticks = new Map<number, number>([
      [-1, i >= 1 ? 1 : 0],
      [-2, 0],
      [-3, 1000],
    ]);
    if (i >= 2) ticks.set(NEW, ((i - 1) * 50) / TICK_MS);
    samples.push({ t, ticks, wait: new Map() });
  }
  const acc = emptyTrace();
  addTrace(acc, {
    markEpochMs: MARK,
    starts: Float64Array.from(starts),
    latencies: Float32Array.from(lats),
    pids: Int32Array.from(pids),
    ups: [{ trigger: T, done: T + 160 }],
    events,
    samples,
  });
  assert.equal(acc.upgrades, 1);
  // Buckets start at -300 ms: index 3 is [0, 100).
  assert.equal(acc.oldDone[3], 100);
  assert.equal(acc.oldDone[4], 50);
  assert.equal(acc.newDone[4], 30); // started at 160 .. 189, answered 10 ms later: before 200
  assert.equal(acc.newDone[2], 0);
  assert.deepEqual(acc.offsets.newListen, [140]);
  assert.deepEqual(acc.offsets.oldDrain, [150]);
  assert.deepEqual(acc.offsets.oldExit, [155]);
  assert.equal(Math.round(acc.offsets.newFirstServed[0] as number), 170); // started at 160, 10 ms latency
  assert.deepEqual(acc.masterCpuMs, [10]);
  assert.ok(Math.abs((acc.cpuMaster[3] as number) - 10) < 1e-9);
  // The new worker: 50 ms per 100 ms while it answers ~100 requests per 100 ms: 500 µs each.
  const perReq = (acc.warmCpuMs[0] as number) / (acc.warmReqs[0] as number);
  assert.ok(Math.abs(perReq - 0.5) < 0.05, String(perReq));
});

test('a worker that started before the trigger and is still serving after it is old, not new', () => {
  const acc = emptyTrace();
  const events = new Map<number, ChildEvents>([[OLD, { pid: OLD, origin: MARK - 5000 }]]);
  addTrace(acc, {
    markEpochMs: MARK,
    starts: Float64Array.from([2050]),
    latencies: Float32Array.from([1]),
    pids: Int32Array.from([OLD]),
    ups: [{ trigger: T, done: T + 160 }],
    events,
    samples: [],
  });
  assert.equal(acc.oldDone[3], 1);
  assert.equal(acc.newDone.reduce((a, b) => a + b, 0), 0);
});
