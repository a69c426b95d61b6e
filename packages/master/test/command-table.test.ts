import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMAND_TABLE, helpMessage } from '../src/commands/entries.js';

test('one table: the master and the driver offer their own entries, each with its help', () => {
  const master = helpMessage('master');
  const dyno = helpMessage('dyno');
  assert.match(master, /^You are speaking to the Einhorn command socket/);
  assert.match(dyno, /^You are speaking to the einhyrningsins-dyno command socket/);
  for (const c of ['config', 'louder', 'quieter', 'set_workers']) {
    assert.ok(COMMAND_TABLE.entry('master', c) && !COMMAND_TABLE.entry('dyno', c), c);
  }
  assert.ok(COMMAND_TABLE.entry('dyno', 'scale') && !COMMAND_TABLE.entry('master', 'scale'));
  for (const c of ['upgrade', 'upgrade_fleet', 'inc', 'dec', 'signal', 'die', 'reload', 'state', 'status', 'help', 'version', 'ehlo', 'worker:ack']) {
    assert.ok(COMMAND_TABLE.entry('master', c) && COMMAND_TABLE.entry('dyno', c), c);
  }
  assert.match(master, /\nupgrade: Upgrade all workers smoothly/);
  assert.match(dyno, /\nupgrade: Roll the named process types/);
  assert.match(dyno, /\nreload: Re-execute the driver in place/);
});

test('group names: trailing words name groups only where groups have names; signals lead', () => {
  // The master's one unnamed group: every word is the command's own (and arity refuses extras, as before).
  assert.deepEqual(COMMAND_TABLE.split('master', false, 'upgrade', ['web']), { own: ['web'], groups: [] });
  assert.equal(COMMAND_TABLE.arityProblem('master', 'upgrade', ['web']), "upgrade takes no arguments (got 'web'); usage: upgrade");
  assert.deepEqual(COMMAND_TABLE.split('master', false, 'signal', ['HUP', 'USR1']), { own: ['HUP', 'USR1'], groups: [] });
  // Named groups (the driver's types, or a master with named groups).
  assert.deepEqual(COMMAND_TABLE.split('dyno', true, 'upgrade', ['web', 'worker']), { own: [], groups: ['web', 'worker'] });
  assert.deepEqual(COMMAND_TABLE.split('dyno', true, 'signal', ['TERM', 'USR1', 'worker']), { own: ['TERM', 'USR1'], groups: ['worker'] });
  assert.deepEqual(COMMAND_TABLE.split('dyno', true, 'signal', ['NOPE', 'worker']), { own: ['NOPE'], groups: ['worker'] });
  assert.deepEqual(COMMAND_TABLE.split('dyno', true, 'inc', ['web']), { own: [], groups: ['web'] });
  assert.deepEqual(COMMAND_TABLE.split('master', true, 'set_workers', ['3', 'web']), { own: ['3'], groups: ['web'] });
  assert.deepEqual(COMMAND_TABLE.split('dyno', true, 'scale', ['web=2']), { own: ['web=2'], groups: [] });
  // Arity for the driver too now.
  assert.equal(COMMAND_TABLE.arityProblem('dyno', 'state', ['x']), "state takes no arguments (got 'x'); usage: state");
  assert.equal(COMMAND_TABLE.arityProblem('dyno', 'die', ['TERM', 'KILL']), "die: too many arguments ('KILL'); usage: die [SIGNAL]");
});
