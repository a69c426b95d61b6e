/**
 * Issue 24, black-box: the control socket with hundreds of workers. Cheap workers
 * (`sleep`, timer mode) so that a few hundred fit in a test; the speed targets are in
 * `npm run bench` (its scale phase), never here.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { ROOT, alive, cleanupAll, runCli, startMaster, until } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

const CTL = join(ROOT, 'bin', 'einhyrningsinsctl');

test('einhyrningsinsctl status of 400 workers prints it (a reply over 64 KiB; the ctl used to wait for ever)', async () => {
  const m = startMaster(['-n', '400', '-m', '0', '--', 'sleep', '1000']);
  await m.ready(400, 60_000);
  const r = await runCli(['-d', m.sockPath, 'status'], { bin: CTL, timeoutMs: 30_000 });
  assert.equal(r.signal, null, `the ctl did not finish (killed); stderr: ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /400 up/);
  assert.equal((await m.stop()).code, 0);
});

test('an operator that reads an upgrade of 200 workers slower than it comes gets every final reply, never cut off', async () => {
  // A small reply cap (test knob) stands for an upgrade of 1,000 workers on a busy machine:
  // its progress lines (several per worker) used to fill the cap and drop the operator.
  const m = startMaster(['-n', '200', '-m', '0', '--', 'sleep', '1000'], { env: { EINHYRNINGSINS_TEST_MAX_PENDING_OUTPUT: '4096' } });
  const old = new Set((await m.ready(200, 60_000)).map((w) => w.pid));
  const c = createConnection(m.sockPath);
  await new Promise<void>((resolve, reject) => c.once('connect', resolve).once('error', reject));
  let text = '';
  let closed = false;
  c.on('data', (d: Buffer) => (text += d.toString()));
  c.on('close', () => (closed = true));
  c.pause(); // the operator's terminal is slow: nothing read until the upgrade is over
  c.write('{"command":"upgrade","args":[],"id":7}\n');
  try {
    await until(
      'the upgrade done (200 new workers up, the old ones gone)',
      async () => {
        const ws = await m.workers();
        return ws.length === 200 && ws.every((w) => w.state === 'up' && !old.has(w.pid));
      },
      60_000,
      100,
    );
    c.resume();
    await until('the final reply', () => closed || /message: Upgrade done/.test(text), 15_000, 20);
    assert.equal(closed, false, `the master closed the connection; log: ${m.stderr.split('\n').filter((l) => /WARN/.test(l)).join('\n')}`);
    assert.match(text, /message: Upgrade done%0Arequest_id: 7%0A\n/);
    assert.match(text, /progress lines not sent: the client reads slower than they come/);
    assert.doesNotMatch(m.stderr, /dropping a client/);
  } finally {
    c.destroy();
  }
  assert.equal((await m.stop()).code, 0);
});

test('a reload while 300 workers are being spawned (in turns) keeps every one of them, each with its pid', async () => {
  const m = startMaster(['-n', '300', '-m', '0', '--', 'sleep', '1000']);
  await m.waitLog(/Starting 300 workers/, 30_000);
  // Sent at once: most of the 300 spawns are still waiting for their turn when it arrives.
  const replies = await m.ctl('reload', [], { timeoutMs: 60_000 });
  assert.match(replies.at(-1)!.message, /Reload done/);
  const ws = await m.ready(300, 60_000);
  assert.equal(new Set(ws.map((w) => w.pid)).size, 300);
  assert.ok(ws.every((w) => typeof w.pid === 'number' && w.pid > 0 && alive(w.pid)), 'every worker a live process');
  assert.equal((m.stderr.match(/===> Launched \d+/g) ?? []).length, 300, 'each spawned once: none lost across the reload, none spawned twice');
  assert.equal((await m.stop()).code, 0);
});
