import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planAppend, rotationRenames, type FileShape, type Step } from '../src/logfile/rotation.js';

const show = (steps: Step[]): string[] => steps.map((s) => (s.kind === 'rotate' ? 'ROTATE' : s.data.toString()));

test('planAppend: lines that fit are written together; the line that would overflow starts a new file', () => {
  const shape: FileShape = { size: 0, atBoundary: true };
  assert.deepEqual(show(planAppend(shape, Buffer.from('aaa\nbbb\nccc\n'), 10)), ['aaa\nbbb\n', 'ROTATE', 'ccc\n']);
  assert.deepEqual(shape, { size: 4, atBoundary: true });
});

test('planAppend: exactly maxBytes stays in one file; the next write rotates first', () => {
  const shape: FileShape = { size: 0, atBoundary: true };
  assert.deepEqual(show(planAppend(shape, Buffer.from('1234\n6789\n'), 10)), ['1234\n6789\n']);
  assert.deepEqual(shape, { size: 10, atBoundary: true });
  assert.deepEqual(show(planAppend(shape, Buffer.from('x\n'), 10)), ['ROTATE', 'x\n']);
});

test('planAppend: a line longer than maxBytes is written whole, alone, and never split', () => {
  const shape: FileShape = { size: 3, atBoundary: true };
  assert.deepEqual(show(planAppend(shape, Buffer.from('0123456789ABCDEF\nz\n'), 8)), ['ROTATE', '0123456789ABCDEF\n', 'ROTATE', 'z\n']);
  assert.deepEqual(shape, { size: 2, atBoundary: true });
});

test('planAppend: a started line is finished in its file before any rotation', () => {
  const shape: FileShape = { size: 9, atBoundary: false };
  assert.deepEqual(show(planAppend(shape, Buffer.from('end\nnext\n'), 10)), ['end\n', 'ROTATE', 'next\n']);
  const s2: FileShape = { size: 2, atBoundary: true };
  // an unterminated tail that fits stays; one that does not starts the next file
  assert.deepEqual(show(planAppend(s2, Buffer.from('a\nbc'), 10)), ['a\nbc']);
  // a partial line alone that fits is appended, not moved to a new file
  const s4: FileShape = { size: 6, atBoundary: true };
  assert.deepEqual(show(planAppend(s4, Buffer.from('half a li'), 20)), ['half a li']);
  assert.deepEqual(s4, { size: 15, atBoundary: false });
  const s3: FileShape = { size: 6, atBoundary: true };
  assert.deepEqual(show(planAppend(s3, Buffer.from('a\nbcdef'), 10)), ['a\n', 'ROTATE', 'bcdef']);
  assert.deepEqual(s3, { size: 5, atBoundary: false });
});

test('planAppend: maxBytes 0 never rotates; an empty file is never rotated', () => {
  const shape: FileShape = { size: 1e9, atBoundary: true };
  assert.deepEqual(show(planAppend(shape, Buffer.from('a\nb'), 0)), ['a\nb']);
  assert.deepEqual(shape, { size: 1e9 + 3, atBoundary: false });
  const empty: FileShape = { size: 0, atBoundary: true };
  assert.deepEqual(show(planAppend(empty, Buffer.from('toolong\n'), 3)), ['toolong\n']);
});

test('planAppend: many rotations in one batch, every piece a run of whole lines within the limit', () => {
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${'x'.repeat(i % 17)}\n`);
  const shape: FileShape = { size: 0, atBoundary: true };
  const steps = planAppend(shape, Buffer.from(lines.join('')), 64);
  const files: string[] = [''];
  for (const s of steps) {
    if (s.kind === 'rotate') files.push('');
    else files[files.length - 1] += s.data.toString();
  }
  assert.equal(files.join(''), lines.join(''));
  for (const f of files) {
    assert.ok(f.length <= 64 && f.length > 0, `${f.length}`);
    assert.ok(f.endsWith('\n'));
  }
});

test('rotationRenames: supervisord\'s order, oldest first; none for 0 backups', () => {
  assert.deepEqual(rotationRenames('/l/a.log', 3), [
    ['/l/a.log.2', '/l/a.log.3'],
    ['/l/a.log.1', '/l/a.log.2'],
    ['/l/a.log', '/l/a.log.1'],
  ]);
  assert.deepEqual(rotationRenames('/l/a.log', 1), [['/l/a.log', '/l/a.log.1']]);
  assert.deepEqual(rotationRenames('/l/a.log', 0), []);
});
