/**
 * Issue 24 (memory per worker), structural: what the master's RSS is made of, counted, never
 * timed or weighed against a threshold of bytes (`npm run bench`'s scale phase and
 * `npm run soak` measure the RSS per worker against the same base).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startMaster, until } from './harness.js';
import { readFileSync } from 'node:fs';
import { RSS_PARTS, mallocArenas, mallocArenasIn, rssBreakdown, rssBreakdownIn, rssBreakdownLine } from './proc.js';

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

test('rssBreakdownIn: each mapping of smaps counted once, in its kind', () => {
  const m = (range: string, perms: string, name: string, rss: number) => `${range} ${perms} 00000000 00:00 0 ${name}\nSize: 1 kB\nRss: ${rss} kB\nPss: 1 kB\n`;
  const smaps = [
    m('555555554000-555555556000', 'r-xp', '/usr/bin/node', 100),
    m('555555556000-555555600000', 'rw-p', '[heap]', 20),
    m('7e0000000000-7e0000021000', 'rw-p', '', 30), // an arena's used part ...
    m('7e0000021000-7e0004000000', '---p', '', 0), // ... and its reservation
    m('7e0010040000-7e0010080000', 'rw-p', '', 256), // a V8 page
    m('7e0010080000-7e00100c0000', 'rwxp', '', 64),
    m('7e00100c0000-7e00100c3000', 'rw-p', '', 12), // neither
    m('7f0000000000-7f0000001000', 'r-xp', '/usr/lib/libc.so.6', 8),
    m('7ffc00000000-7ffc00021000', 'rw-p', '[stack]', 16),
  ].join('');
  const b = rssBreakdownIn(smaps, '/usr/bin/node');
  assert.deepEqual(b, {
    'node binary': 100,
    'other files': 8,
    'V8 heap pages': 256,
    'V8 code pages': 64,
    'malloc main arena': 20,
    'malloc other arenas': 30,
    stacks: 16,
    'other anonymous': 12,
  });
  assert.match(rssBreakdownLine(b), /^node binary 0\.1, other files 0\.0, V8 heap pages 0\.3, .* other anonymous 0\.0 MiB$/);
  assert.match(rssBreakdownLine(b, b), /^node binary 0\.1 -> 0\.1, /);
});

test("rssBreakdown of a live process: the parts add up to every mapping's Rss", () => {
  const text = readFileSync('/proc/self/smaps', 'utf8');
  const total = [...text.matchAll(/^Rss:\s+(\d+) kB/gm)].reduce((a, x) => a + Number(x[1]), 0);
  const b = rssBreakdownIn(text);
  assert.equal(RSS_PARTS.reduce((a, p) => a + b[p], 0), total);
  assert.ok(b['node binary'] > 0, 'the node binary has resident pages');
  assert.ok(Object.values(rssBreakdown(process.pid)).every((x) => Number.isInteger(x) && x >= 0));
});
