import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addGroups, removeGroups } from '../src/program-set.js';
import { resolveNames } from '../src/program-names.js';
import { parse } from './config-fixture.js';

const RUNNING = parse(['[group:app]', 'programs=web,worker', '[program:web]', 'command=/bin/web', '[program:worker]', 'command=/bin/worker', '[program:clock]', 'command=/bin/clock', 'priority=5', ''].join('\n'));

test('add: only the named groups of the file come in ([group:x] whole), in the config order; the rest of the file waits', () => {
  const file = parse(
    ['[group:app]', 'programs=web,worker', '[program:web]', 'command=/bin/web2', '[program:worker]', 'command=/bin/worker', '[program:clock]', 'command=/bin/clock', 'priority=5',
      '[group:bg]', 'programs=a,b', 'priority=1', '[program:a]', 'command=/bin/a', '[program:b]', 'command=/bin/b', '[program:solo]', 'command=/bin/solo', ''].join('\n'),
  );
  const r = addGroups(RUNNING, file, ['bg', 'solo']);
  assert.deepEqual(r.lines, ['bg: added process group', 'solo: added process group']);
  assert.equal(r.ok, true);
  assert.deepEqual(r.done, ['bg', 'solo']);
  assert.deepEqual(r.model.programs.map((p) => p.name), ['a', 'b', 'clock', 'web', 'worker', 'solo']);
  // web's changed command in the file is not taken: that is update's.
  assert.equal(r.model.programs.find((p) => p.name === 'web')!.processes[0]!.command, '/bin/web');
});

test('add: unknown, already active, a program active in another group: one ERROR line each, the others done, the model untouched when none is', () => {
  const file = parse(['[group:other]', 'programs=clock', '[program:clock]', 'command=/bin/clock', '[program:web]', 'command=/bin/web', '[program:new]', 'command=/bin/new', ''].join('\n'));
  const r = addGroups(RUNNING, file, ['nope', 'web', 'other', 'new']);
  assert.deepEqual(r.lines, [
    'ERROR: no such process/group: nope',
    'ERROR: program web of group web is already active in group app: remove that one first, or run update',
    'ERROR: program clock of group other is already active in group clock: remove that one first, or run update',
    'new: added process group',
  ]);
  assert.equal(r.ok, false);
  assert.deepEqual(addGroups(RUNNING, RUNNING, ['clock']).lines, ['ERROR: process group already active: clock']);
  const none = addGroups(RUNNING, file, ['nope']);
  assert.equal(none.model, RUNNING);
});

test('remove: a group none of whose processes runs leaves; a running one, or an unknown name, is an ERROR line', () => {
  const running = new Set(['web']);
  const r = removeGroups(RUNNING, ['clock', 'app', 'nope'], (p) => running.has(p));
  assert.deepEqual(r.lines, ['clock: removed process group', 'ERROR: process/group still running: app (stop it first: stop app:*)', 'ERROR: no such process/group: nope']);
  assert.deepEqual(r.model.programs.map((p) => p.name), ['web', 'worker']);
  assert.deepEqual(r.model.groups.map((g) => g.name), ['app']);
  running.clear();
  assert.deepEqual(removeGroups(RUNNING, ['app'], () => false).model.programs.map((p) => p.name), ['clock']);
});

test('names: GROUP:PROCESS is one process (its slot); NAME and GROUP:* whole; a bare process name says what to write', () => {
  const m = parse(['[program:multi]', 'command=/bin/m', 'numprocs=3', 'process_name=%(program_name)s_%(process_num)02d', '[program:one]', 'command=/bin/one', ''].join('\n'));
  const all = m.programs.map((p) => p.name);
  assert.deepEqual(resolveNames(m, ['multi:multi_01', 'multi:multi_02'], all), { names: ['multi'], slots: { multi: [1, 2] } });
  assert.deepEqual(resolveNames(m, ['multi:multi_01', 'multi'], all), { names: ['multi'], slots: {} });
  assert.deepEqual(resolveNames(m, ['one:one', 'multi:*'], all), { names: ['multi', 'one'], slots: {} });
  assert.deepEqual(resolveNames(m, ['multi_01'], all), { error: 'No such process: multi_01 (a process of program multi: name it multi:multi_01)' });
  assert.deepEqual(resolveNames(m, ['multi:nope'], all), { error: 'No such process: multi:nope' });
});
