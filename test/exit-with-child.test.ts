/**
 * --exit-with-child, black-box: the real master and a real child; the master exits with
 * the child's status when the child exits by itself, and not when an upgrade or a stop
 * asked it to exit.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, cleanupAll, startMaster, tempDir, until } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

/** A child that serves until the file `$0.exit` appears, then exits with the status written in it. */
const CHILD = ['sh', '-c', 'while [ ! -e "$0.exit" ]; do sleep 0.05; done; exit "$(cat "$0.exit")"'];

function start(dir: string, extra: string[] = []) {
  const flag = join(dir, 'child');
  const m = startMaster(['--exit-with-child', '-m', '0.2', '-s', '0.1', ...extra, '--', ...CHILD, flag], { dir });
  return { m, flag };
}

test('--exit-with-child: the child exits 3 by itself, the master exits 3 and leaves nothing', async () => {
  const dir = tempDir();
  const { m, flag } = start(dir);
  const [w] = await m.ready(1);
  writeFileSync(`${flag}.exit`, '3');
  const r = await until('the master to exit', () => m.exited, 15_000);
  assert.deepEqual(r, { code: 3, signal: null }, m.stderr);
  assert.match(m.stderr, new RegExp(`Worker ${w!.pid} exited with status 3; --exit-with-child: stopping, the master exits with status 3`));
  assert.equal(alive(w!.pid), false);
  assert.equal(existsSync(m.sockPath), false);
  // Drained, not replaced: no second child was started.
  assert.doesNotMatch(m.stderr, /Spawning|Up to 1 \/ 1[^]*Up to 1 \/ 1/);
});

test('--exit-with-child: the child killed by SIGKILL, the master exits 137', async () => {
  const dir = tempDir();
  const m = startMaster(['--exit-with-child', '-m', '0.2', '--', 'sleep', '600'], { dir });
  const [w] = await m.ready(1);
  process.kill(w!.pid, 'SIGKILL');
  const r = await until('the master to exit', () => m.exited, 15_000);
  assert.deepEqual(r, { code: 137, signal: null }, m.stderr);
  assert.match(m.stderr, /exited on SIGKILL; --exit-with-child: stopping, the master exits with status 137/);
});

test('--exit-with-child: an upgrade does not end the master, a stop exits 0', async () => {
  const dir = tempDir();
  const { m } = start(dir);
  const [old] = await m.ready(1);
  const replies = await m.ctl('upgrade');
  assert.equal(replies.at(-1)!.message, 'Upgrade done', JSON.stringify(replies));
  await until('the old child to exit', () => !alive(old!.pid));
  const [now] = await m.ready(1);
  assert.notEqual(now!.pid, old!.pid);
  assert.equal(m.exited, null, 'the master is still running after the upgrade');
  const r = await m.stop();
  assert.deepEqual(r, { code: 0, signal: null }, m.stderr);
  assert.doesNotMatch(m.stderr, /--exit-with-child: stopping/);
});

test('--exit-with-child: the new child of an upgrade crashing fails the upgrade, the master keeps serving', async () => {
  const dir = tempDir();
  const gate = join(dir, 'gate');
  writeFileSync(gate, 'good');
  // A release that exits 5 at once when the gate file says "bad".
  const m = startMaster(
    ['--exit-with-child', '-r', '1', '-s', '0.1', '-m', '0.5', '--', 'sh', '-c', 'test "$(cat "$0")" = bad && exit 5; exec sleep 600', gate],
    { dir },
  );
  const [old] = await m.ready(1);
  writeFileSync(gate, 'bad');
  const replies = await m.ctl('upgrade');
  assert.match(replies.at(-1)!.message, /Upgrade failed|abandon/i, JSON.stringify(replies));
  assert.equal(m.exited, null, 'the master is still running');
  const [still] = await m.ready(1);
  assert.equal(still!.pid, old!.pid);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--exit-with-child: scaling down to 0 is asked for, not an exit of the master', async () => {
  const dir = tempDir();
  const m = startMaster(['--exit-with-child', '-m', '0.2', '--', 'sleep', '600'], { dir });
  const [w] = await m.ready(1);
  await m.ctl('dec');
  await until('the child to exit', () => !alive(w!.pid));
  await until('no worker', async () => (await m.workers()).length === 0);
  assert.equal(m.exited, null);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--exit-with-child: after a reload, the adopted child exiting by itself still ends the master with its status', async () => {
  const dir = tempDir();
  const m = startMaster(['--exit-with-child', '-m', '0.2', '--', 'sleep', '600'], { dir });
  const [w] = await m.ready(1);
  const replies = await m.ctl('reload');
  assert.match(replies.at(-1)!.message, /Reload done/, JSON.stringify(replies));
  const [adopted] = await m.ready(1);
  assert.equal(adopted!.pid, w!.pid);
  process.kill(w!.pid, 'SIGTERM');
  const r = await until('the master to exit', () => m.exited, 15_000);
  assert.deepEqual(r, { code: 143, signal: null }, m.stderr);
  assert.equal(existsSync(m.sockPath), false);
});
