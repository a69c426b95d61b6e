/**
 * The multi-group engine on a fake clock: the dyno driver's scenarios
 * (test/dyno*.test.ts) replayed on fake processes, and the master's one unnamed
 * group checked reply for reply against the single-group engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from '../src/fleet.js';
import { Supervisor } from '../src/supervisor.js';
import { DYNO, FleetSim, spec } from './fleet-sim.js';
import { Sim } from './sim.js';

const slots = (sim: FleetSim, g: string) => sim.alive(g).map((p) => p.slot).sort();

function app(sim: FleetSim, web = 2, worker = 1, launch = 'v1'): void {
  sim.feed({ type: 'apply', specs: [spec('web', web, launch), spec('worker', worker, launch)] });
}

test('fleet: a new app starts every group at once, each with its own named slots and timers', () => {
  const sim = new FleetSim();
  app(sim);
  assert.deepEqual(slots(sim, 'web'), [0, 1]);
  assert.deepEqual(slots(sim, 'worker'), [0]);
  assert.deepEqual(sim.fleet.names(), ['web', 'worker']);
  sim.advance(999);
  assert.equal(sim.up('web') + sim.up('worker'), 0);
  sim.advance(1);
  assert.equal(sim.up('web'), 2);
  assert.equal(sim.up('worker'), 1);
  // Timers are per group: the same core key in two groups are two timers.
  assert.equal(sim.timers.size, 0);
});

test('fleet: a release that changes the launch rolls every group, never below its quantity, keeping the names', () => {
  const sim = new FleetSim();
  app(sim, 3, 2);
  sim.advance(1000);
  const before = sim.alive().map((p) => p.pid);
  sim.feed({ type: 'apply', specs: [spec('web', 3, 'v2'), spec('worker', 2, 'v2')] });
  for (let t = 0; t < 3000; t += 50) {
    sim.advance(50);
    for (const g of ['web', 'worker']) {
      const serving = sim.fleet.group(g)!.snapshot.workers.filter((w) => w.state === 'up').length;
      assert.ok(serving >= (g === 'web' ? 3 : 2), `${g} dipped to ${serving} at ${sim.now}`);
    }
  }
  assert.ok(before.every((pid) => !sim.procs.get(pid)!.alive), 'every old process is gone');
  assert.deepEqual(slots(sim, 'web'), [0, 1, 2]);
  assert.deepEqual(slots(sim, 'worker'), [0, 1]);
  assert.ok(sim.alive().every((p) => p.launch === 'v2'));
  assert.equal(sim.fleet.pendingReplies, 0);
});

test('fleet: a release that changes only a quantity scales that group and rolls nothing', () => {
  const sim = new FleetSim();
  app(sim, 2, 1);
  sim.advance(1000);
  const web = sim.alive('web').map((p) => p.pid);
  sim.feed({ type: 'apply', specs: [spec('web', 2), spec('worker', 3)] });
  sim.advance(1000);
  assert.deepEqual(sim.alive('web').map((p) => p.pid), web, 'web untouched');
  assert.deepEqual(slots(sim, 'worker'), [0, 1, 2]);
  sim.feed({ type: 'apply', specs: [spec('web', 1), spec('worker', 3)] });
  sim.advance(10);
  assert.deepEqual(slots(sim, 'web'), [0], 'scaled down from the top (web.2 goes)');
});

test('fleet: a group the release drops drains and is removed; a new one of that name may start beside it', () => {
  const sim = new FleetSim();
  sim.drainExitMs = 5000;
  app(sim, 1, 2);
  sim.advance(1000);
  const old = sim.alive('worker').map((p) => p.pid);
  sim.feed({ type: 'apply', specs: [spec('web', 1)] });
  assert.deepEqual(sim.fleet.names(), ['web']);
  assert.ok(old.every((pid) => sim.procs.get(pid)!.signals.includes('SIGTERM')));
  assert.ok(sim.logs.includes('[worker] no longer wanted: draining its processes'));
  // Back while the old ones drain: a new group, its own slots from 0, its own pids.
  sim.feed({ type: 'apply', specs: [spec('web', 1), spec('worker', 1, 'v3')] });
  const views = sim.fleet.groups().filter((g) => g.name === 'worker');
  assert.deepEqual(views.map((g) => g.retiring), [false, true]);
  const fresh = sim.alive('worker').filter((p) => !old.includes(p.pid));
  assert.equal(fresh.length, 1);
  assert.equal(fresh[0]!.slot, 0);
  assert.notEqual(fresh[0]!.gid, sim.procs.get(old[0]!)!.gid);
  sim.advance(5000);
  assert.ok(sim.logs.includes('[worker] every process has exited; process type removed'));
  assert.deepEqual(sim.fleet.groups().map((g) => [g.name, g.retiring]), [['web', false], ['worker', false]]);
  assert.equal(sim.alive('worker').length, 1, 'the new worker was not touched by the old group going');
  assert.equal(sim.exitCode, null);
});

test('fleet: upgrade TYPE... streams [type] progress and answers once, when every group is done', () => {
  const sim = new FleetSim();
  app(sim);
  sim.advance(1000);
  sim.feed({ type: 'apply', specs: [spec('web', 2, 'v2'), spec('worker', 1, 'v2')], roll: { groups: ['web', 'worker'], mode: 'smooth', replyTo: 7 } });
  const progress = sim.repliesTo(7);
  assert.ok(progress.every((r) => r.wait));
  assert.ok(progress.some((r) => r.message === '[web] Upgrading smoothly, as commanded'), JSON.stringify(progress));
  assert.ok(progress.some((r) => r.message === '[worker] Upgrading smoothly, as commanded'));
  sim.advance(5000);
  const final = sim.repliesTo(7).filter((r) => !r.wait);
  assert.deepEqual(final, [{ to: 7, message: 'Upgrade done', wait: false, ok: true }]);
  assert.equal(sim.fleet.pendingReplies, 0);
  // Nothing to roll: answered at once.
  sim.feed({ type: 'apply', specs: [spec('web', 2, 'v2'), spec('worker', 1, 'v2')], roll: { groups: [], mode: 'smooth', replyTo: 8 } });
  assert.deepEqual(sim.repliesTo(8), [{ to: 8, message: 'Upgrade done', wait: false, ok: true }]);
});

test('fleet: upgrade rolls a named group even when nothing changed; the others are untouched', () => {
  const sim = new FleetSim();
  app(sim);
  sim.advance(1000);
  const worker = sim.alive('worker').map((p) => p.pid);
  sim.feed({ type: 'apply', specs: [spec('web', 2), spec('worker', 1)], roll: { groups: ['web'], mode: 'fleet', replyTo: 1 } });
  sim.advance(3000);
  assert.deepEqual(sim.alive('worker').map((p) => p.pid), worker);
  assert.ok(sim.alive('web').every((p) => p.generation === 1));
  assert.equal(sim.repliesTo(1).at(-1)!.message, 'Upgrade done');
});

test('fleet: a release whose new processes crash fails the upgrade with the reason; the old ones keep serving', () => {
  const sim = new FleetSim();
  app(sim);
  sim.advance(1000);
  const old = sim.alive('web').map((p) => p.pid);
  sim.crashLaunch = { launch: 'bad', afterMs: 100 };
  sim.feed({ type: 'apply', specs: [spec('web', 2, 'bad'), spec('worker', 1)], roll: { groups: ['web'], mode: 'smooth', replyTo: 3 } });
  sim.advance(120_000);
  const final = sim.repliesTo(3).filter((r) => !r.wait);
  assert.equal(final.length, 1);
  assert.equal(final[0]!.ok, false);
  assert.match(final[0]!.message, /^Upgrade failed: \[web\] Upgrade to generation 1 failed: a new worker \d+ \(index \d\) exited before it was acked/);
  assert.ok(old.every((pid) => sim.procs.get(pid)!.alive), 'the old web processes still serve');
});

test('fleet: requests fan out by name with one final reply; an unknown name is an error naming the running ones', () => {
  const sim = new FleetSim();
  app(sim);
  sim.advance(1000);
  const counts = new Map([
    ['web', 3],
    ['worker', 0],
  ]);
  sim.feed({ type: 'request', targets: ['web', 'worker'], request: (g) => ({ type: 'setWorkers', count: counts.get(g)! }), replyTo: 1 });
  assert.deepEqual(sim.repliesTo(1), [
    {
      to: 1,
      message: '[web] Altering worker count, 2 -> 3. Will spin up additional workers.\n[worker] Altering worker count, 1 -> 0. Will gracefully terminate workers.',
      wait: false,
      ok: true,
    },
  ]);
  sim.feed({ type: 'request', targets: ['web', 'nope'], request: { type: 'inc' }, replyTo: 2 });
  assert.deepEqual(sim.repliesTo(2), [{ to: 2, message: "Unknown process type 'nope' (running: web, worker)", wait: false, ok: false }]);
  assert.equal(sim.fleet.group('web')!.snapshot.config.number, 3, 'nothing was done for a request naming an unknown group');
  sim.feed({ type: 'request', targets: 'every', request: { type: 'signal', signals: ['SIGUSR1'] }, replyTo: 4 });
  assert.match(sim.repliesTo(4)[0]!.message, /^\[web\] Sent SIGUSR1 to 3 workers\n\[worker\] Sent SIGUSR1 to \d workers?$/);
  assert.ok(sim.alive('web').every((p) => p.signals.includes('SIGUSR1')));
  // Nobody to ask.
  const empty = new FleetSim();
  empty.feed({ type: 'request', targets: 'every', request: { type: 'inc' }, replyTo: 5, none: { message: 'No processes are running.', ok: true } });
  assert.deepEqual(empty.repliesTo(5), [{ to: 5, message: 'No processes are running.', wait: false, ok: true }]);
});

test('fleet: shutdown drains the wanted groups, a second one SIGKILLs everything; exit 0 once every group is empty', () => {
  const sim = new FleetSim();
  sim.drainExitMs = null; // they ignore TERM
  app(sim, 2, 1);
  sim.advance(1000);
  sim.feed({ type: 'apply', specs: [spec('web', 2)] }); // worker drains
  const worker = sim.alive('worker')[0]!;
  sim.feed({ type: 'shutdown', signal: 'SIGTERM', replyTo: 1 });
  assert.deepEqual(worker.signals, ['SIGTERM'], 'the draining group was not asked again');
  assert.deepEqual(sim.repliesTo(1).map((r) => r.message), ['[web] Einhorn is going down! Sent SIGTERM to 2 workers.']);
  assert.equal(sim.exitCode, null);
  sim.feed({ type: 'shutdown', signal: 'SIGTERM', replyTo: 2 });
  assert.deepEqual(worker.signals, ['SIGTERM', 'SIGKILL']);
  assert.equal(sim.alive().length, 0);
  assert.equal(sim.exitCode, 0);
  assert.match(sim.repliesTo(2)[0]!.message, /^\[web\] Already going down; sent SIGKILL to 2 workers\n\[worker\] Already going down; sent SIGKILL to 1 workers$/);
  // No group at all: answered and gone at once.
  const none = new FleetSim();
  none.feed({ type: 'shutdown', signal: 'SIGTERM', replyTo: 3 });
  assert.deepEqual(none.repliesTo(3), [{ to: 3, message: 'No processes are running; exiting.', wait: false, ok: true }]);
  assert.equal(none.exitCode, 0);
  // Shutting down: a release is not applied.
  sim.feed({ type: 'apply', specs: [spec('web', 1)], roll: { groups: ['web'], mode: 'smooth', replyTo: 4 } });
  assert.equal(sim.repliesTo(4)[0]!.ok, false);
});

test('fleet: one-shot exits with the highest status once every group is empty', () => {
  const sim = new FleetSim({ oneshot: true, noun: 'process type', signalNumber: (s) => (s === 'SIGTERM' ? 15 : 9) });
  sim.feed({ type: 'apply', specs: [spec('a', 2, 'v1', { ...DYNO, respawn: false }), spec('b', 1, 'v1', { ...DYNO, respawn: false })] });
  sim.advance(1000);
  const [a1, a2] = sim.alive('a');
  const [b1] = sim.alive('b');
  sim.exit(a1!.pid, 2, null);
  assert.equal(sim.alive().length, 2, 'not replaced');
  sim.exit(b1!.pid, 0, null);
  assert.equal(sim.exitCode, null);
  sim.exit(a2!.pid, null, 'SIGTERM');
  assert.equal(sim.exitCode, 143);
  assert.ok(sim.logs.includes('--oneshot: every process has ended; exiting with status 143'));
});

test('fleet: kernel events go to their group; an unknown pid is a warning; a gone group\'s timer is ignored', () => {
  const sim = new FleetSim();
  sim.feed({ type: 'apply', specs: [spec('web', 1, 'v1', { ...DYNO, ackMode: { kind: 'manual', deadlineMs: 5000 } }), spec('worker', 1)] });
  const web = sim.alive('web')[0]!;
  sim.feed({ type: 'ack', pid: web.pid });
  assert.equal(sim.up('web'), 1);
  assert.equal(sim.up('worker'), 0);
  sim.feed({ type: 'ack', pid: 4242 });
  assert.ok(sim.logs.includes('No process with pid 4242; ignoring its ACK'));
  const before = sim.effects.length;
  sim.feed({ type: 'timer', gid: 99, key: 'ack:1' });
  assert.equal(sim.effects.length, before);
});

test('fleet: the one unnamed group answers exactly as the single-group engine does', () => {
  const cfg = { number: 2, ackMode: { kind: 'timer', ms: 1000 } as const, signalTimeoutMs: 3000 };
  const one = new Sim(cfg);
  const many = new FleetSim({});
  many.feed({ type: 'apply', specs: [{ name: '', quantity: 2, launchKey: 'x', launch: 'x', config: cfg }] });
  one.start();
  const script: Array<[number, (to: number) => void, (to: number) => void]> = [
    [1, (to) => one.feed({ type: 'upgrade', mode: 'smooth', replyTo: to }), (to) => many.feed({ type: 'request', targets: 'active', request: { type: 'upgrade', mode: 'smooth' }, replyTo: to })],
    [2, (to) => one.feed({ type: 'inc', replyTo: to }), (to) => many.feed({ type: 'request', targets: 'active', request: { type: 'inc' }, replyTo: to })],
    [3, (to) => one.feed({ type: 'setWorkers', count: 20_000, replyTo: to }), (to) => many.feed({ type: 'request', targets: 'active', request: { type: 'setWorkers', count: 20_000 }, replyTo: to })],
    [4, (to) => one.feed({ type: 'signal', signals: ['SIGHUP'], replyTo: to }), (to) => many.feed({ type: 'request', targets: 'active', request: { type: 'signal', signals: ['SIGHUP'] }, replyTo: to })],
    [5, (to) => one.feed({ type: 'shutdown', signal: 'SIGUSR2', replyTo: to }), (to) => many.feed({ type: 'shutdown', signal: 'SIGUSR2', replyTo: to })],
  ];
  for (const [to, a, b] of script) {
    one.advance(1500);
    many.advance(1500);
    a(to);
    b(to);
  }
  one.advance(5000);
  many.advance(5000);
  const strip = (r: { to: number; message: string; wait: boolean; ok: boolean }) => ({ to: r.to, message: r.message.replace(/\d{4}/g, 'PID'), wait: r.wait, ok: r.ok });
  assert.deepEqual(many.replies.map(strip), one.replies.map(strip));
  assert.ok(one.replies.length >= 8);
  assert.equal(many.exitCode, 0);
  assert.equal(one.exitCode, 0);
  // Its log lines carry no group prefix, and an unknown pid's ACK is the engine's own warning.
  const fleet = new FleetSim({});
  fleet.feed({ type: 'apply', specs: [{ name: '', quantity: 1, launchKey: 'x', launch: 'x', config: cfg }] });
  fleet.feed({ type: 'ack', pid: 4242 });
  assert.ok(fleet.logs.includes('Could not find state for PID 4242; ignoring ACK.'), fleet.logs.join('\n'));
});

test('fleet: serialize and restore carry every group (and a draining one) over a reload, mid-roll', () => {
  const sim = new FleetSim();
  sim.drainExitMs = 2000;
  app(sim, 2, 1);
  sim.advance(1000);
  sim.feed({ type: 'apply', specs: [spec('web', 2, 'v2')] }); // web rolls, worker drains
  sim.advance(500);
  const data = JSON.parse(JSON.stringify(sim.fleet.serialize(sim.now)));
  const before = sim.fleet.groups().map((g) => [g.name, g.retiring, g.snapshot.workers.map((w) => [w.pid, w.state])]);
  const { fleet, effects } = Fleet.restore<string>(data, 10_000, 50, (name) => spec(name, 0, 'given-again'), { noun: 'process type' });
  assert.deepEqual(fleet.groups().map((g) => [g.name, g.retiring, g.snapshot.workers.map((w) => [w.pid, w.state])]), before);
  assert.ok(effects.some((e) => e.type === 'group' && e.effect.type === 'setTimer'), 'timers re-armed');
  const pid = sim.alive('worker')[0]!.pid;
  assert.equal(fleet.gidOf(pid), sim.fleet.gidOf(pid));
  assert.equal(fleet.group('web')!.spec.launchKey, 'v2');
  assert.equal(fleet.group('web')!.spec.launch, 'given-again');
});

test("fleet: restore from a previous version's single-group snapshot gives the one unnamed group, workers kept", () => {
  const core = new Supervisor({ number: 2, ackMode: { kind: 'timer', ms: 1000 } });
  core.handle({ type: 'start' }, 0);
  core.handle({ type: 'spawned', id: 1, pid: 501 }, 1);
  core.handle({ type: 'spawned', id: 2, pid: 502 }, 1);
  core.handle({ type: 'timer', key: 'ack:1' }, 1001);
  const data = JSON.parse(JSON.stringify(core.serialize(1500)));
  const { fleet } = Fleet.restore<string>(data, 0, 0, (name) => spec(name, 2, 'argv'));
  const [g] = fleet.groups();
  assert.equal(fleet.groups().length, 1);
  assert.equal(g!.name, '');
  assert.deepEqual(g!.snapshot.workers.map((w) => [w.pid, w.state]), [
    [501, 'up'],
    [502, 'starting'],
  ]);
  assert.equal(fleet.gidOf(502), g!.gid);
  // It goes on as before: an exit is replaced in that group.
  const out = fleet.handle({ type: 'exited', pid: 501, code: 0, signal: null }, 20_000);
  assert.ok(out.some((e) => e.type === 'group' && e.effect.type === 'spawn'));
});

test("fleet: a shutdown with `own` asks each group with its own drain signal (a config's per-program stopsignal); the second still SIGKILLs", () => {
  const sim = new FleetSim();
  sim.drainExitMs = null; // they ignore the stop signals
  sim.feed({ type: 'apply', specs: [spec('web', 1, 'v1', { ...DYNO, drainSignal: 'SIGQUIT' }), spec('worker', 1, 'v1', { ...DYNO, drainSignal: 'SIGINT' })] });
  sim.advance(1000);
  const [web, worker] = [sim.alive('web')[0]!, sim.alive('worker')[0]!];
  sim.feed({ type: 'shutdown', signal: 'SIGTERM', own: true });
  assert.deepEqual(web.signals, ['SIGQUIT']);
  assert.deepEqual(worker.signals, ['SIGINT']);
  sim.feed({ type: 'shutdown', signal: 'SIGTERM', own: true });
  assert.deepEqual(web.signals, ['SIGQUIT', 'SIGKILL']);
  assert.equal(sim.exitCode, 0);
  // Without `own`, the one signal given goes to every group (as before).
  const plain = new FleetSim();
  plain.drainExitMs = null;
  plain.feed({ type: 'apply', specs: [spec('web', 1, 'v1', { ...DYNO, drainSignal: 'SIGQUIT' })] });
  plain.advance(1000);
  const w = plain.alive('web')[0]!;
  plain.feed({ type: 'shutdown', signal: 'SIGTERM' });
  assert.deepEqual(w.signals, ['SIGTERM']);
});
