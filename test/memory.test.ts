/**
 * Issue 24 (memory per worker), structural: what the master's RSS is made of, counted, never
 * timed or weighed against a threshold of bytes (`npm run bench`'s scale phase and
 * `npm run soak` measure the RSS per worker against the same base).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startMaster, until } from './harness.js';
import { mallocArenas, mallocArenasIn } from './proc.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

test('mallocArenasIn: the 64 MiB-aligned anonymous heaps of glibc, rw-p and reserved parts together', () => {
  const maps = [
    '555555554000-555555556000 r--p 00000000 08:01 42   /usr/bin/node',
    '555555556000-555555a00000 rw-p 00000000 00:00 0    [heap]',
    '7f0000000000-7f0000021000 rw-p 00000000 00:00 0 ',
    '7f0000021000-7f0004000000 ---p 00000000 00:00 0 ',
    '7f0004000000-7f0004300000 rw-p 00000000 00:00 0 ',
    '7f0004300000-7f0008000000 ---p 00000000 00:00 0 ',
    '7f0008000000-7f0008800000 rw-p 00000000 00:00 0 ', // a thread stack: not 64 MiB
    '7f0010000000-7f0014000000 rw-p 00000000 00:00 0 ', // a whole 64 MiB heap in use
    '7f0014001000-7f0018000000 ---p 00000000 00:00 0 ', // not aligned
    '7f0020000000-7f0020021000 rw-p 00000000 00:00 0    /memfd:x (deleted)',
  ].join('\n');
  assert.deepEqual(mallocArenasIn(maps), [132, 3072, 65536]);
});

test("the master's threads share one malloc arena: 64 workers spawned and upgraded (on the spawner's two threads) add none", async () => {
  // glibc gives every thread that mallocs an arena of its own (8 per core) and each keeps what
  // it once held: with 1,000 workers four of them held 4-5.5 MB. The master caps arenas at its
  // start; one may exist from Node's own start-up (a V8 platform thread), none more.
  const m = startMaster(['-n', '64', '-m', '0', '--', 'sleep', '1000']);
  const first = new Set((await m.ready(64, 60_000)).map((w) => w.pid));
  const [r] = await m.ctl('upgrade', [], { timeoutMs: 60_000 });
  assert.ok(r, 'no reply to upgrade');
  await until(
    '64 new workers up, the old ones gone',
    async () => {
      const ws = await m.workers();
      return ws.length === 64 && ws.every((w) => w.state === 'up' && !first.has(w.pid));
    },
    60_000,
    100,
  );
  const arenas = mallocArenas(m.pid);
  assert.ok(arenas.length <= 1, `malloc arenas besides the main one: ${arenas.length} (${arenas.join(', ')} KB)`);
  assert.equal((await m.stop()).code, 0);
});
