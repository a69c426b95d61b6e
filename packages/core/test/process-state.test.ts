import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessMachine, type CommandResult, type ProcessEvent } from '../src/process-state.js';
import { DEFAULT_PROCESS_STATE_CONFIG, type ProcessStateConfig } from '../src/process-state-config.js';
import { FakeClock } from './fake-clock.js';

/** The fake clock around one machine; records what it asked for. */
class Sim {
  readonly clock = new FakeClock();
  m: ProcessMachine;
  states: string[] = [];
  spawns: { at: number; id: number }[] = [];
  kills: string[] = [];
  logs: string[] = [];
  nextPid = 100;

  constructor(cfg: Partial<ProcessStateConfig> = {}, m?: ProcessMachine) {
    this.m = m ?? new ProcessMachine('app', { ...DEFAULT_PROCESS_STATE_CONFIG, ...cfg });
  }

  get now(): number {
    return this.clock.now;
  }

  set now(ms: number) {
    this.clock.now = ms;
  }

  get timers(): Map<string, number> {
    return this.clock.timers;
  }

  send(ev: ProcessEvent): CommandResult | undefined {
    const { effects, result } = this.m.handle(ev, this.now);
    for (const e of effects) {
      if (e.type === 'state') this.states.push(`${e.from}>${e.to}${e.expected ? '' : '!'}`);
      else if (e.type === 'setTimer') this.clock.setTimer(e.key, e.ms);
      else if (e.type === 'clearTimer') this.clock.timers.delete(e.key);
      else if (e.type === 'spawn') this.spawns.push({ at: this.now, id: e.id });
      else if (e.type === 'kill') this.kills.push(`${e.group ? '-' : ''}${e.pid}:${e.signal}@${this.now}`);
      else this.logs.push(`${e.level}: ${e.message}`);
    }
    return result;
  }

  /** Move the clock, firing due timers in order. */
  advance(ms: number): void {
    this.clock.advance(ms, (due) => {
      if ('timer' in due) this.send({ type: 'timer', key: due.timer });
    });
  }

  /** The last spawn succeeds. */
  up(): number {
    const pid = this.nextPid++;
    this.send({ type: 'spawned', id: this.spawns[this.spawns.length - 1]!.id, pid });
    return pid;
  }

  exit(code: number | null, signal: string | null = null): void {
    this.send({ type: 'exited', pid: this.m.pid, code, signal });
  }

  takeStates(): string[] {
    const s = this.states;
    this.states = [];
    return s;
  }
}

test('autostart: STOPPED -> STARTING at once; RUNNING only once it has been up startsecs', () => {
  const s = new Sim({ startsecs: 2 });
  s.send({ type: 'tick' });
  assert.deepEqual(s.takeStates(), ['STOPPED>STARTING']);
  assert.equal(s.spawns.length, 1);
  s.advance(500);
  s.up();
  s.advance(1499);
  assert.equal(s.m.state, 'STARTING');
  s.advance(1);
  assert.deepEqual(s.takeStates(), ['STARTING>RUNNING']);
  assert.ok(s.logs.includes('info: success: app entered RUNNING state, process has stayed up for > than 2 seconds (startsecs)'));
  assert.equal(s.timers.size, 0, 'no timer while RUNNING');
});

test('startsecs=0: RUNNING as soon as it is spawned; autostart=false stays STOPPED until start', () => {
  const s = new Sim({ startsecs: 0 });
  s.send({ type: 'tick' });
  s.up();
  assert.deepEqual(s.takeStates(), ['STOPPED>STARTING', 'STARTING>RUNNING']);
  const t = new Sim({ autostart: false });
  t.send({ type: 'tick' });
  t.advance(60_000);
  assert.equal(t.m.state, 'STOPPED');
  assert.equal(t.spawns.length, 0);
  assert.deepEqual(t.send({ type: 'start' }), { ok: true });
  assert.equal(t.m.state, 'STARTING');
});

