import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../src/supervisor.js';
import { Sim } from './sim.js';
import { backoffDelay } from '../src/backoff.js';

const manual = { kind: 'manual', deadlineMs: 5000 } as const;

test('backoff doubles from the base and stops at the cap', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 50].map((s) => backoffDelay(s, 1000, 30_000)),
    [0, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000],
  );
});

test('start spawns every worker at once, timer mode acks them after the timer', () => {
  const sim = new Sim({ number: 3, ackMode: { kind: 'timer', ms: 1000 } });
  sim.start();
  assert.equal(sim.alive().length, 3);
  assert.deepEqual(sim.alive().map((p) => p.slot).sort(), [0, 1, 2]);
  assert.equal(sim.serving(), 0);
  sim.advance(999);
  assert.equal(sim.serving(), 0);
  sim.advance(1);
  assert.equal(sim.serving(), 3);
});

test('timer mode: an early worker:ack makes the worker up at once', () => {
  const sim = new Sim({ number: 1, ackMode: { kind: 'timer', ms: 1000 } });
  sim.start();
  const [p] = sim.alive();
  sim.ack(p!.pid);
  assert.equal(sim.serving(), 1);
  assert.equal(sim.timers.has(`ack:${p!.id}`), false);
});

test('manual mode: up only after the ack; an unknown pid is ignored', () => {
  const sim = new Sim({ number: 2, ackMode: manual });
  sim.start();
  sim.advance(4000);
  assert.equal(sim.serving(), 0);
  sim.ack(424242);
  assert.equal(sim.serving(), 0);
  for (const p of sim.alive()) sim.ack(p.pid);
  assert.equal(sim.serving(), 2);
});

test('manual mode: a worker that misses its ack deadline is stopped and replaced after a backoff', () => {
  const sim = new Sim({ number: 1, ackMode: manual, respawnDelayMs: 1000 });
  sim.start();
  const [first] = sim.alive();
  sim.advance(5000);
  assert.deepEqual(first!.signals, ['SIGUSR2']);
  assert.equal(sim.sup.snapshot().streak, 1);
  sim.advance(1); // it exits (drainExitMs 0)
  assert.equal(first!.alive, false);
  assert.equal(sim.spawnCount, 1, 'no replacement before the backoff delay');
  sim.advance(999);
  assert.equal(sim.spawnCount, 2);
  const [second] = sim.alive();
  assert.equal(second!.slot, 0);
  sim.ack(second!.pid);
  assert.equal(sim.sup.snapshot().streak, 1, 'on probation until stable');
  sim.advance(10_000);
  assert.equal(sim.sup.snapshot().streak, 0);
});

test('a missed ack deadline explains how to ACK once, then one line per miss', () => {
  const sim = new Sim({ number: 1, ackMode: manual, respawnDelayMs: 100, backoffCapMs: 100 });
  sim.start();
  sim.advance(30_000); // several starts miss their deadline
  const logs = sim.effects.flatMap((e) => (e.type === 'log' ? [e.message] : []));
  const misses = logs.filter((m) => /did not ACK within 5s; stopping it$/.test(m));
  assert.ok(misses.length >= 3, logs.join('\n'));
  const help = logs.filter((m) => m.includes('EINHORN_SOCK_PATH'));
  assert.equal(help.length, 1);
  assert.match(help[0]!, /"command":"worker:ack","pid"/);
  assert.match(help[0]!, /einhyrningsins\/worker/);
  assert.match(help[0]!, /-m SECONDS/);
  // A reload carries it over: the new image does not explain again.
  assert.equal(Supervisor.restore(sim.sup.serialize(sim.now), 0).core.serialize(0).ackHelpShown, true);
});

test('a crashed healthy worker is replaced at once in the same slot', () => {
  const sim = new Sim({ number: 2, ackMode: { kind: 'timer', ms: 100 }, stableAfterMs: 10_000 });
  sim.start();
  sim.advance(20_000);
  const victim = sim.alive().find((p) => p.slot === 1)!;
  sim.exit(victim.pid, 1, null);
  assert.equal(sim.alive().length, 2);
  assert.equal(sim.alive().find((p) => p.pid !== victim.pid && p.slot === 1) !== undefined, true);
  assert.equal(sim.sup.snapshot().streak, 0);
});

