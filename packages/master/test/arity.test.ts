import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arityProblem } from '../src/arity.js';

test("extra arguments are refused with the command's usage; commands with their own checks keep them", () => {
  assert.equal(arityProblem('dec', ['5']), "dec takes no arguments (got '5'); usage: dec");
  assert.equal(arityProblem('upgrade', ['now', 'please']), "upgrade takes no arguments (got 'now' 'please'); usage: upgrade");
  assert.equal(arityProblem('die', ['TERM', 'KILL']), "die: too many arguments ('KILL'); usage: die [SIGNAL]");
  assert.equal(arityProblem('set_workers', ['1', '2']), "set_workers: too many arguments ('2'); usage: set_workers N");
  assert.equal(arityProblem('config', []), 'config: missing argument; usage: config "{KEY: VALUE, ...}"');
  for (const [c, a] of [['dec', []], ['die', ['TERM']], ['signal', ['HUP', 'USR1']], ['set_workers', []], ['worker:ack', ['x']], ['unknown', ['x']]] as const) {
    assert.equal(arityProblem(c, a), null, `${c} ${a.join(' ')}`);
  }
});
