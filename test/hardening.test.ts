/**
 * Issue 11 (hardening, round two), black-box: each defect found by trying to break the
 * master, with the real CLI, real children, real sockets and real signals.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, fixture, httpGet, startMaster, tempDir } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

const launched = (stderr: string) => (stderr.match(/===> Launched \d+/g) ?? []).length;

// ---- 1. a worker that exits right after its ACK -------------------------------------

test('1: workers that exit right after their ack are failed starts: -r gives up after 3 spawns', async () => {
  const dir = tempDir();
  const rel = join(dir, 'release');
  writeFileSync(rel, 'exit-after-ack\n');
  const m = startMaster(['-n', '2', '-r', '2', '-m', 'manual', '-s', '0.2', '-b', '127.0.0.1:0', '--', process.execPath, fixture('release-child.mjs')], {
    dir,
    env: { FIXTURE_RELEASE_FILE: rel },
  });
  await m.waitLog(/Giving up after 3 consecutive failed starts/, 30_000);
  const [st] = await m.ctl('status');
  const state = (st as unknown as { state: { gave_up: boolean; workers: unknown[] } }).state;
  assert.equal(state.gave_up, true);
  assert.equal(launched(m.stderr), 3, 'two at the start, one probe, then it gave up');
  assert.deepEqual(state.workers, []);
  assert.equal((await m.stop()).code, 0);
});

test('1: an upgrade to a release whose workers exit right after their ack is abandoned; the old ones keep serving', async () => {
  const dir = tempDir();
  const rel = join(dir, 'release');
  writeFileSync(rel, 'good\n');
  const m = startMaster(['-n', '2', '-r', '2', '-m', 'manual', '-s', '0.2', '-b', '127.0.0.1:0', '--', process.execPath, fixture('release-child.mjs')], {
    dir,
    env: { FIXTURE_RELEASE_FILE: rel },
  });
  const port = await m.port();
  const old = (await m.ready(2)).map((w) => w.pid).sort();
  writeFileSync(rel, 'exit-after-ack\n');
  const replies = await m.ctl('upgrade', [], { timeoutMs: 60_000 });
  assert.equal(replies.at(-1)?.message, 'Upgrade failed');
  assert.match(replies.at(-2)?.message ?? '', /failed/);
  const ws = await m.workers();
  assert.deepEqual(ws.map((w) => w.pid).sort(), old, 'the old workers, still there');
  assert.ok(ws.every((w) => w.state === 'up' && w.generation === 0));
  assert.match(await httpGet(port), / good$/m);
  assert.equal((await m.stop()).code, 0);
});
