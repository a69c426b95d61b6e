/**
 * --watch, black-box: the real master upgrades when a deploy changes the watched path,
 * whichever way the deploy does it.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, cleanupAll, startMaster, tempDir, until } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

/** A release: a shell program that records "VERSION PID" in $OUT and then serves (sleeps). */
function release(path: string, version: string): void {
  writeFileSync(path, `#!/bin/sh\necho "${version} $$" >> "$OUT"\nexec sleep 600\n`, { mode: 0o755 });
}

/** The versions the workers started as, in order. */
function started(out: string): string[] {
  try {
    return readFileSync(out, 'utf8').trim().split('\n').map((l) => l.split(' ')[0] as string);
  } catch {
    return [];
  }
}

async function upgradedTo(m: ReturnType<typeof startMaster>, out: string, version: string, oldPid: number): Promise<void> {
  await m.waitLog(/upgrade done/);
  await until(`the new worker to run ${version}`, () => started(out).at(-1) === version);
  await until('the old worker to exit', () => !alive(oldPid));
  const [w] = await m.ready(1);
  assert.notEqual(w!.pid, oldPid);
}

test('--watch: a program written in place is rolled out', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  release(app, 'v1');
  const m = startMaster(['--watch', app, '-m', '0.2', '--', app], { dir, env: { OUT: out } });
  const [w] = await m.ready(1);
  release(app, 'v2');
  await upgradedTo(m, out, 'v2', w!.pid);
  assert.match(m.stderr, /--watch: \S+app changed \(written in place\); upgrading/);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--watch: a program renamed over is rolled out, once for a burst of writes', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  release(app, 'v1');
  const m = startMaster(['--watch', app, '-m', '0.2', '--', app], { dir, env: { OUT: out } });
  const [w] = await m.ready(1);
  for (let i = 0; i < 5; i++) {
    release(join(dir, `.app.new${i}`), 'v2');
    renameSync(join(dir, `.app.new${i}`), app);
  }
  await upgradedTo(m, out, 'v2', w!.pid);
  assert.match(m.stderr, /--watch: \S+app changed \(replaced by another file\); upgrading/);
  assert.equal(m.stderr.match(/; upgrading/g)?.length, 1, m.stderr);
  assert.deepEqual(started(out), ['v1', 'v2']);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--watch: a Capistrano-style `current` symlink flipped is rolled out, and flipped back', async () => {
  const dir = tempDir();
  const out = join(dir, 'out');
  for (const v of ['1', '2']) {
    mkdirSync(join(dir, 'releases', v, 'bin'), { recursive: true });
    release(join(dir, 'releases', v, 'bin', 'server'), `v${v}`);
  }
  const current = join(dir, 'current');
  symlinkSync(join('releases', '1'), current);
  const program = join(current, 'bin', 'server');
  const flip = (v: string) => {
    // ln -sfn as deploy tools do it: a new link under a temporary name, renamed over.
    symlinkSync(join('releases', v), join(dir, 'current.tmp'));
    renameSync(join(dir, 'current.tmp'), current);
  };
  const m = startMaster(['--watch', program, '-m', '0.2', '--', program], { dir, env: { OUT: out } });
  const [w1] = await m.ready(1);
  flip('2');
  await upgradedTo(m, out, 'v2', w1!.pid);
  assert.match(m.stderr, /changed \(now resolves to \S+releases\/2\/bin\/server\); upgrading/);
  // The watches follow the link: the next flip is seen too.
  const [w2] = await m.ready(1);
  flip('1');
  await upgradedTo(m, out, 'v1', w2!.pid);
  assert.deepEqual(started(out), ['v1', 'v2', 'v1']);
  // The release the link points to, written in place where it really is, is seen at once.
  const [w3] = await m.ready(1);
  const from = m.stderr.length;
  release(join(dir, 'releases', '1', 'bin', 'server'), 'v1b');
  await until('the change noticed', () => /changed \(written in place\); upgrading/.test(m.stderr.slice(from)), 5000);
  await until('the v1b worker', () => started(out).at(-1) === 'v1b');
  await until('the previous worker to exit', () => !alive(w3!.pid));
  await m.ready(1);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--watch: after a reload of the master, the new image watches the path', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  release(app, 'v1');
  const m = startMaster(['--watch', app, '-m', '0.2', '--', app], { dir, env: { OUT: out } });
  const [w] = await m.ready(1);
  assert.match((await m.ctl('reload')).at(-1)!.message, /Reload done/);
  release(join(dir, '.app.new'), 'v2');
  renameSync(join(dir, '.app.new'), app);
  await upgradedTo(m, out, 'v2', w!.pid);
  assert.equal(m.stderr.match(/; upgrading/g)?.length, 1, m.stderr);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--watch: a program that is a symlink itself: the file it points to, written in place, is seen at once', async () => {
  const dir = tempDir();
  const out = join(dir, 'out');
  mkdirSync(join(dir, 'releases'));
  const real = join(dir, 'releases', 'app-1');
  release(real, 'v1');
  const app = join(dir, 'app');
  symlinkSync(join('releases', 'app-1'), app);
  const m = startMaster(['--watch', app, '-m', '0.2', '--', app], { dir, env: { OUT: out } });
  const [w] = await m.ready(1);
  release(real, 'v2');
  // The directory of the file it resolves to is watched (the 10 s safety poll would be later than this bound).
  await until('the change noticed', () => /changed \(written in place\); upgrading/.test(m.stderr), 5000);
  await upgradedTo(m, out, 'v2', w!.pid);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});
