import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diff } from '../src/config/index.js';
import { parse } from './config-fixture.js';

const BASE = [
  '[group:app]', 'programs=web,worker', '[program:web]', 'command=/bin/web', 'numprocs=2', 'process_name=web_%(process_num)d',
  '[program:worker]', 'command=/bin/worker', '[program:clock]', 'command=/bin/clock', '[program:old]', 'command=/bin/old', '',
].join('\n');

test('diff: identical configs are all unchanged (key order and comments do not matter)', () => {
  const a = parse(BASE);
  const b = parse(`; reordered\n[program:clock]\ncommand = /bin/clock\n${BASE.replace('[program:clock]\ncommand=/bin/clock\n', '')}`);
  const d = diff(a, b);
  assert.deepEqual(d, {
    added: [], removed: [], changed: [], unchanged: ['clock', 'old', 'web', 'worker'], changes: {},
    groups: { added: [], removed: [], changed: [], unchanged: ['app', 'clock', 'old'] },
  });
});

test('diff: added, removed, changed by any key, environment order ignored', () => {
  const a = parse(BASE.replace('command=/bin/worker', 'command=/bin/worker\nenvironment=A=1,B=2'));
  const b = parse(
    BASE.replace('command=/bin/worker', 'command=/bin/worker\nenvironment=B=2,A=1')
      .replace('[program:old]\ncommand=/bin/old\n', '[program:new]\ncommand=/bin/new\n')
      .replace('command=/bin/clock', 'command=/bin/clock\nstopwaitsecs=30\nstdout_logfile_maxbytes=1KB')
      .replace('numprocs=2', 'numprocs=3'),
  );
  const d = diff(a, b);
  assert.deepEqual(d.added, ['new']);
  assert.deepEqual(d.removed, ['old']);
  assert.deepEqual(d.changed, ['clock', 'web']);
  assert.deepEqual(d.unchanged, ['worker']);
  assert.deepEqual(d.changes, { clock: ['stdout', 'stopwaitsecs'], web: ['processes'] });
  assert.deepEqual(d.groups, { added: ['new'], removed: ['old'], changed: ['app', 'clock'], unchanged: [] });
});

test('diff: moving a program between groups changes it and both groups', () => {
  const a = parse(BASE);
  const b = parse(BASE.replace('programs=web,worker', 'programs=web').replace('[program:clock]', '[group:bg]\nprograms=worker\n[program:clock]'));
  const d = diff(a, b);
  assert.deepEqual(d.changed, ['worker']);
  assert.deepEqual(d.changes, { worker: ['group'] });
  assert.deepEqual(d.unchanged, ['clock', 'old', 'web']);
  assert.deepEqual(d.groups, { added: ['bg'], removed: [], changed: ['app'], unchanged: ['clock', 'old'] });
});

test('diff: a group priority change changes the group, not its programs; an expanded ENV_ change is a change', () => {
  const a = parse(BASE.replace('programs=web,worker', 'programs=web,worker\npriority=10'));
  const b = parse(BASE.replace('programs=web,worker', 'programs=web,worker\npriority=20'));
  const d = diff(a, b);
  assert.deepEqual(d.changed, []);
  assert.deepEqual(d.groups.changed, ['app']);
  const withEnv = '[program:x]\ncommand=/bin/x --db %(ENV_DB)s\n';
  const e = diff(parse(withEnv), parse(withEnv, {}, { env: { DB: 'other' } }));
  assert.deepEqual(e.changes, { x: ['argv', 'command'] });
});