test('crash loop: exponential backoff, one probe at a time, no fork storm', () => {
  const sim = new Sim({ number: 4, ackMode: { kind: 'timer', ms: 1000 }, respawnDelayMs: 1000, backoffCapMs: 30_000 });
  sim.start();
  assert.equal(sim.spawnCount, 4);
  // Every worker dies 10 ms after it starts.
  const crashAll = () => {
    for (const p of sim.alive()) sim.exit(p.pid, 1, null);
  };
  crashAll();
  assert.equal(sim.sup.snapshot().streak, 4);
  const spawnTimes: number[] = [];
  let last = sim.spawnCount;
  for (let t = 0; t < 120_000; t += 10) {
    sim.advance(10);
    if (sim.spawnCount !== last) {
      spawnTimes.push(sim.now);
      last = sim.spawnCount;
      assert.ok(sim.alive().length <= 1, 'only one probe at a time while failing');
      crashAll();
    }
  }
  const gaps = spawnTimes.slice(1).map((t, i) => t - spawnTimes[i]!);
  assert.ok(spawnTimes.length <= 10, `bounded spawns in 2 min: ${spawnTimes.length}`);
  assert.ok(gaps.every((g, i) => i === 0 || g >= gaps[i - 1]!), `gaps never shrink: ${gaps}`);
  assert.ok(gaps.at(-1)! <= 30_010 && gaps.at(-1)! >= 29_990, `capped at 30 s: ${gaps}`);
});

test('after failed starts, probes start one at a time as each acks; a stable one ends the streak', () => {
  const sim = new Sim({ number: 3, ackMode: manual, respawnDelayMs: 100, stableAfterMs: 5000 });
  sim.start();
  for (const p of sim.alive()) sim.exit(p.pid, 1, null);
  sim.advance(1000);
  assert.equal(sim.alive().length, 1);
  sim.ack(sim.alive()[0]!.pid);
  assert.equal(sim.alive().length, 1, 'the next probe waits the backoff delay after this ack');
  assert.equal(sim.sup.snapshot().streak, 3, 'an ack alone does not end the streak');
  sim.advance(400);
  assert.equal(sim.alive().length, 2);
  for (const p of sim.alive()) sim.ack(p.pid);
  sim.advance(400);
  assert.equal(sim.alive().length, 3);
  for (const p of sim.alive()) sim.ack(p.pid);
  sim.advance(5000);
  assert.equal(sim.sup.snapshot().streak, 0);
});

test('finite retries: gives up, keeps running, inc tries again', () => {
  let broken = true;
  const sim = new Sim({ number: 1, ackMode: manual, retries: 2, respawnDelayMs: 100 });
  sim.onSpawn = () => (broken ? { fail: 'ENOENT' } : 'ok');
  sim.start();
  sim.advance(60_000);
  assert.equal(sim.spawnCount, 3, 'first attempt + 2 retries');
  assert.equal(sim.sup.snapshot().gaveUp, true);
  assert.equal(sim.exitCode, null, 'the master keeps running');
  broken = false;
  sim.feed({ type: 'inc', replyTo: 7 });
  assert.equal(sim.sup.snapshot().gaveUp, false);
  assert.equal(sim.alive().length, 2);
  assert.deepEqual(sim.repliesTo(7), ['Incrementing number of workers from 1 -> 2']);
});

test('a worker that exits right after its ack counts as a failed start', () => {
  const sim = new Sim({ number: 1, ackMode: manual, stableAfterMs: 5000, respawnDelayMs: 1000 });
  sim.start();
  const [p] = sim.alive();
  sim.ack(p!.pid);
  sim.advance(100);
  sim.exit(p!.pid, 1, null);
  assert.equal(sim.sup.snapshot().streak, 1);
  assert.equal(sim.alive().length, 0);
  sim.advance(1000);
  assert.equal(sim.alive().length, 1);
});

