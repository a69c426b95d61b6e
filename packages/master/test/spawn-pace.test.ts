/**
 * Pacing a burst of spawns by the machine's runnable threads (spawn-pace.ts): pure, a fake
 * clock and made-up runnable counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SPAWN_PACE, SpawnPace } from '../src/spawn-pace.js';
import { defaultSpawnPace } from '../src/host/spawn-turns.js';
import { runnableThreads } from '../src/proc-stat.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cfg = { cpus: 2, perCpu: 4, maxHoldMs: 20, retryMs: 1 };

test('a burst may run its runnable threads up to perCpu x CPUs above what they were when it began', () => {
  const p = new SpawnPace(cfg);
  p.begin(3); // the others' load, this process included
  assert.equal(p.limit, 11);
  assert.deepEqual(p.decide(0, 11), { go: true });
  assert.deepEqual(p.decide(1, 12), { go: false, retryMs: 1 });
  assert.deepEqual(p.decide(2, 12), { go: false, retryMs: 1 });
  // Down to the limit: the batch goes.
  assert.deepEqual(p.decide(3, 11), { go: true });
  assert.equal(p.held, 1);
});

test('a held batch goes anyway after maxHoldMs (load coming up from elsewhere never stalls a burst)', () => {
  const p = new SpawnPace(cfg);
  p.begin(1);
  assert.deepEqual(p.decide(100, 50), { go: false, retryMs: 1 });
  assert.deepEqual(p.decide(110, 50), { go: false, retryMs: 1 });
  // The last wait is cut to what is left of the hold.
  assert.deepEqual(p.decide(119.5, 50), { go: false, retryMs: 0.5 });
  assert.deepEqual(p.decide(120, 50), { go: true });
  // The next batch over the limit waits again, from its own start.
  assert.deepEqual(p.decide(121, 50), { go: false, retryMs: 1 });
  assert.deepEqual(p.decide(140, 50), { go: false, retryMs: 1 });
  assert.deepEqual(p.decide(141, 50), { go: true });
  assert.equal(p.held, 2);
});

test('nothing to read (no /proc/loadavg) or no burst begun: never held', () => {
  const p = new SpawnPace(cfg);
  assert.equal(p.limit, null);
  assert.deepEqual(p.decide(0, 1000), { go: true });
  p.begin(NaN);
  assert.deepEqual(p.decide(0, 1000), { go: true });
  p.begin(1);
  assert.deepEqual(p.decide(0, NaN), { go: true });
});

test('each burst has its own base; one CPU still allows one thread at the least', () => {
  const p = new SpawnPace(cfg);
  p.begin(10);
  assert.equal(p.limit, 18);
  assert.deepEqual(p.decide(0, 30), { go: false, retryMs: 1 });
  p.begin(2);
  assert.equal(p.held, 0);
  assert.equal(p.limit, 10);
  assert.deepEqual(p.decide(0, 10), { go: true });
  const small = new SpawnPace({ ...cfg, cpus: 1, perCpu: 0.1 });
  small.begin(1);
  assert.equal(small.limit, 2);
});

test('EINHYRNINGSINS_SPAWN_PACE: 0 turns pacing off, a number sets the threads per CPU, default 2', () => {
  assert.equal(defaultSpawnPace({ EINHYRNINGSINS_SPAWN_PACE: '0' }), null);
  assert.equal(defaultSpawnPace({ EINHYRNINGSINS_SPAWN_PACE: 'off' }), null);
  assert.equal(defaultSpawnPace({ EINHYRNINGSINS_SPAWN_PACE: '6' })?.perCpu, 6);
  const d = defaultSpawnPace({});
  assert.equal(d?.perCpu, DEFAULT_SPAWN_PACE.perCpu);
  assert.ok((d?.cpus ?? 0) >= 1);
});

test('runnableThreads reads /proc/loadavg\'s running count (NaN when it cannot)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ein-loadavg-'));
  try {
    const f = join(dir, 'loadavg');
    writeFileSync(f, '0.55 1.44 1.79 7/138 27049\n');
    assert.equal(runnableThreads(f), 7);
    writeFileSync(f, 'garbage\n');
    assert.ok(Number.isNaN(runnableThreads(f)));
    assert.ok(Number.isNaN(runnableThreads(join(dir, 'missing'))));
    assert.ok(runnableThreads() >= 1); // this thread is running
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