test('failed starts: BACKOFF, retried after 1, 2, 3 s, then FATAL after startretries (4 spawns for 3 retries)', () => {
  const s = new Sim({ startsecs: 1, startretries: 3 });
  s.send({ type: 'tick' });
  for (let attempt = 1; attempt <= 4; attempt++) {
    s.up();
    s.advance(100);
    s.exit(1);
    if (attempt < 4) {
      assert.equal(s.m.state, 'BACKOFF');
      assert.equal(s.m.backoff, attempt);
      assert.equal(s.m.spawnerr, 'Exited too quickly (process log may have details)');
      assert.equal(s.m.exitstatus, null);
      s.advance(attempt * 1000 - 1);
      assert.equal(s.m.state, 'BACKOFF', `still waiting before retry ${attempt}`);
      s.advance(1);
      assert.equal(s.m.state, 'STARTING');
    }
  }
  assert.equal(s.m.state, 'FATAL');
  assert.deepEqual(s.spawns.map((x) => x.at), [0, 1100, 3200, 6300]);
  assert.ok(s.logs.includes('info: gave up: app entered FATAL state, too many start retries too quickly'));
  assert.deepEqual(s.takeStates().slice(-2), ['STARTING>BACKOFF', 'BACKOFF>FATAL']);
  assert.equal(s.timers.size, 0);
  s.advance(3_600_000);
  assert.equal(s.spawns.length, 4, 'FATAL stays FATAL');
  // start from FATAL tries again from a fresh count
  assert.deepEqual(s.send({ type: 'start' }), { ok: true });
  assert.equal(s.m.state, 'STARTING');
  assert.equal(s.m.backoff, 0);
});

test('startretries=0: the first failed start is FATAL; a spawn error is a failed start too', () => {
  const s = new Sim({ startretries: 0 });
  s.send({ type: 'tick' });
  s.send({ type: 'spawnFailed', id: s.spawns[0]!.id, error: "can't find command '/nope'" });
  assert.deepEqual(s.takeStates(), ['STOPPED>STARTING', 'STARTING>BACKOFF', 'BACKOFF>FATAL']);
  assert.equal(s.m.spawnerr, "can't find command '/nope'");
});

test('autorestart=unexpected with exitcodes: expected exits stay EXITED, others restart at once', () => {
  const s = new Sim({ autorestart: 'unexpected', exitcodes: [0, 2], startsecs: 1 });
  s.send({ type: 'tick' });
  s.up();
  s.advance(5000);
  s.exit(2);
  assert.deepEqual(s.takeStates(), ['STOPPED>STARTING', 'STARTING>RUNNING', 'RUNNING>EXITED']);
  assert.equal(s.m.exitstatus, 2);
  s.advance(60_000);
  assert.equal(s.spawns.length, 1);
  s.send({ type: 'start' });
  s.up();
  s.advance(5000);
  s.exit(3);
  assert.deepEqual(s.takeStates(), ['EXITED>STARTING', 'STARTING>RUNNING', 'RUNNING>EXITED!', 'EXITED>STARTING']);
  assert.equal(s.m.spawnerr, null, 'cleared by the new spawn');
  s.up();
  s.advance(5000);
  s.exit(null, 'SEGV');
  assert.deepEqual(s.takeStates(), ['STARTING>RUNNING', 'RUNNING>EXITED!', 'EXITED>STARTING'], 'killed by a signal is status -1: unexpected');
  assert.ok(s.logs.includes('warn: exited: app (terminated by SIGSEGV; not expected)'));
});

test('autorestart=true restarts even on an expected exit; false never restarts', () => {
  const t = new Sim({ autorestart: 'true' });
  t.send({ type: 'tick' });
  t.up();
  t.advance(2000);
  t.exit(0);
  assert.deepEqual(t.takeStates().slice(-2), ['RUNNING>EXITED', 'EXITED>STARTING']);
  const f = new Sim({ autorestart: 'false' });
  f.send({ type: 'tick' });
  f.up();
  f.advance(2000);
  f.exit(1);
  f.advance(60_000);
  assert.equal(f.m.state, 'EXITED');
  assert.equal(f.spawns.length, 1);
});

test('an exit after startsecs, before the RUNNING timer fired, is RUNNING then EXITED (not a failed start)', () => {
  const s = new Sim({ startsecs: 1 });
  s.send({ type: 'tick' });
  s.up();
  s.now = 1000; // the timer is due but the exit is handled first
  s.exit(0);
  assert.deepEqual(s.takeStates(), ['STOPPED>STARTING', 'STARTING>RUNNING', 'RUNNING>EXITED']);
});

test('a crash after RUNNING resets the retry count', () => {
  const s = new Sim({ startretries: 1, autorestart: 'true' });
  s.send({ type: 'tick' });
  s.up();
  s.advance(100);
  s.exit(1); // BACKOFF, 1 of 1
  s.advance(1000);
  s.up();
  s.advance(5000); // RUNNING: count reset
  s.exit(1);
  s.up();
  s.advance(100);
  s.exit(1);
  assert.equal(s.m.state, 'BACKOFF', 'a fresh count: one retry left');
  assert.equal(s.m.backoff, 1);
});