test('dec retires an unacked worker first; inc adds one in the lowest free slot', () => {
  const sim = new Sim({ number: 3, ackMode: manual });
  sim.start();
  const [a, b, c] = sim.alive();
  sim.ack(a!.pid);
  sim.ack(c!.pid);
  sim.feed({ type: 'dec', replyTo: 1 });
  assert.deepEqual(b!.signals, ['SIGUSR2']);
  assert.deepEqual(sim.repliesTo(1), ['Decrementing number of workers from 3 -> 2']);
  sim.advance(1);
  assert.equal(sim.alive().length, 2);
  sim.feed({ type: 'inc' });
  const added = sim.alive().find((p) => p.pid !== a!.pid && p.pid !== c!.pid)!;
  assert.equal(added.slot, 1);
});

test('set_workers validates its count and scales both ways', () => {
  const sim = new Sim({ number: 2, ackMode: manual });
  sim.start();
  sim.feed({ type: 'setWorkers', count: -1, replyTo: 1 });
  sim.feed({ type: 'setWorkers', count: 1.5, replyTo: 1 });
  assert.equal(sim.replies.filter((r) => !r.ok).length, 2);
  sim.feed({ type: 'setWorkers', count: 5, replyTo: 2 });
  assert.equal(sim.alive().length, 5);
  sim.feed({ type: 'setWorkers', count: 0, replyTo: 3 });
  sim.advance(1);
  assert.equal(sim.alive().length, 0);
  assert.equal(sim.exitCode, null);
});

test('shutdown: drain signal to all, KILL after the signal timeout, exit when none is left', () => {
  const sim = new Sim({ number: 2, ackMode: manual, signalTimeoutMs: 3000 });
  sim.start();
  for (const p of sim.alive()) sim.ack(p.pid);
  sim.drainExitMs = null; // they ignore the signal
  sim.feed({ type: 'shutdown', signal: 'SIGUSR2', replyTo: 9 });
  assert.ok(sim.alive().every((p) => p.signals[0] === 'SIGUSR2'));
  assert.equal(sim.exitCode, null);
  sim.advance(2999);
  assert.equal(sim.alive().length, 2);
  sim.advance(1);
  assert.equal(sim.alive().length, 0);
  assert.equal(sim.exitCode, 0);
  assert.equal(sim.spawnCount, 2, 'nothing respawned while going down');
});

test('shutdown asked twice kills at once', () => {
  const sim = new Sim({ number: 1, ackMode: manual, signalTimeoutMs: null });
  sim.start();
  sim.drainExitMs = null;
  sim.feed({ type: 'shutdown', signal: 'SIGUSR2' });
  sim.advance(100_000);
  assert.equal(sim.alive().length, 1, 'no escalation without a signal timeout');
  sim.feed({ type: 'shutdown', signal: 'SIGUSR2' });
  assert.equal(sim.alive().length, 0);
  assert.equal(sim.exitCode, 0);
});

test('signal command reaches every worker and records nothing', () => {
  const sim = new Sim({ number: 2, ackMode: manual });
  sim.start();
  sim.feed({ type: 'signal', signals: ['SIGUSR1', 'SIGHUP'], replyTo: 1 });
  assert.ok(sim.alive().every((p) => p.signals.join() === 'SIGUSR1,SIGHUP'));
  assert.ok(sim.sup.snapshot().workers.every((w) => w.signals.length === 0));
});

// ---- upgrades ---------------------------------------------------------------

function upAndRunning(n: number, extra: Partial<ConstructorParameters<typeof Sim>[0]> = {}): Sim {
  const sim = new Sim({ number: n, ackMode: manual, ...extra });
  sim.start();
  for (const p of sim.alive()) sim.ack(p.pid);
  assert.equal(sim.serving(), n);
  return sim;
}

