import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor, type Effect, type Event } from '@einhyrningsins/core';
import { UpgradeTracker } from '../src/upgrade-tracker.js';

/** One group on a fake clock: the core, its pending effects, and a tracker wired to it. */
function group() {
  const core = new Supervisor({ number: 1, ackMode: { kind: 'timer', ms: 10 }, upgradeRetries: 0, respawnDelayMs: 10 });
  let t = 0;
  let effects: Effect[] = [];
  const handle = {
    feed: (ev: Event) => {
      effects.push(...core.handle(ev, t));
      tracker.changed();
    },
    snapshot: () => core.snapshot(),
  };
  const tracker = new UpgradeTracker(handle);
  const spawnNext = (pid: number) => {
    const s = effects.find((e): e is Extract<Effect, { type: 'spawn' }> => e.type === 'spawn');
    assert.ok(s, 'a spawn is pending');
    effects = [];
    handle.feed({ type: 'spawned', id: s.id, pid });
    return s.id;
  };
  const ack = (id: number) => {
    t += 10;
    handle.feed({ type: 'timer', key: `ack:${id}` });
  };
  handle.feed({ type: 'start' });
  ack(spawnNext(100));
  return { handle, tracker, spawnNext, ack, core };
}

test('UpgradeTracker: resolves ok once the new generation is up', async () => {
  const g = group();
  const p = g.tracker.request();
  let settled = false;
  void p.then(() => (settled = true));
  await Promise.resolve();
  assert.equal(settled, false);
  g.ack(g.spawnNext(200));
  const o = await p;
  assert.equal(o.ok, true);
  assert.match(o.message, /Upgraded successfully to generation 1/);
});

test('UpgradeTracker: resolves failed when the new worker crashes', async () => {
  const g = group();
  const p = g.tracker.request();
  g.spawnNext(200);
  g.handle.feed({ type: 'exited', pid: 200, code: 1, signal: null });
  const o = await p;
  assert.equal(o.ok, false);
  assert.match(o.message, /failed/);
});

test('UpgradeTracker: refused while the master stops', async () => {
  const g = group();
  g.handle.feed({ type: 'shutdown', signal: 'SIGUSR2' });
  const o = await g.tracker.request();
  assert.deepEqual(o, { ok: false, message: 'the master is shutting down' });
});
