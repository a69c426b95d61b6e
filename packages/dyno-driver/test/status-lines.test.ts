import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusLines } from '../src/config-control.js';

test("statusLines: supervisorctl 4.2.5's layout (name to max(30, longest) + 3, state to 10, then the description)", () => {
  // What supervisorctl printed for the same processes (test/bench/supervisors.ts, this machine).
  assert.equal(
    statusLines([
      { name: 'logger', group: 'logger', state: 'RUNNING', pid: 28138, uptimeMs: 4_000 },
      { name: 'web_0', group: 'web', state: 'RUNNING', pid: 28139, uptimeMs: 3_725_000 },
      { name: 'worker_0', group: 'worker', state: 'STOPPED', pid: null, uptimeMs: null },
    ]),
    'logger                           RUNNING   pid 28138, uptime 0:00:04\n' +
      'web:web_0                        RUNNING   pid 28139, uptime 1:02:05\n' +
      'worker:worker_0                  STOPPED   Not started\n',
  );
  const long = 'a-program-with-a-long-name:a-program-with-a-long-name_00';
  const lines = statusLines([
    { name: 'a-program-with-a-long-name_00', group: 'a-program-with-a-long-name', state: 'FATAL', pid: null, uptimeMs: null },
    { name: 'b', group: 'b', state: 'BACKOFF', pid: null, uptimeMs: null },
  ]).split('\n');
  assert.equal(lines[0], `${long}   FATAL     Exited too quickly (process log may have details)`);
  assert.equal(lines[1], `b${' '.repeat(long.length + 2)}BACKOFF   Exited too quickly (process log may have details)`);
});