test('smooth upgrade: each new ack retires one old worker, never fewer than N serving', () => {
  const sim = upAndRunning(3);
  const old = sim.alive().map((p) => p.pid);
  sim.check = () => assert.ok(sim.serving() >= 3, `serving ${sim.serving()} at ${sim.now}`);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 5 });
  const fresh = sim.alive((p) => p.generation === 1);
  assert.equal(fresh.length, 3);
  sim.ack(fresh[0]!.pid);
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length > 0).length, 1);
  sim.ack(fresh[1]!.pid);
  sim.ack(fresh[2]!.pid);
  sim.advance(1);
  assert.deepEqual(sim.alive().map((p) => p.generation), [1, 1, 1]);
  assert.ok(old.every((pid) => !sim.procs.get(pid)!.alive));
  const msgs = sim.replies.filter((r) => r.to === 5);
  assert.equal(msgs[0]!.message, 'Upgrading smoothly, as commanded');
  assert.equal(msgs.at(-1)!.message, 'Upgrade done');
  assert.equal(msgs.at(-1)!.wait, false);
  assert.ok(msgs.slice(0, -1).every((m) => m.wait));
  assert.equal(sim.sup.snapshot().upgrade, null);
});

test('fleet upgrade: no old worker is retired until every new one acked', () => {
  const sim = upAndRunning(2);
  sim.feed({ type: 'upgrade', mode: 'fleet', replyTo: 1 });
  const fresh = sim.alive((p) => p.generation === 1);
  sim.ack(fresh[0]!.pid);
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length === 0).length, 2);
  sim.ack(fresh[1]!.pid);
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length === 0).length, 0);
  assert.equal(sim.repliesTo(1).at(-1), 'Upgrade done');
});

test('upgrade whose new workers crash: abandoned after the retries, old workers keep serving', () => {
  const sim = upAndRunning(2, { upgradeRetries: 2, respawnDelayMs: 100 });
  sim.check = () => assert.ok(sim.serving() >= 2);
  sim.onSpawn = (gen) => (gen === 1 ? 'ok' : 'ok');
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 3 });
  for (let i = 0; i < 100 && sim.sup.snapshot().upgrade; i++) {
    for (const p of sim.alive((x) => x.generation === 1)) sim.exit(p.pid, 1, null);
    sim.advance(1000);
  }
  const snap = sim.sup.snapshot();
  assert.equal(snap.upgrade, null);
  assert.equal(snap.lastUpgrade?.ok, false);
  const final = sim.replies.filter((r) => r.to === 3).at(-1)!;
  assert.equal(final.ok, false);
  assert.equal(final.wait, false);
  assert.match(sim.repliesTo(3).at(-2)!, /failed/);
  assert.deepEqual(sim.alive().map((p) => p.generation), [0, 0]);
  assert.equal(sim.serving(), 2);
  // And it stays that way: nothing keeps respawning the broken generation.
  const spawns = sim.spawnCount;
  sim.advance(120_000);
  assert.equal(sim.spawnCount, spawns);
});

test('upgrade in manual mode whose new workers never ack fails at the deadline', () => {
  const sim = upAndRunning(1, { upgradeRetries: 0 });
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 3 });
  sim.advance(5000);
  assert.equal(sim.replies.filter((r) => r.to === 3).at(-1)!.ok, false);
  sim.advance(10);
  assert.deepEqual(sim.alive().map((p) => p.generation), [0]);
});

test('an upgrade during an upgrade is merged: one final reply for both callers', () => {
  const sim = upAndRunning(2);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 1 });
  const g1 = sim.alive((p) => p.generation === 1);
  sim.ack(g1[0]!.pid);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 2 });
  assert.match(sim.repliesTo(2)[0]!, /merged/);
  const g2 = sim.alive((p) => p.generation === 2);
  assert.equal(g2.length, 2);
  for (const p of g2) sim.ack(p.pid);
  sim.advance(1);
  assert.deepEqual(sim.alive().map((p) => p.generation), [2, 2]);
  assert.equal(sim.repliesTo(1).at(-1), 'Upgrade done');
  assert.equal(sim.repliesTo(2).at(-1), 'Upgrade done');
});

