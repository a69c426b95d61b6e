import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgramError, resolveProgram } from '../src/program.js';

function tree(): { root: string; done: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'ein-program-'));
  for (const d of ['a', 'b', 'c', 'd']) mkdirSync(join(root, d));
  writeFileSync(join(root, 'b', 'app'), '#!/bin/sh\n', { mode: 0o644 }); // a file, not executable
  writeFileSync(join(root, 'c', 'app'), '#!/bin/sh\n', { mode: 0o755 });
  mkdirSync(join(root, 'd', 'app')); // a directory of that name
  writeFileSync(join(root, 'here'), '#!/bin/sh\n', { mode: 0o755 });
  return { root, done: () => rmSync(root, { recursive: true, force: true }) };
}

test('PATH search as execvp: misses and entries that cannot run are passed over', () => {
  const { root, done } = tree();
  try {
    const p = (...ds: string[]) => ds.map((d) => join(root, d)).join(':');
    assert.equal(resolveProgram('app', p('nope', 'a', 'b', 'd', 'c'), root), join(root, 'c', 'app'));
    assert.equal(resolveProgram('app', 'c', root), join(root, 'c', 'app'), 'a relative PATH entry is taken from cwd');
    assert.equal(resolveProgram('here', `${join(root, 'a')}::`, root), join(root, 'here'), 'an empty PATH entry is cwd');
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        assert.ok(e instanceof ProgramError);
        return e.message;
      }
      assert.fail('no error');
    };
    assert.equal(err(() => resolveProgram('app', p('a', 'b'), root)), 'program is not executable: app');
    assert.equal(err(() => resolveProgram('app', p('d', 'b'), root)), 'program is not a regular file: app', 'the first unusable one is told');
    assert.equal(err(() => resolveProgram('app', p('a', 'nope'), root)), 'program not found in PATH: app');
    assert.equal(err(() => resolveProgram('app', `${join(root, 'here')}`, root)), 'program not found in PATH: app', 'a PATH entry that is a file');
  } finally {
    done();
  }
});

test('a word with a slash is a path, relative to cwd', () => {
  const { root, done } = tree();
  try {
    assert.equal(resolveProgram('./here', '', root), join(root, 'here'));
    assert.equal(resolveProgram('c/app', '', root), join(root, 'c', 'app'));
    assert.equal(resolveProgram(join(root, 'c', 'app'), '', '/'), join(root, 'c', 'app'));
    assert.throws(() => resolveProgram('./nope', '', root), { name: 'ProgramError', message: 'program not found: ./nope' });
    assert.throws(() => resolveProgram('here/x', '', root), { message: 'program not found: here/x' }, 'ENOTDIR');
    assert.throws(() => resolveProgram('b/app', '', root), { message: 'program is not executable: b/app' });
    assert.throws(() => resolveProgram('d/app', '', root), { message: 'program is not a regular file: d/app' });
  } finally {
    done();
  }
});