test('stop: STOPPING with the stop signal, STOPPED at its exit whatever the status, no restart', () => {
  const s = new Sim({ autorestart: 'true', stopsignal: 'QUIT' });
  s.send({ type: 'tick' });
  const pid = s.up();
  s.advance(2000);
  assert.deepEqual(s.send({ type: 'stop' }), { ok: true });
  assert.deepEqual(s.kills, [`${pid}:QUIT@2000`]);
  assert.equal(s.m.state, 'STOPPING');
  s.advance(300);
  s.exit(null, 'QUIT');
  assert.deepEqual(s.takeStates().slice(-2), ['RUNNING>STOPPING', 'STOPPING>STOPPED']);
  assert.ok(s.logs.includes('warn: stopped: app (terminated by SIGQUIT)'));
  s.advance(60_000);
  assert.equal(s.spawns.length, 1);
  assert.equal(s.timers.size, 0);
});

test('stopwaitsecs: SIGKILL after the wait, to the group with killasgroup, again every stopwaitsecs', () => {
  const s = new Sim({ stopwaitsecs: 5, killasgroup: true });
  s.send({ type: 'tick' });
  const pid = s.up();
  s.advance(2000);
  s.send({ type: 'stop' });
  s.advance(4999);
  assert.deepEqual(s.kills, [`${pid}:TERM@2000`]);
  s.advance(1);
  s.advance(5000);
  assert.deepEqual(s.kills, [`${pid}:TERM@2000`, `-${pid}:KILL@7000`, `-${pid}:KILL@12000`]);
  assert.ok(s.logs.includes(`warn: killing 'app' (${pid}) with SIGKILL`));
  s.exit(null, 'KILL');
  assert.equal(s.m.state, 'STOPPED');
  const g = new Sim({ stopasgroup: true, killasgroup: false });
  g.send({ type: 'tick' });
  const gp = g.up();
  g.send({ type: 'stop' });
  g.advance(10_000);
  assert.deepEqual(g.kills, [`-${gp}:TERM@0`, `-${gp}:KILL@10000`], 'stopasgroup implies killasgroup');
});

test('stop in BACKOFF: STOPPED at once, the retry is cancelled', () => {
  const s = new Sim();
  s.send({ type: 'tick' });
  s.up();
  s.exit(1);
  assert.equal(s.m.state, 'BACKOFF');
  assert.deepEqual(s.send({ type: 'stop' }), { ok: true });
  assert.equal(s.m.state, 'STOPPED');
  assert.equal(s.timers.size, 0);
  s.advance(60_000);
  assert.equal(s.spawns.length, 1);
});

test('commands refused with supervisord\'s faults', () => {
  const s = new Sim({ autostart: false });
  s.send({ type: 'tick' });
  assert.deepEqual(s.send({ type: 'stop' }), { ok: false, fault: 'NOT_RUNNING', message: 'app: not running' });
  assert.deepEqual(s.send({ type: 'signal', signal: 'HUP' }), { ok: false, fault: 'NOT_RUNNING', message: 'app: not running' });
  s.send({ type: 'start' });
  assert.deepEqual(s.send({ type: 'start' }), { ok: false, fault: 'ALREADY_STARTED', message: 'app: already started' });
  const pid = s.up();
  assert.deepEqual(s.send({ type: 'signal', signal: 'HUP' }), { ok: true });
  assert.deepEqual(s.kills, [`${pid}:HUP@0`]);
  s.send({ type: 'stop' });
  assert.deepEqual(s.send({ type: 'start' }), { ok: false, fault: 'STILL_STOPPING', message: 'app: still stopping' });
  assert.deepEqual(s.send({ type: 'stop' }), { ok: false, fault: 'NOT_RUNNING', message: 'app: not running' });
});

test('stop while the spawn is on its way: the stop signal goes when it is spawned', () => {
  const s = new Sim();
  s.send({ type: 'tick' });
  s.send({ type: 'stop' });
  assert.equal(s.m.state, 'STOPPING');
  assert.deepEqual(s.kills, []);
  s.advance(100);
  const pid = s.up();
  assert.deepEqual(s.kills, [`${pid}:TERM@100`]);
  s.exit(null, 'TERM');
  assert.equal(s.m.state, 'STOPPED');
  const f = new Sim();
  f.send({ type: 'tick' });
  f.send({ type: 'stop' });
  f.send({ type: 'spawnFailed', id: f.spawns[0]!.id, error: 'fork failed' });
  assert.equal(f.m.state, 'STOPPED');
  assert.equal(f.timers.size, 0);
});