test('max-upgrade-additional paces the upgrade', () => {
  const sim = upAndRunning(4, { maxUpgradeAdditional: 1 });
  let peak = 0;
  sim.check = () => {
    peak = Math.max(peak, sim.alive().length);
  };
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 1 });
  for (let i = 0; i < 20 && sim.sup.snapshot().upgrade; i++) {
    for (const p of sim.alive((x) => x.generation === 1)) sim.ack(p.pid);
    sim.advance(1);
  }
  assert.equal(sim.repliesTo(1).at(-1), 'Upgrade done');
  assert.equal(peak, 5);
});

test('dec during an upgrade lowers the target of the new generation', () => {
  const sim = upAndRunning(3);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 1 });
  sim.feed({ type: 'dec' });
  for (const p of sim.alive((x) => x.generation === 1 && x.signals.length === 0)) sim.ack(p.pid);
  sim.advance(1);
  assert.deepEqual(sim.alive().map((p) => p.generation), [1, 1]);
  assert.equal(sim.repliesTo(1).at(-1), 'Upgrade done');
});

test('a worker crashing while it drains is just gone; escalation timer is cleared', () => {
  const sim = upAndRunning(1, { signalTimeoutMs: 1000 });
  sim.drainExitMs = null;
  sim.feed({ type: 'upgrade', mode: 'smooth' });
  const [fresh] = sim.alive((p) => p.generation === 1);
  sim.ack(fresh!.pid);
  const [old] = sim.alive((p) => p.generation === 0);
  sim.exit(old!.pid, null, 'SIGSEGV');
  assert.equal([...sim.timers.keys()].some((k) => k.startsWith('kill:')), false);
  assert.equal(sim.serving(), 1);
});

test('shutdown during an upgrade tells the waiting client', () => {
  const sim = upAndRunning(1);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 4 });
  sim.feed({ type: 'shutdown', signal: 'SIGUSR2' });
  const last = sim.replies.filter((r) => r.to === 4).at(-1)!;
  assert.equal(last.ok, false);
  assert.equal(last.wait, false);
  sim.advance(1);
  assert.equal(sim.exitCode, 0);
  const again = sim.replies.length;
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 6 });
  assert.equal(sim.replies.length, again + 1);
  assert.equal(sim.replies.at(-1)!.ok, false);
});

test('slots: new generation takes the lowest free indices, reused after exits', () => {
  const sim = upAndRunning(2);
  sim.feed({ type: 'upgrade', mode: 'smooth' });
  assert.deepEqual(sim.alive((p) => p.generation === 1).map((p) => p.slot).sort(), [2, 3]);
  for (const p of sim.alive((x) => x.generation === 1)) sim.ack(p.pid);
  sim.advance(1);
  sim.feed({ type: 'upgrade', mode: 'smooth' });
  assert.deepEqual(sim.alive((p) => p.generation === 2).map((p) => p.slot).sort(), [0, 1]);
});

test('configure changes run-time settings: a shorter signal timeout applies to the next stop', () => {
  const sim = upAndRunning(1, { signalTimeoutMs: 30_000 });
  sim.feed({ type: 'configure', changes: { signalTimeoutMs: 1000 }, replyTo: 1 });
  assert.match(sim.repliesTo(1)[0]!, /signalTimeoutMs=1000/);
  sim.drainExitMs = null;
  sim.feed({ type: 'shutdown', signal: 'SIGUSR2' });
  sim.advance(1000);
  assert.equal(sim.alive().length, 0);
});

test('a failed upgrade names the worker that did not come up', () => {
  const sim = upAndRunning(1, { upgradeRetries: 0 });
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 2 });
  const [fresh] = sim.alive((p) => p.generation === 1);
  sim.exit(fresh!.pid, 3, null);
  assert.ok(sim.repliesTo(2).some((m) => m.includes(`worker ${fresh!.pid} (index ${fresh!.slot}) exited before it was acked (exit status 3)`)));
});

