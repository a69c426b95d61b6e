import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import * as native from 'native-reuseport';
import { Runtime } from '../src/host/runtime.js';
import type { LaunchSpec } from '../src/host/group-shell.js';
import { Logger } from '../src/log.js';

/** Our children, from every thread's list (a spawner thread made them). */
function ourChildren(): number[] {
  return readdirSync('/proc/self/task').flatMap((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/children`, 'utf8').split(' ').filter((w) => w.trim() !== '').map(Number);
    } catch {
      return [];
    }
  });
}

// A worker is spawned on another thread and its pid reaches the event loop in a later turn;
// a fast worker can exec, connect and ACK before that. Its ACK must not be lost (the scale
// bench lost 7 of 1,000: "Could not find state for PID ...; ignoring ACK", the worker then
// stopped for a missed ACK). Here the ACK comes while the spawn has completed on its thread
// and its result has not been handed to this one: deterministic, no timing.
test('an ACK that comes before the worker\'s pid is not lost', async () => {
  const lines: string[] = [];
  const log = new Logger(2, process.pid, (line) => lines.push(line));
  let exitCode: number | null = null;
  const launch: LaunchSpec = { program: 'sleep', args: ['1000'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, dropEnv: [], cwd: process.cwd() };
  const runtime = new Runtime<LaunchSpec>({
    log,
    now: () => performance.now(),
    shell: (spec) => ({ name: '', core: spec.config, launch: spec.launch, listeners: [], socketPath: '/nonexistent/ein.sock', killChildrenOnExit: false, log }),
    relaunch: (shell, spec) => shell.setLaunch(spec.launch),
    onReply: () => undefined,
    onExit: (code) => {
      exitCode = code;
    },
  });
  const before = new Set(ourChildren());
  runtime.feed({ type: 'apply', specs: [{ name: '', quantity: 1, launchKey: 'sleep', launch, config: { number: 1, ackMode: { kind: 'manual', deadlineMs: 60_000 } } }] });
  // The spawn has run on the addon's thread (blocking wait), its result not taken yet.
  native.spawnWait();
  const pid = ourChildren().find((p) => !before.has(p));
  assert.ok(pid !== undefined, 'the worker is our child');
  try {
    assert.equal(runtime.hasPid(pid), false, 'its pid has not reached the runtime yet');
    runtime.feed({ type: 'ack', pid });
    const w = runtime.groups()[0]!.snapshot.workers.find((x) => x.pid === pid);
    assert.equal(w?.state, 'up', JSON.stringify(runtime.groups()[0]!.snapshot.workers));
    assert.ok(!lines.some((l) => /ignoring ACK/.test(l)), lines.join('\n'));
  } catch (err) {
    process.kill(pid, 'SIGKILL'); // nothing left behind
    throw err;
  }
  // Stop it and wait for its exit to come back through the spawner's reap.
  runtime.feed({ type: 'shutdown', signal: 'SIGTERM' });
  const end = Date.now() + 20_000;
  while (exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(exitCode, 0);
  runtime.stopTimers();
});
