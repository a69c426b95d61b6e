import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../src/supervisor.js';
import type { Effect } from '../src/types.js';

const manual = { kind: 'manual', deadlineMs: 5000 } as const;

/** Carry out spawn effects with made-up pids (what the shell would do). */
function run(core: Supervisor, now: number, ev: Parameters<Supervisor['handle']>[0], pids: number[]): Effect[] {
  const out = core.handle(ev, now);
  for (const e of out) {
    if (e.type === 'spawn') out.push(...core.handle({ type: 'spawned', id: e.id, pid: pids.shift() as number }, now));
  }
  return out;
}

/** Through JSON, as across the exec. */
function carry(core: Supervisor, oldNow: number, newNow: number) {
  return Supervisor.restore(JSON.parse(JSON.stringify(core.serialize(oldNow))), newNow);
}

test('serialize/restore: the same workers, times shifted to the new clock, remaining deadlines re-armed', () => {
  const core = new Supervisor({ number: 2, ackMode: manual, retries: Infinity, maxUnacked: Infinity });
  run(core, 0, { type: 'start' }, [11, 12]);
  core.handle({ type: 'ack', pid: 11 }, 100);
  core.handle({ type: 'ping', pid: 11, requestId: 'id-1' }, 900);
  const before = core.snapshot();
  // The old clock says 1000; the new image's clock starts near 0 (here 40).
  const { core: next, effects } = carry(core, 1000, 40);
  const after = next.snapshot();
  const shift = (t: number | null) => (t === null ? null : t - 960);
  assert.deepEqual(
    after.workers,
    before.workers.map((w) => ({ ...w, spawnedAt: shift(w.spawnedAt), ackedAt: shift(w.ackedAt), signaledAt: shift(w.signaledAt), pingedAt: shift(w.pingedAt) })),
  );
  assert.equal(after.config.retries, Infinity);
  assert.equal(after.config.maxUnacked, Infinity);
  assert.deepEqual(after.generation, before.generation);
  // Worker 12 was spawned at 0 with a 5 s deadline: 4 s are left.
  const w12 = after.workers.find((w) => w.pid === 12)!;
  assert.deepEqual(effects, [{ type: 'setTimer', key: `deadline:${w12.id}`, ms: 4000 }]);
  // The restored engine goes on: 12 ACKs, both are up, nothing is spawned.
  const out = next.handle({ type: 'ack', pid: 12 }, 50);
  assert.ok(out.some((e) => e.type === 'log' && /Up to 2 \/ 2 manual ACKs/.test(e.message)), JSON.stringify(out));
  assert.equal(out.filter((e) => e.type === 'spawn').length, 0);
  // Ids stay unique: a new worker after a death gets a fresh id.
  const again = next.handle({ type: 'exited', pid: 11, code: 1, signal: null }, 20_000);
  const spawn = again.find((e): e is Extract<Effect, { type: 'spawn' }> => e.type === 'spawn');
  assert.ok(spawn && !after.workers.some((w) => w.id === spawn.id));
  assert.equal(spawn.slot, after.workers.find((w) => w.pid === 11)!.slot, 'the replacement takes the dead worker\'s slot');
});

test('serialize/restore: a draining worker keeps what is left of its SIGKILL escalation; a worker that died during the exec is replaced', () => {
  const core = new Supervisor({ number: 1, ackMode: { kind: 'timer', ms: 1000 }, signalTimeoutMs: 10_000 });
  run(core, 0, { type: 'start' }, [21]);
  core.handle({ type: 'timer', key: 'ack:1' }, 1000);
  run(core, 2000, { type: 'upgrade', mode: 'smooth' }, [22]);
  core.handle({ type: 'timer', key: 'ack:2' }, 3000); // 22 up, 21 asked to drain at 3000
  const snap = core.snapshot();
  assert.equal(snap.workers.find((w) => w.pid === 21)!.state, 'stopping');
  const { core: next, effects } = carry(core, 5000, 0); // 2 s of the 10 s have passed
  assert.deepEqual(effects, [{ type: 'setTimer', key: 'kill:1', ms: 8000 }]);
  const out = next.handle({ type: 'timer', key: 'kill:1' }, 8000);
  assert.deepEqual(out.filter((e) => e.type === 'kill'), [{ type: 'kill', pid: 21, signal: 'SIGKILL' }]);
  // The serving worker died while the master was exec'ing: reaped later, replaced at once (it was stable).
  const r = next.handle({ type: 'exited', pid: 22, code: 0, signal: null }, 20_000);
  assert.equal(r.filter((e) => e.type === 'spawn').length, 1);
});

test('restore refuses a state it does not know', () => {
  assert.throws(() => Supervisor.restore({ format: 2 } as never, 0), /unknown core state format 2/);
});

test('restore: the time the exec took is added to every age and taken off every timer', () => {
  const core = new Supervisor({ number: 1, ackMode: manual });
  run(core, 0, { type: 'start' }, [31]);
  const { core: next, effects } = Supervisor.restore(JSON.parse(JSON.stringify(core.serialize(1000))), 0, 250);
  assert.equal(next.snapshot().workers[0]!.spawnedAt, -1250);
  assert.deepEqual(effects, [{ type: 'setTimer', key: 'deadline:1', ms: 3750 }]);
});

test('the ack that completes an upgrade: the old workers are signalled before "Upgrade done" is replied', () => {
  const core = new Supervisor({ number: 1, ackMode: manual });
  run(core, 0, { type: 'start' }, [41]);
  core.handle({ type: 'ack', pid: 41 }, 10);
  run(core, 20, { type: 'upgrade', mode: 'smooth', replyTo: 7 }, [42]);
  const out = core.handle({ type: 'ack', pid: 42 }, 30);
  const kill = out.findIndex((e) => e.type === 'kill' && e.pid === 41);
  const done = out.findIndex((e) => e.type === 'reply' && e.message === 'Upgrade done' && !e.wait);
  assert.ok(kill >= 0 && done > kill, JSON.stringify(out));
});