test("named slots (dyno names): a roll's and a crash's replacements take the names they replace; scale-down removes the highest", () => {
  const sim = new Sim({ number: 2, ackMode: { kind: 'timer', ms: 1000 }, slots: 'named' });
  const names = () => sim.alive().map((p) => `${p.generation}:${p.slot}`).sort();
  sim.start();
  sim.advance(1000);
  assert.deepEqual(names(), ['0:0', '0:1']);
  sim.feed({ type: 'upgrade', mode: 'smooth' });
  assert.deepEqual(names(), ['0:0', '0:1', '1:0', '1:1'], 'during a roll two processes share each name');
  sim.advance(1000);
  sim.advance(1);
  assert.deepEqual(names(), ['1:0', '1:1']);
  // Ten quick upgrades, merged: still slots 0 and 1.
  for (let i = 0; i < 10; i++) {
    sim.feed({ type: 'upgrade', mode: 'smooth' });
    sim.advance(100);
  }
  sim.advance(2000);
  assert.deepEqual(sim.alive().map((p) => p.slot).sort(), [0, 1]);
  // A crash of slot 0: its replacement is slot 0 again.
  const [first] = sim.alive((p) => p.slot === 0);
  sim.exit(first!.pid, 1, null);
  sim.advance(5000);
  assert.deepEqual(sim.alive().map((p) => p.slot).sort(), [0, 1]);
  sim.feed({ type: 'setWorkers', count: 4 });
  sim.advance(1000);
  assert.deepEqual(sim.alive().map((p) => p.slot).sort(), [0, 1, 2, 3]);
  // The crash replacement (slot 0) is the youngest: scale-down still takes 3, then 2, then 1.
  sim.feed({ type: 'setWorkers', count: 1 });
  sim.advance(1);
  assert.deepEqual(sim.alive().map((p) => p.slot), [0]);
});

test('one-shot (respawn: false): a worker that ends is not replaced; the target drops to 0', () => {
  const sim = new Sim({ number: 2, ackMode: { kind: 'timer', ms: 1000 }, respawn: false });
  sim.start();
  const [a, b] = sim.alive();
  sim.exit(a!.pid, 0, null);
  sim.advance(5000);
  assert.equal(sim.alive().length, 1);
  sim.exit(b!.pid, 3, null);
  sim.advance(5000);
  assert.equal(sim.alive().length, 0);
  assert.equal(sim.sup.snapshot().config.number, 0);
  assert.equal(sim.spawnCount, 2);
});

// ---- issue 11, item 1: an exit right after the ack is a failed start ------------------

/** Every worker of `gens` acks as soon as it is spawned and exits 5 ms later. */
function ackThenExit(sim: Sim, gens: (g: number) => boolean = () => true): () => void {
  return () => {
    for (const p of sim.alive((x) => gens(x.generation))) {
      if (p.signals.length || (p as { acked?: boolean }).acked) continue;
      (p as { acked?: boolean }).acked = true;
      sim.ack(p.pid);
      const pid = p.pid;
      setExitSoon.push([pid, sim.now + 5]);
    }
  };
}
const setExitSoon: Array<[number, number]> = [];

/** Run the fake clock for `ms` with ack-then-exit workers, in 1 ms steps. */
function runAckThenExit(sim: Sim, ms: number, gens?: (g: number) => boolean): void {
  const act = ackThenExit(sim, gens);
  setExitSoon.length = 0;
  for (let t = 0; t < ms; t++) {
    act();
    for (const [pid, at] of [...setExitSoon]) {
      if (at <= sim.now) {
        setExitSoon.splice(setExitSoon.findIndex(([p]) => p === pid), 1);
        sim.exit(pid, 0, null);
      }
    }
    sim.advance(1);
  }
}

test('workers that exit right after their ack: the streak grows, backoff applies, -r gives up', () => {
  const sim = new Sim({ number: 2, ackMode: manual, retries: 2, respawnDelayMs: 1000, stableAfterMs: 10_000 });
  sim.start();
  runAckThenExit(sim, 10_000);
  const snap = sim.sup.snapshot();
  assert.equal(snap.gaveUp, true);
  assert.equal(sim.spawnCount, 3, 'two at the start, one probe after 2 failures, then it gives up');
  assert.equal(snap.streak, 3);
});

