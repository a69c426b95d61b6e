/**
 * supervisord's ways on the group engine (fake clock): a restart that stops the old
 * workers before the new ones start (stopFirst), and one process of several started,
 * stopped and signalled on its own (wantedSlots, setSlots, signal to slots).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim } from './sim.js';

const manual = { kind: 'manual', deadlineMs: 5000 } as const;

function running(n: number, extra: Partial<ConstructorParameters<typeof Sim>[0]> = {}): Sim {
  const sim = new Sim({ number: n, ackMode: manual, slots: 'named', ...extra });
  sim.start();
  for (const p of sim.alive()) sim.ack(p.pid);
  assert.equal(sim.serving(), n);
  return sim;
}

test('stopFirst: an upgrade stops every old worker and starts the new ones only once the old are gone', () => {
  const sim = running(2, { stopFirst: true, drainSignal: 'SIGTERM' });
  sim.drainExitMs = 500;
  const old = sim.alive().map((p) => p.pid);
  // Never an old and a new worker alive at once (a lock or a port held by one process).
  sim.check = () => {
    const gens = new Set(sim.alive().map((p) => p.generation));
    assert.ok(gens.size <= 1, `old and new alive together at ${sim.now}`);
  };
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 7 });
  assert.deepEqual(old.map((pid) => sim.procs.get(pid)!.signals), [['SIGTERM'], ['SIGTERM']]);
  assert.equal(sim.alive((p) => p.generation === 1).length, 0, 'nothing new while the old run');
  sim.advance(499);
  assert.equal(sim.spawnCount, 2);
  sim.advance(1);
  const fresh = sim.alive((p) => p.generation === 1);
  assert.deepEqual(fresh.map((p) => p.slot).sort(), [0, 1], 'the new ones take the old names');
  for (const p of fresh) sim.ack(p.pid);
  assert.equal(sim.repliesTo(7)[0], 'Restarting, the old workers stopped first, as commanded');
  assert.equal(sim.repliesTo(7).at(-1), 'Upgrade done');
  assert.equal(sim.serving(), 2);
});

test('without stopFirst the same upgrade starts the new workers before the old ones stop (rolling)', () => {
  const sim = running(2, { drainSignal: 'SIGTERM' });
  const old = sim.alive().map((p) => p.pid);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 7 });
  assert.equal(sim.alive((p) => p.generation === 1).length, 2);
  assert.deepEqual(old.map((pid) => sim.procs.get(pid)!.signals), [[], []]);
});

test('stopFirst: an old worker that ignores its stop signal holds the new ones back until SIGKILL', () => {
  const sim = running(1, { stopFirst: true, signalTimeoutMs: 3000 });
  sim.drainExitMs = null;
  sim.feed({ type: 'upgrade', mode: 'smooth' });
  sim.advance(2999);
  assert.equal(sim.spawnCount, 1);
  sim.advance(1); // SIGKILL
  assert.equal(sim.alive((p) => p.generation === 0).length, 0);
  assert.equal(sim.alive((p) => p.generation === 1).length, 1);
});

test('setSlots: one process of several stopped and started on its own, by its slot', () => {
  const sim = running(3, { drainSignal: 'SIGTERM' });
  const bySlot = () => Object.fromEntries(sim.alive().map((p) => [p.slot, p.pid]));
  const before = bySlot();
  sim.feed({ type: 'setSlots', slots: [0, 2], replyTo: 1 });
  assert.equal(sim.repliesTo(1).at(-1), 'Wanted slots: 0, 2');
  assert.deepEqual(sim.procs.get(before[1]!)!.signals, ['SIGTERM'], 'slot 1 stopped');
  assert.deepEqual([before[0], before[2]].map((pid) => sim.procs.get(pid!)!.signals), [[], []], 'the others untouched');
  sim.advance(1);
  assert.deepEqual(Object.keys(bySlot()), ['0', '2']);
  // A crash of slot 2 is replaced in slot 2, not in the stopped slot 1.
  sim.exit(before[2]!, 1, null);
  sim.advance(20_000);
  assert.deepEqual(Object.keys(bySlot()), ['0', '2']);
  assert.equal(sim.alive().length, 2);
  // Started again: slot 1 only; the others keep their pids.
  const kept = bySlot();
  sim.feed({ type: 'setSlots', slots: [0, 1, 2] });
  assert.deepEqual(Object.keys(bySlot()), ['0', '1', '2']);
  assert.equal(bySlot()[0], kept[0]);
  assert.equal(bySlot()[2], kept[2]);
  // setWorkers drops the per-slot wish: slots 0..n-1 again.
  sim.feed({ type: 'setWorkers', count: 1 });
  assert.equal(sim.sup.snapshot().config.wantedSlots, undefined);
  sim.advance(1);
  assert.deepEqual(Object.keys(bySlot()), ['0']);
  // Bad slots: an error reply, nothing changes.
  sim.feed({ type: 'setSlots', slots: [-1], replyTo: 2 });
  assert.match(sim.repliesTo(2)[0]!, /^Invalid slots: -1/);
  assert.equal(sim.alive().length, 1);
});

test('setSlots with autorestart=false: the slot that exited on its own is no longer wanted, the others stay', () => {
  const sim = running(3, { autorestart: 'false', stableAfterMs: 1000 });
  sim.feed({ type: 'setSlots', slots: [0, 1, 2] });
  sim.advance(2000);
  const one = sim.alive((p) => p.slot === 1)[0]!;
  sim.exit(one.pid, 0, null);
  sim.advance(10_000);
  assert.deepEqual(sim.sup.snapshot().config.wantedSlots, [0, 2]);
  assert.deepEqual(sim.alive().map((p) => p.slot).sort(), [0, 2]);
});

test('signal to slots: only those workers get it', () => {
  const sim = running(3);
  sim.feed({ type: 'signal', signals: ['SIGHUP'], slots: [1], replyTo: 3 });
  assert.deepEqual(sim.alive().map((p) => [p.slot, p.signals]).sort(), [[0, []], [1, ['SIGHUP']], [2, []]]);
  assert.equal(sim.repliesTo(3)[0], 'Sent SIGHUP to 1 worker');
});

test('fleet: a release that changes a group\'s launch also gives its engine the new settings (stop signal, restart order)', async () => {
  const { FleetSim, spec } = await import('./fleet-sim.js');
  const sim = new FleetSim();
  const cfg = { slots: 'named' as const, ackMode: { kind: 'timer' as const, ms: 100 }, drainSignal: 'SIGTERM', stopFirst: false };
  sim.feed({ type: 'apply', specs: [spec('p', 1, 'v1', cfg)] });
  sim.advance(200);
  sim.feed({ type: 'apply', specs: [spec('p', 1, 'v2', { ...cfg, drainSignal: 'SIGINT', stopFirst: true })] });
  sim.advance(1000);
  const snap = sim.fleet.group('p')!.snapshot;
  assert.equal(snap.config.drainSignal, 'SIGINT');
  assert.equal(snap.config.stopFirst, true);
  assert.equal(snap.config.number, 1);
  sim.feed({ type: 'shutdown', signal: 'SIGTERM', own: true });
  assert.deepEqual(sim.alive('p').map((p) => [p.launch, p.signals.at(-1)]), [['v2', 'SIGINT']], 'stopped with its new stop signal');
});
