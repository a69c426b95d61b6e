/**
 * The scale phase's trace analysis (test/bench/scale-trace.ts) and its verdict line
 * (scale-table.ts), on synthetic data whose answer is known.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explain, traceReport, type LoopTraceFile } from './bench/scale-trace.js';
import { scaleTable, trips, type ScaleCheck, type ScaleRow } from './bench/scale-table.js';

/** Ticks every 5 ms from 1000 to 1200; from 1100 to 1150 the loop thread waited for a CPU (one 50 ms gap). */
function trace(): LoopTraceFile {
  const ticks = [];
  for (let t = 1005; t <= 1100; t += 5) ticks.push({ t, gapMs: 5, runMs: 0.5, waitMs: 0.1, runnable: 3, tasks: { engine: [1, 0.4, 0.4] as [number, number, number] } });
  ticks.push({ t: 1150, gapMs: 50, runMs: 4, waitMs: 45, runnable: 40, tasks: { 'spawn-turn': [1, 48, 48] as [number, number, number] } });
  for (let t = 1155; t <= 1200; t += 5) ticks.push({ t, gapMs: 5, runMs: 0.5, waitMs: 0.1, runnable: 3, tasks: {} });
  return { tickMs: 5, ticks, tasks: [['spawn-turn', 1101, 48], ['request:ehlo', 1149, 0.2]], gcs: [[1120, 3, 1]] };
}

test('a slow ehlo: the way in, the master\'s handling and the way back, and what the loop thread did meanwhile', () => {
  const e = explain(trace(), { kind: 'ehlo', start: 1098, ms: 60, clientWaitMs: 2 });
  assert.equal(e.inMs, 51);
  assert.equal(e.handleMs, 0.2);
  assert.ok(Math.abs((e.backMs as number) - 8.8) < 1e-9);
  // The ticks whose windows overlap [1098, 1158]: 1100 (1095-1100), 1150, 1155, 1160.
  assert.equal(e.maxGapMs, 50);
  assert.equal(e.maxRunnable, 40);
  assert.ok(Math.abs(e.waitMs - 45.3) < 1e-9, String(e.waitMs));
  assert.deepEqual(e.longTasks, [['spawn-turn', 48]]);
  assert.equal(e.gcMs, 3);
  assert.deepEqual(e.taskSums[0], ['spawn-turn', 1, 48]);
});

test('the report lists only the trips over the threshold, slowest first, ACKs by pid', () => {
  const lines = traceReport(
    trace(),
    [
      { kind: 'ack', start: 1095, ms: 70, pid: 42 },
      { kind: 'ehlo', start: 1098, ms: 60, clientWaitMs: 2 },
      { kind: 'ehlo', start: 1010, ms: 3, clientWaitMs: 0 },
    ],
    40,
    1000,
  );
  assert.equal(lines.length, 2);
  assert.match(lines[0] as string, /^ {2}ACK 42 70 ms at \+95; master loop: on CPU \d+, waiting for a CPU \d+, longest tick gap 50, up to 40 threads runnable, GC 3\.0; tasks spawn-turn 1x 48/);
  assert.match(lines[1] as string, /^ {2}ehlo 60 ms at \+98: in 51 \+ master 0\.2 \+ back 9 \(bench waited for a CPU 2\)/);
});

test('the scale table says plainly whether the round-trip and spawn targets are met', () => {
  const row = (spawnAckMax: number, upMs: number): ScaleRow => ({
    n: 1000,
    upMs,
    bareUpMs: 1000,
    spawnAcks: { count: 1000, p99: 30, max: spawnAckMax },
    upgradeAcks: trips([10, 12]),
    spawnCpuMsPerWorker: 0.5,
    spawnTrips: trips([5, 18]),
    upgradeMs: 1200,
    upgradeCpuMsPerWorker: 0.6,
    upgradeTrips: trips([7, 9]),
    upgradeReply: 'Upgrade done',
    rssKb: 60_000,
    rssAfterUpgradeKb: 61_000,
    upgradesDone: 1,
    rssAfterLastUpgradeKb: NaN,
    laterUpgradeCpuMsPerWorker: NaN,
    idleCpuMsPer10s: null,
    killed: 0,
  });
  const checks: ScaleCheck[] = [];
  const text = scaleTable({ baseRssKb: 52_000, rows: [row(19, 800), row(104, 1001)] }, checks);
  assert.match(text, /N=1000: round trips over the whole spawn and the whole upgrade: max 19 ms \(spawning: ehlo 18, ACK 19; upgrading: ehlo 9, ACK 12\); target <= 100 ms MET, stretch <= 20 ms MET; spawning took 0\.80x the bare loop \(target <= 1\.00: MET\)/);
  assert.match(text, /max 104 ms .*target <= 100 ms MISSED, stretch <= 20 ms MISSED; spawning took 1\.00x the bare loop \(target <= 1\.00: MISSED\)/);
  assert.deepEqual(
    checks.filter((c) => /round trips|bare loop/.test(c.metric)).map((c) => c.ok),
    [true, true, false, false],
  );
});