test('workers that exit right after their ack without -r: exponential backoff, not a storm', () => {
  const sim = new Sim({ number: 2, ackMode: manual, respawnDelayMs: 1000, backoffCapMs: 30_000, stableAfterMs: 10_000 });
  sim.start();
  runAckThenExit(sim, 60_000);
  // 2 at the start, then probes after 2, 4, 8, 16, 30 s of backoff (one at a time).
  assert.ok(sim.spawnCount <= 7, `spawned ${sim.spawnCount} times in 60 s`);
  assert.equal(sim.sup.snapshot().gaveUp, false);
});

test('an ack followed by a stable run ends the streak; an exit later is a plain crash', () => {
  const sim = new Sim({ number: 1, ackMode: manual, respawnDelayMs: 1000, stableAfterMs: 5000 });
  sim.start();
  sim.exit(sim.alive()[0]!.pid, 1, null);
  sim.advance(1000);
  const [p] = sim.alive();
  sim.ack(p!.pid);
  sim.advance(4999);
  assert.equal(sim.sup.snapshot().streak, 1);
  sim.advance(1);
  assert.equal(sim.sup.snapshot().streak, 0);
  sim.exit(p!.pid, 1, null);
  assert.equal(sim.alive().length, 1, 'replaced at once: it had been stable');
});

test('minReady: an upgrade retires an old worker only once a new one has been up that long', () => {
  const sim = new Sim({ number: 2, ackMode: manual, minReadyMs: 1000 });
  sim.start();
  for (const p of sim.alive()) sim.ack(p.pid);
  sim.advance(1000);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 4 });
  const fresh = sim.alive((p) => p.generation === 1);
  sim.ack(fresh[0]!.pid);
  sim.advance(999);
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length === 0).length, 2);
  sim.advance(1);
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length === 0).length, 1);
  sim.ack(fresh[1]!.pid);
  sim.advance(1000);
  assert.deepEqual(sim.alive().map((p) => p.generation), [1, 1]);
  assert.equal(sim.repliesTo(4).at(-1), 'Upgrade done');
});

test('handover afterBoot: no old worker is asked to drain while a new one is still starting', () => {
  const sim = new Sim({ number: 2, ackMode: manual, handover: { afterBoot: true, gapMs: 0 } });
  sim.start();
  for (const p of sim.alive()) sim.ack(p.pid);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 4 });
  const fresh = sim.alive((p) => p.generation === 1);
  sim.ack(fresh[0]!.pid);
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length === 0).length, 2, 'the second new worker still boots');
  sim.advance(1000);
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length === 0).length, 2);
  sim.ack(fresh[1]!.pid);
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length === 0).length, 0, 'both at once once every new one is up');
  assert.equal(sim.repliesTo(4).at(-1), 'Upgrade done');
});

test('handover gapMs: one old worker per gap; the upgrade is done only once the last old one was asked to drain', () => {
  const sim = new Sim({ number: 3, ackMode: manual, handover: { afterBoot: false, gapMs: 300 } });
  sim.start();
  for (const p of sim.alive()) sim.ack(p.pid);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 4 });
  for (const p of sim.alive((q) => q.generation === 1)) sim.ack(p.pid);
  const undrained = () => sim.alive((p) => p.generation === 0 && p.signals.length === 0).length;
  assert.equal(undrained(), 2, 'one at once');
  assert.notEqual(sim.repliesTo(4).at(-1), 'Upgrade done');
  sim.advance(299);
  assert.equal(undrained(), 2);
  sim.advance(1);
  assert.equal(undrained(), 1, 'the next one a gap later');
  assert.notEqual(sim.repliesTo(4).at(-1), 'Upgrade done');
  sim.advance(300);
  assert.equal(undrained(), 0);
  assert.equal(sim.repliesTo(4).at(-1), 'Upgrade done', 'done once every old worker was asked to drain');
  assert.equal(sim.sup.snapshot().upgrade, null);
});

