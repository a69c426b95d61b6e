/**
 * Issue 11 (hardening, round two), black-box: each defect found by trying to break the
 * master, with the real CLI, real children, real sockets and real signals.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, cleanupAll, fixture, httpGet, runCli, startMaster, tempDir } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

const launched = (stderr: string) => (stderr.match(/===> Launched \d+/g) ?? []).length;

// ---- 1. a worker that exits right after its ACK -------------------------------------

test('1: workers that exit right after their ack are failed starts: -r gives up after 3 spawns', async () => {
  const dir = tempDir();
  const rel = join(dir, 'release');
  writeFileSync(rel, 'exit-after-ack\n');
  const m = startMaster(['-n', '2', '-r', '2', '-m', 'manual', '-s', '0.2', '-b', '127.0.0.1:0', '--', process.execPath, fixture('release-child.mjs')], {
    dir,
    env: { FIXTURE_RELEASE_FILE: rel },
  });
  await m.waitLog(/Giving up after 3 consecutive failed starts/, 30_000);
  const [st] = await m.ctl('status');
  const state = (st as unknown as { state: { gave_up: boolean; workers: unknown[] } }).state;
  assert.equal(state.gave_up, true);
  assert.equal(launched(m.stderr), 3, 'two at the start, one probe, then it gave up');
  assert.deepEqual(state.workers, []);
  assert.equal((await m.stop()).code, 0);
});

test('1: an upgrade to a release whose workers exit right after their ack is abandoned; the old ones keep serving', async () => {
  const dir = tempDir();
  const rel = join(dir, 'release');
  writeFileSync(rel, 'good\n');
  const m = startMaster(['-n', '2', '-r', '2', '-m', 'manual', '-s', '0.2', '-b', '127.0.0.1:0', '--', process.execPath, fixture('release-child.mjs')], {
    dir,
    env: { FIXTURE_RELEASE_FILE: rel },
  });
  const port = await m.port();
  const old = (await m.ready(2)).map((w) => w.pid).sort();
  writeFileSync(rel, 'exit-after-ack\n');
  const replies = await m.ctl('upgrade', [], { timeoutMs: 60_000 });
  assert.equal(replies.at(-1)?.message, 'Upgrade failed');
  assert.match(replies.at(-2)?.message ?? '', /failed/);
  const ws = await m.workers();
  assert.deepEqual(ws.map((w) => w.pid).sort(), old, 'the old workers, still there');
  assert.ok(ws.every((w) => w.state === 'up' && w.generation === 0));
  assert.match(await httpGet(port), / good$/m);
  assert.equal((await m.stop()).code, 0);
});

// ---- 2. planted symlinks at the pidfile's temporary name and at the lockfile -----------

test('2: a symlink planted at the pidfile temporary name is not followed; the pidfile is written', async () => {
  const dir = tempDir();
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious\n');
  // The shell plants the link at the name the master used to write (its pid is the shell's:
  // exec), then execs the master.
  const script =
    'ln -s "$1/victim" "$1/.app.pid.$$.tmp" && exec "$2" "$3" -d "$1/ctl.sock" -e "$1/app.pid" -m 0 -- sleep 1000';
  const m = startMaster([], { dir, socket: false, prefix: ['sh', '-c', script, 'sh', dir, process.execPath, BIN] });
  await m.ready(1);
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.equal(readFileSync(join(dir, 'app.pid'), 'utf8'), `${m.pid}\n`);
  assert.equal(lstatSync(join(dir, 'app.pid')).isFile(), true);
  assert.equal((await m.stop()).code, 0);
});

test('2: a dangling symlink at -f: one line, exit 1, the file it names is not created', async () => {
  const dir = tempDir();
  symlinkSync(join(dir, 'created-by-attacker'), join(dir, 'app.lock'));
  const r = await runCli(['-d', join(dir, 'ctl.sock'), '-f', join(dir, 'app.lock'), '--', 'sleep', '1000']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^einhyrningsins: lockfile .*app\.lock is a symbolic link; refusing to follow it\n$/);
  assert.equal(existsSync(join(dir, 'created-by-attacker')), false);
  assert.equal(existsSync(join(dir, 'ctl.sock')), false);
  assert.equal(lstatSync(join(dir, 'app.lock')).isSymbolicLink(), true);
});
