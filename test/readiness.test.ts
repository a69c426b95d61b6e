/**
 * Readiness for orchestrators and deploy scripts: `einhyrningsinsctl wait-ready`
 * and `upgrade --wait-exit`, against real masters.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, alive, cleanupAll, fixture, startMaster, tempDir } from './harness.js';

const CTL = join(ROOT, 'bin', 'einhyrningsinsctl');

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

function ctlRun(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CTL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

test('wait-ready waits for a master that is not there yet, then for every wanted worker', async () => {
  const dir = tempDir();
  const sock = join(dir, 'ctl.sock');
  const waiting = ctlRun(['-d', sock, 'wait-ready', '--timeout', '30']);
  await new Promise((r) => setTimeout(r, 300));
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0', '-m', 'manual', '--', process.execPath, fixture('node-http-child.mjs')], {
    env: { FIXTURE_ACK: '1' },
    dir,
  });
  const r = await waiting;
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'ready: 2/2 workers up, generation 0\n');
  const ws = await m.workers();
  assert.ok(ws.length === 2 && ws.every((w) => w.state === 'up'), 'it returned only once both were up');
  await m.stop();
});

test('wait-ready times out with exit 1 and says how far it got; bad usage is exit 2', async () => {
  const m = startMaster(['-n', '1', '-m', 'manual', '--', 'sleep', '1000']); // never ACKs
  await m.waitLog(/Launched/);
  const r = await ctlRun(['-d', m.sockPath, 'wait-ready', '--timeout', '0.5']);
  assert.equal(r.code, 1);
  assert.equal(r.out, 'not ready after 0.5 s: 0/1 workers up, generation 0\n');
  const bad = await ctlRun(['-d', m.sockPath, 'wait-ready', '--timeout', 'soon']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /usage: wait-ready \[--timeout SECONDS\]/);
  await m.stop();
});

test('upgrade --wait-exit returns only when the old workers are gone', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0', '-m', 'manual', '--', process.execPath, fixture('node-http-child.mjs')], {
    env: { FIXTURE_ACK: '1' },
  });
  const old = await m.ready(2);
  const r = await ctlRun(['-d', m.sockPath, 'upgrade', '--wait-exit']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Upgrade done\nOld workers gone \(generation 1\)\n$/);
  for (const w of old) assert.equal(alive(w.pid), false, `old worker ${w.pid} is gone`);
  await m.stop();
});
