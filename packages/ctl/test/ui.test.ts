import { test } from 'node:test';
import assert from 'node:assert/strict';
import { complete, nearest, wrapText } from '../src/ui.js';
import { COMMAND_NAMES } from '../src/cli.js';

test('nearest: typos, transpositions and prefixes; nothing for gibberish', () => {
  assert.deepEqual(nearest('stauts', COMMAND_NAMES), ['status']);
  assert.deepEqual(nearest('upgrad', COMMAND_NAMES), ['upgrade', 'upgrade_fleet']);
  assert.deepEqual(nearest('sate', COMMAND_NAMES), ['state']);
  assert.deepEqual(nearest('xyzzyplugh', COMMAND_NAMES), []);
});

test('wrapText: at word boundaries, continuation under the text after "name: "', () => {
  const line = 'upgrade: Upgrade all workers smoothly: each new worker that acks retires an old one';
  const out = wrapText(line, 40).split('\n');
  assert.ok(out.every((l) => l.length <= 40), JSON.stringify(out));
  assert.equal(out.join(' ').replace(/ +/g, ' '), line);
  assert.ok(out.slice(1).every((l) => l.startsWith('         ') && l[9] !== ' '));
  assert.equal(wrapText('short', 40), 'short');
});

test('complete: command names, then signal names after signal and die', () => {
  assert.deepEqual(complete('sta', COMMAND_NAMES), [['state', 'status', 'start'], 'sta']);
  assert.deepEqual(complete('signal US', COMMAND_NAMES), [['USR1', 'USR2'], 'US']);
  assert.deepEqual(complete('signal sigter', COMMAND_NAMES)[0], ['TERM']);
  assert.deepEqual(complete('die K', COMMAND_NAMES)[0], ['KILL']);
  assert.deepEqual(complete('status --w', COMMAND_NAMES)[0], ['--watch']);
  assert.deepEqual(complete('inc ', COMMAND_NAMES)[0], []);
});
