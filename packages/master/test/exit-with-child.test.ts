import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor, type Effect } from '@einhyrningsins/core';
import { shellStatus, unaskedExit } from '../src/exit-with-child.js';

/** A core with one worker up (pid 100) on a fake clock; returns it and the time. */
function oneUp(): { core: Supervisor; t: number } {
  const core = new Supervisor({ number: 1, ackMode: { kind: 'timer', ms: 10 } });
  let t = 0;
  const spawn = core.handle({ type: 'start' }, t).find((e): e is Extract<Effect, { type: 'spawn' }> => e.type === 'spawn');
  core.handle({ type: 'spawned', id: spawn!.id, pid: 100 }, t);
  t += 10;
  core.handle({ type: 'timer', key: `ack:${spawn!.id}` }, t);
  assert.equal(core.snapshot().workers[0]!.state, 'up');
  return { core, t };
}

test('shellStatus: the exit code, or 128 + the signal number', () => {
  assert.equal(shellStatus(3, null), 3);
  assert.equal(shellStatus(0, null), 0);
  assert.equal(shellStatus(null, 'SIGKILL'), 137);
  assert.equal(shellStatus(null, 'SIGTERM'), 143);
  assert.equal(shellStatus(null, 'SIGBOGUS'), 1);
});

test('unaskedExit: a serving worker that exits by itself', () => {
  const { core } = oneUp();
  assert.equal(unaskedExit(core.snapshot(), 100), true);
  assert.equal(unaskedExit(core.snapshot(), 999), false, 'not a worker');
});

test('unaskedExit: not after a stop, nor for the old worker an upgrade retires', () => {
  const a = oneUp();
  a.core.handle({ type: 'shutdown', signal: 'SIGUSR2' }, a.t);
  assert.equal(unaskedExit(a.core.snapshot(), 100), false);

  const b = oneUp();
  const eff = b.core.handle({ type: 'upgrade', mode: 'smooth' }, b.t);
  const spawn = eff.find((e): e is Extract<Effect, { type: 'spawn' }> => e.type === 'spawn')!;
  b.core.handle({ type: 'spawned', id: spawn.id, pid: 200 }, b.t);
  // The upgrade's new worker crashing is the upgrade's failure, not the master's exit.
  assert.equal(unaskedExit(b.core.snapshot(), 200), false);
  b.core.handle({ type: 'timer', key: `ack:${spawn.id}` }, b.t + 10);
  // The old one is being retired now.
  assert.equal(b.core.snapshot().workers.find((w) => w.pid === 100)!.state, 'stopping');
  assert.equal(unaskedExit(b.core.snapshot(), 100), false);
  // The new one, once the upgrade is done, is the serving worker.
  assert.equal(unaskedExit(b.core.snapshot(), 200), true);
});

test('unaskedExit: a scale-down is asked for', () => {
  const { core, t } = oneUp();
  core.handle({ type: 'dec' }, t);
  assert.equal(unaskedExit(core.snapshot(), 100), false);
});
