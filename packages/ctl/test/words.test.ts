import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitCommands } from '../src/words.js';

test('words are split on blanks; ; separates commands; blank pieces are skipped', () => {
  assert.deepEqual(splitCommands('inc'), [['inc']]);
  assert.deepEqual(splitCommands('  signal   HUP\tUSR2  '), [['signal', 'HUP', 'USR2']]);
  assert.deepEqual(splitCommands('signal HUP; state'), [['signal', 'HUP'], ['state']]);
  assert.deepEqual(splitCommands('inc;dec;;  ; status;'), [['inc'], ['dec'], ['status']]);
  assert.deepEqual(splitCommands(''), []);
  assert.deepEqual(splitCommands('   '), []);
  assert.deepEqual(splitCommands(';'), []);
});

test('single quotes keep everything literally', () => {
  assert.deepEqual(splitCommands("config 'a b; c'"), [['config', 'a b; c']]);
  assert.deepEqual(splitCommands("x 'a\\b' 'it''s'"), [['x', 'a\\b', 'its']]);
  assert.deepEqual(splitCommands("x ''"), [['x', '']], 'an empty quoted word is a word');
  assert.deepEqual(splitCommands("x \"\" ''"), [['x', '', '']]);
});

test('double quotes: backslash escapes only " \\ $ `', () => {
  assert.deepEqual(splitCommands('x "a b" "c;d"'), [['x', 'a b', 'c;d']]);
  assert.deepEqual(splitCommands('x "say \\"hi\\"" "a\\\\b" "\\n"'), [['x', 'say "hi"', 'a\\b', '\\n']]);
  assert.deepEqual(splitCommands('x "\\$HOME" "\\`"'), [['x', '$HOME', '`']]);
});

test('quotes join with the letters around them; a backslash outside quotes escapes the next character', () => {
  assert.deepEqual(splitCommands(`x a"b c"'d e'f`), [['x', 'ab cd ef']]);
  assert.deepEqual(splitCommands('x a\\ b c\\;d'), [['x', 'a b', 'c;d']]);
  assert.deepEqual(splitCommands('x \\"'), [['x', '"']]);
  assert.deepEqual(splitCommands('x a\\'), [['x', 'a']], 'a trailing backslash is dropped');
});

test('an unbalanced quote is an error naming the quote', () => {
  assert.throws(() => splitCommands('inc "x'), /unbalanced " quote/);
  assert.throws(() => splitCommands("signal 'HUP"), /unbalanced ' quote/);
  assert.throws(() => splitCommands('a "b\\"'), /unbalanced " quote/);
});
