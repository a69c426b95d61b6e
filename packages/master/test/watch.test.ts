import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeDebouncer, describeChange, entriesAlong } from '../src/watch.js';

test('ChangeDebouncer: an event, then quiet: one change, quietMs after the last event', () => {
  const d = new ChangeDebouncer('a', 250);
  assert.deepEqual(d.event('b', 1000), { kind: 'recheck', at: 1250 });
  // More writes: each pushes the look out.
  assert.deepEqual(d.event('c', 1100), { kind: 'recheck', at: 1350 });
  assert.deepEqual(d.look('c', 1250), { kind: 'recheck', at: 1350 });
  assert.deepEqual(d.look('c', 1350), { kind: 'changed', identity: 'c', previous: 'a' });
  assert.equal(d.current, 'c');
  assert.deepEqual(d.look('c', 5000), { kind: 'idle' });
});

test('ChangeDebouncer: still moving at the look (no event, e.g. the poll): looked at again', () => {
  const d = new ChangeDebouncer('a', 250);
  assert.deepEqual(d.look('b', 1000), { kind: 'recheck', at: 1250 });
  assert.deepEqual(d.look('b2', 1250), { kind: 'recheck', at: 1500 });
  assert.deepEqual(d.look('b2', 1500), { kind: 'changed', identity: 'b2', previous: 'a' });
});

test('ChangeDebouncer: missing is never a change; back as it was is no change either', () => {
  const d = new ChangeDebouncer('a', 250);
  d.event(null, 0);
  assert.deepEqual(d.look(null, 250), { kind: 'idle' });
  d.event('a', 300);
  assert.deepEqual(d.look('a', 550), { kind: 'idle' });
  assert.equal(d.current, 'a');
});

test('ChangeDebouncer: rebase accepts a state without calling it a change', () => {
  const d = new ChangeDebouncer('a', 250);
  d.event('b', 0);
  d.rebase('b');
  assert.deepEqual(d.look('b', 250), { kind: 'idle' });
});

test('entriesAlong: every directory entry on the way', () => {
  assert.deepEqual(entriesAlong('/srv/app/current/bin/server'), [
    ['/', 'srv'],
    ['/srv', 'app'],
    ['/srv/app', 'current'],
    ['/srv/app/current', 'bin'],
    ['/srv/app/current/bin', 'server'],
  ]);
});

test('describeChange: which kind of deploy it was', () => {
  assert.equal(describeChange('/r/1/app|1:10|5|100', '/r/2/app|1:11|5|100'), 'now resolves to /r/2/app');
  assert.equal(describeChange('/a|1:10|5|100', '/a|1:11|5|100'), 'replaced by another file');
  assert.equal(describeChange('/a|1:10|5|100', '/a|1:10|6|200'), 'written in place');
  assert.equal(describeChange(null, '/a|1:10|6|200'), 'it appeared');
});

test('PathWatcher: without inotify (fs.watch fails), the poll finds the change', async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { PathWatcher } = await import('../src/watch.js');
  const dir = mkdtempSync(join(tmpdir(), 'ein-watch-'));
  const file = join(dir, 'app');
  writeFileSync(file, 'v1');
  const warnings: string[] = [];
  const changes: string[] = [];
  const failing = (() => {
    throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
  }) as unknown as typeof import('node:fs').watch;
  const w = new PathWatcher({
    path: file,
    onChange: (p, how) => changes.push(`${p}: ${how}`),
    quietMs: 20,
    pollMs: 20,
    warn: (m) => warnings.push(m),
    debug: () => undefined,
    now: () => performance.now(),
    watch: failing,
  });
  try {
    w.start();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /cannot watch .*ENOSPC.*polling every 0.02s instead/);
    writeFileSync(file, 'v2 longer');
    const end = Date.now() + 10_000;
    while (changes.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(changes, [`${file}: written in place`]);
  } finally {
    w.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