test('shutdown: running processes are stopped, BACKOFF gives up, nothing starts again', () => {
  const r = new Sim({ autorestart: 'true' });
  r.send({ type: 'tick' });
  const pid = r.up();
  r.advance(2000);
  r.send({ type: 'shutdown' });
  assert.deepEqual(r.kills, [`${pid}:TERM@2000`]);
  r.exit(0);
  r.advance(60_000);
  assert.equal(r.m.state, 'STOPPED');
  assert.deepEqual(r.send({ type: 'start' }), { ok: false, fault: 'SHUTTING_DOWN', message: 'app: shutting down' });
  const b = new Sim();
  b.send({ type: 'tick' });
  b.up();
  b.exit(1);
  b.send({ type: 'shutdown' });
  assert.equal(b.m.state, 'FATAL');
  const e = new Sim({ autorestart: 'true', autostart: false });
  e.send({ type: 'shutdown' });
  e.send({ type: 'tick' });
  assert.equal(e.spawns.length, 0);
});

test('stale events are ignored: another pid\'s exit, an old spawn id', () => {
  const s = new Sim();
  s.send({ type: 'tick' });
  s.send({ type: 'spawned', id: 99, pid: 5 });
  assert.equal(s.m.pid, 0);
  s.up();
  s.send({ type: 'exited', pid: 4242, code: 1, signal: null });
  assert.equal(s.m.state, 'STARTING');
});

test('snapshot and restore (a re-exec): a BACKOFF resumes its retry on the same clock', () => {
  const s = new Sim({ startretries: 2 });
  s.send({ type: 'tick' });
  s.up();
  s.advance(100);
  s.exit(1);
  s.advance(400);
  const snap = JSON.parse(JSON.stringify(s.m.snapshot()));
  const restored = new ProcessMachine('app', { ...DEFAULT_PROCESS_STATE_CONFIG, startretries: 2 }, snap);
  const t = new Sim({}, restored);
  t.now = s.now;
  t.send({ type: 'tick' });
  assert.equal(t.timers.get(restored.timerKey), 1100, 'the retry is due 1 s after the failed start');
  t.advance(600);
  assert.equal(t.m.state, 'STARTING');
  assert.equal(t.spawns.length, 1);
  assert.ok(t.spawns[0]!.id > s.spawns[0]!.id, 'spawn ids keep increasing');
});

test('config is checked', () => {
  assert.throws(() => new ProcessMachine('x', { ...DEFAULT_PROCESS_STATE_CONFIG, startsecs: -1 }), /startsecs must be a number >= 0/);
});

test('the log lines supervisord 4.2.5 writes for a failing program (startretries=2), in the same order', () => {
  // from a run of supervisord with [program:fail] command=/bin/sh -c "exit 1", startretries=2:
  //   spawned: 'fail' with pid 17607 / exited: fail (exit status 1; not expected) / spawned (1 s later) /
  //   exited / spawned (2 s later) / exited / gave up: fail entered FATAL state, too many start retries too quickly
  const s = new Sim({ startretries: 2 });
  s.m = new ProcessMachine('fail', { ...DEFAULT_PROCESS_STATE_CONFIG, startretries: 2 });
  s.send({ type: 'tick' });
  for (let i = 1; i <= 3; i++) {
    s.up();
    s.advance(25);
    s.exit(1);
    s.advance(i * 1000); // the retry is due after 1 s, then 2 s
  }
  assert.deepEqual(
    s.logs.filter((l) => !l.startsWith('debug')).map((l) => l.replace(/pid \d+/, 'pid N')),
    [
      "info: spawned: 'fail' with pid N", 'warn: exited: fail (exit status 1; not expected)',
      "info: spawned: 'fail' with pid N", 'warn: exited: fail (exit status 1; not expected)',
      "info: spawned: 'fail' with pid N", 'warn: exited: fail (exit status 1; not expected)',
      'info: gave up: fail entered FATAL state, too many start retries too quickly',
    ],
  );
  assert.deepEqual(s.spawns.map((x) => x.at), [0, 1025, 3050]);
});