test('handover pacing leaves a fleet upgrade and the old workers of a failed upgrade alone', () => {
  const sim = new Sim({ number: 2, ackMode: manual, handover: { afterBoot: true, gapMs: 300 } });
  sim.start();
  for (const p of sim.alive()) sim.ack(p.pid);
  sim.feed({ type: 'upgrade', mode: 'fleet', replyTo: 4 });
  for (const p of sim.alive((q) => q.generation === 1)) sim.ack(p.pid);
  assert.equal(sim.repliesTo(4).at(-1), 'Upgrade done');
  assert.equal(sim.alive((p) => p.generation === 0 && p.signals.length === 0).length, 0, 'a fleet upgrade retires the old fleet at once');
});

test('an upgrade to a release that exits right after its ack is abandoned; the old workers keep serving', () => {
  const sim = new Sim({ number: 2, ackMode: manual, retries: 2, upgradeRetries: 2, respawnDelayMs: 1000, minReadyMs: 1000 });
  sim.start();
  for (const p of sim.alive()) sim.ack(p.pid);
  sim.advance(20_000);
  const old = sim.alive().map((p) => p.pid);
  sim.feed({ type: 'upgrade', mode: 'smooth', replyTo: 9 });
  runAckThenExit(sim, 20_000, (g) => g === 1);
  const snap = sim.sup.snapshot();
  assert.equal(snap.upgrade, null);
  assert.equal(snap.lastUpgrade?.ok, false);
  assert.equal(sim.repliesTo(9).at(-1), 'Upgrade failed');
  assert.deepEqual(sim.alive().map((p) => p.pid), old, 'the old workers, untouched');
  assert.ok(sim.alive().every((p) => p.signals.length === 0));
  assert.equal(sim.serving(), 2);
  assert.equal(sim.spawnCount, 2 + 3, 'the new release was tried 3 times (limit 2 retries)');
});

// ---- supervisord's autorestart and exitcodes (a config file's programs) ---------------

test('autorestart: a started worker that exits unasked is replaced (true), left exited (false), or left exited only with an expected status (unexpected + exitcodes)', () => {
  const run = (autorestart: 'true' | 'false' | 'unexpected' | undefined, code: number | null, signal: string | null = null) => {
    const sim = new Sim({ number: 2, ackMode: { kind: 'timer', ms: 1000 }, slots: 'named', stableAfterMs: 0, ...(autorestart ? { autorestart } : {}), exitcodes: [0, 2] });
    sim.start();
    sim.advance(1000); // both up
    const [a] = sim.alive();
    sim.exit(a!.pid, code, signal);
    sim.advance(5000);
    return { alive: sim.alive().length, number: sim.sup.snapshot().config.number, spawns: sim.spawnCount };
  };
  assert.deepEqual(run(undefined, 0), { alive: 2, number: 2, spawns: 3 }, 'default: as einhorn, replaced');
  assert.deepEqual(run('true', 0), { alive: 2, number: 2, spawns: 3 });
  assert.deepEqual(run('false', 1), { alive: 1, number: 1, spawns: 2 });
  assert.deepEqual(run('unexpected', 2), { alive: 1, number: 1, spawns: 2 }, 'an expected status: exited');
  assert.deepEqual(run('unexpected', 1), { alive: 2, number: 2, spawns: 3 }, 'an unexpected status: replaced');
  assert.deepEqual(run('unexpected', null, 'SIGKILL'), { alive: 2, number: 2, spawns: 3 }, 'a signal death is unexpected');
});

test('autorestart=false: an exit before the ack is still a failed start (backoff), not an exit to keep', () => {
  const sim = new Sim({ number: 1, ackMode: { kind: 'timer', ms: 1000 }, slots: 'named', stableAfterMs: 0, autorestart: 'false' });
  sim.start();
  sim.exit(sim.alive()[0]!.pid, 0, null);
  sim.advance(5000);
  assert.equal(sim.sup.snapshot().config.number, 1);
  assert.equal(sim.alive().length, 1, 'started again after its backoff');
});
