import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKeeper, OUTPUT_BURST } from '../src/memory.js';

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

