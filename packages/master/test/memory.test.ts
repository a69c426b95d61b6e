import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DEFER_MS, MemoryKeeper, OUTPUT_BURST, SETTLE_CHECK_MS } from '../src/memory.js';

/** A keeper that counts its compactions instead of running them (a full GC and malloc_trim). */
class CountingKeeper extends MemoryKeeper {
  compactions = 0;
  protected override collect(): void {
    this.compactions++;
  }
}

test('MemoryKeeper: each MiB of children\'s output read is compacted 2 s after, less is not', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const k = new CountingKeeper();
  k.output(OUTPUT_BURST / 2);
  t.mock.timers.tick(5000);
  assert.equal(k.compactions, 0, 'half a MiB: no compaction');
  k.output(OUTPUT_BURST / 2);
  t.mock.timers.tick(1999);
  assert.equal(k.compactions, 0, 'not before 2 s');
  t.mock.timers.tick(1);
  assert.equal(k.compactions, 1, 'one MiB in all: compacted 2 s after');
  // Output flowing on: at most one compaction per 2 s, whatever the number of MiB.
  for (let i = 0; i < 10; i++) k.output(OUTPUT_BURST);
  t.mock.timers.tick(2000);
  assert.equal(k.compactions, 2);
  k.stop();
});

test('MemoryKeeper: a compaction (for workers) starts the output count again', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const k = new CountingKeeper();
  k.output(OUTPUT_BURST - 1);
  k.poke();
  t.mock.timers.tick(2000);
  assert.equal(k.compactions, 1);
  k.output(1);
  t.mock.timers.tick(5000);
  assert.equal(k.compactions, 1, 'the byte before the compaction is not counted again');
  k.stop();
});


// Issue 24: the compacting full GC held the master's loop for 325 ms (1,000 workers, loaded
// machine) 2 s after the first worker of a burst, in the middle of the burst: the ACKs and
// every command waited behind it. It now waits until the workers are settled.
test('MemoryKeeper: a compaction due while workers are in motion waits until they are settled, at most 30 s', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let settled = false;
  const k = new CountingKeeper(() => settled);
  // Time passes in steps (a timer the keeper sets again runs at a later tick).
  const pass = (ms: number) => {
    for (let left = ms; left > 0; left -= SETTLE_CHECK_MS) t.mock.timers.tick(Math.min(left, SETTLE_CHECK_MS));
  };
  for (let i = 0; i < 20; i++) k.spawned();
  pass(2000);
  assert.equal(k.compactions, 0, 'due after 2 s, but the burst goes on');
  pass(10 * SETTLE_CHECK_MS);
  assert.equal(k.compactions, 0, 'still in motion');
  settled = true;
  pass(SETTLE_CHECK_MS);
  assert.equal(k.compactions, 0, 'settled: 2 s more, as after a small burst');
  pass(2000);
  assert.equal(k.compactions, 1, 'compacted 2 s after the workers settled');
  // A burst that starts again within those 2 s defers it again.
  settled = false;
  k.poke();
  pass(2000 + SETTLE_CHECK_MS);
  settled = true;
  pass(SETTLE_CHECK_MS);
  settled = false;
  pass(2000 + 4 * SETTLE_CHECK_MS);
  assert.equal(k.compactions, 1, 'in motion again when the 2 s were up');
  settled = true;
  pass(SETTLE_CHECK_MS + 2000);
  assert.equal(k.compactions, 2);
  // Never settled (a worker that ignores its drain signal): compacted anyway, MAX_DEFER_MS late.
  settled = false;
  k.poke();
  pass(2000 + MAX_DEFER_MS - SETTLE_CHECK_MS);
  assert.equal(k.compactions, 2);
  pass(SETTLE_CHECK_MS);
  assert.equal(k.compactions, 3, 'compacted after waiting MAX_DEFER_MS');
  k.stop();
});
