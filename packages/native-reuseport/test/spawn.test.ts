// The addon's spawn off the event loop (native/spawn.c): posix_spawn on its own threads,
// a registry of the pids it made, reaped with reapSpawned.
import assert from 'node:assert/strict';
import { spawn as nodeSpawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import {
  close,
  isSpawned,
  launcherPath,
  listenTcp,
  openFds,
  reapSpawned,
  setChildSubreaper,
  socketPair,
  spawnInit,
  spawnResults,
  spawnStart,
  spawnSync,
  spawnWait,
  spawnedAdopt,
  spawnsInFlight,
  type ReapedChild,
  type SpawnResult,
} from '../src/index.js';

// One process-wide hook: results go to whoever waits for that id.
const waiting = new Map<number, (r: SpawnResult) => void>();
const early: SpawnResult[] = [];
spawnInit(() => {
  for (const r of spawnResults()) {
    const w = waiting.get(r.id);
    waiting.delete(r.id);
    if (w) w(r);
    else early.push(r);
  }
});

function started(id: number): Promise<SpawnResult> {
  const got = early.findIndex((r) => r.id === id);
  if (got >= 0) return Promise.resolve(early.splice(got, 1)[0]!);
  return new Promise((resolve) => waiting.set(id, resolve));
}

/** Reap until every pid of `pids` has exited (on SIGCHLD, as the master does), bounded. */
async function reapAll(pids: Iterable<number>, ms = 20_000): Promise<Map<number, ReapedChild>> {
  const want = new Set(pids);
  const got = new Map<number, ReapedChild>();
  const end = Date.now() + ms;
  const take = () => {
    for (const r of reapSpawned()) got.set(r.pid, r);
  };
  take();
  while ([...want].some((p) => !got.has(p))) {
    if (Date.now() > end) throw new Error(`not reaped: ${[...want].filter((p) => !got.has(p)).join(' ')}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 200); // SIGCHLD may have been taken by an earlier wait
      process.once('SIGCHLD', () => {
        clearTimeout(t);
        resolve();
      });
    });
    take();
  }
  return got;
}

const env = (extra: Record<string, string> = {}) => Object.entries({ PATH: process.env.PATH ?? '/usr/bin:/bin', ...extra }).map(([k, v]) => `${k}=${v}`);

async function run(argv: string[], fds = [0, 1, 2], vars: Record<string, string> = {}): Promise<{ pid: number; code: number | null; signal: number | null }> {
  const r = await started(spawnStart(launcherPath, [launcherPath, ...argv], env(vars), fds));
  if (!('pid' in r)) throw new Error(r.error);
  const exits = await reapAll([r.pid]);
  const e = exits.get(r.pid)!;
  return { pid: r.pid, code: e.code, signal: e.signal };
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'einhyrningsins-spawn-'));
}

test('spawnStart: the child gets fds 0..n as given, the environment given, default signals and an empty mask', async () => {
  const dir = tmp();
  try {
    const lfd = listenTcp({ host: '127.0.0.1', port: 0, family: 4, reuseAddr: true, reusePort: false, nonBlock: false, v6Only: null, backlog: 8 });
    const out = path.join(dir, 'out');
    const outFd = fs.openSync(out, 'w');
    const before = openFds();
    // Node ignores SIGPIPE and blocks nothing in JS; the child must see neither ignored nor blocked signals.
    const script =
      'grep -E "^(SigBlk|SigIgn):" /proc/self/status; ls -l /proc/self/fd/3 | sed "s/.*-> //"; ' +
      'cat /proc/self/fdinfo/3 | grep flags; echo "ONLY=$ONLY"; env | grep -c =';
    const id = spawnStart(launcherPath, [launcherPath, '--close-from', '4', '--', '/bin/sh', 'sh', '-c', script], ['ONLY=yes'], [0, outFd, outFd, lfd]);
    // The fds were dup'ed before spawnStart returned: the caller may close its own now.
    fs.closeSync(outFd);
    const r = await started(id);
    assert.ok('pid' in r, JSON.stringify(r));
    const exits = await reapAll([r.pid]);
    assert.deepEqual(exits.get(r.pid), { pid: r.pid, code: 0, signal: null });
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000'], lines.join('\n'));
    assert.match(lines[2]!, /^socket:\[\d+\]$/);
    // fd 3 is not close-on-exec in the child (dup2 cleared it; 02000000 is O_CLOEXEC).
    assert.equal(Number.parseInt(lines[3]!.split(/\s+/)[1]!, 8) & 0o2000000, 0);
    assert.deepEqual(lines.slice(4), ['ONLY=yes', '2'], 'only ONLY and what sh itself sets (PWD)');
    close(lfd);
    assert.deepEqual(openFds(), before.filter((fd) => fd !== outFd && fd !== lfd), 'no fd left in this process');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('spawnStart leaves no fd behind, in this process or the child', async () => {
  const before = openFds();
  const [a, b] = socketPair();
  const dir = tmp();
  try {
    const out = path.join(dir, 'fds');
    const o = fs.openSync(out, 'w');
    const id = spawnStart(launcherPath, [launcherPath, '--close-from', '5', '--', '/bin/sh', 'sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "'], env(), [0, o, 2, a, b]);
    fs.closeSync(o);
    const r = await started(id);
    assert.ok('pid' in r);
    await reapAll([r.pid]);
    // 0-4 as given (ls opens one more to read the directory: 5).
    assert.deepEqual(fs.readFileSync(out, 'utf8').trim().split(' ').map(Number).filter((n) => n !== 5), [0, 1, 2, 3, 4]);
  } finally {
    close(a);
    close(b);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(openFds(), before, 'no fd left in this process');
});

test('fds 0, 1 and 2 reach the program in blocking mode (a non-blocking pipe as its stdout)', async () => {
  const dir = tmp();
  try {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const rd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wr = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    const res = path.join(dir, 'flags');
    const o = fs.openSync(res, 'w');
    // fd 1 is the fifo's non-blocking write end; the program reports its flags on fd 3.
    const id = spawnStart(launcherPath, [launcherPath, '--', '/bin/sh', 'sh', '-c', 'grep flags /proc/self/fdinfo/1 >&3'], env(), [0, wr, 2, o]);
    fs.closeSync(o);
    const r = await started(id);
    assert.ok('pid' in r);
    await reapAll([r.pid]);
    const flags = Number.parseInt(fs.readFileSync(res, 'utf8').trim().split(/\s+/)[1]!, 8);
    assert.equal(flags & fs.constants.O_NONBLOCK, 0, `O_NONBLOCK still set: ${flags.toString(8)}`);
    fs.closeSync(rd);
    fs.closeSync(wr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a launcher that cannot be executed: the spawn reports one line with the errno, no pid, nothing registered', async () => {
  const dir = tmp();
  try {
    const plain = path.join(dir, 'not-executable');
    fs.writeFileSync(plain, '#!/bin/sh\n', { mode: 0o644 });
    for (const [file, code] of [
      [path.join(dir, 'missing'), 'ENOENT'],
      [plain, 'EACCES'],
    ] as const) {
      const before = openFds();
      const r = await started(spawnStart(file, [file], env(), [0, 1, 2]));
      assert.ok(!('pid' in r), JSON.stringify(r));
      assert.equal(r.code, code);
      assert.equal(r.error.split('\n').length, 1);
      assert.ok(r.error.startsWith(`spawn ${file}: `), r.error);
      assert.deepEqual(openFds(), before);
      assert.throws(() => spawnSync(file, [file], env(), [0, 1, 2]), (e: NodeJS.ErrnoException) => e.code === code && e.message.startsWith(`spawn ${file}: `));
    }
    assert.equal(spawnsInFlight(), 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('exit statuses: many children exiting at once are each reported once, with their own code or signal', async () => {
  const n = 120;
  const ids = [];
  for (let i = 0; i < n; i++) {
    const body = i % 10 === 9 ? 'kill -TERM $$' : `exit ${i % 100}`;
    ids.push(spawnStart(launcherPath, [launcherPath, '--', '/bin/sh', 'sh', '-c', body], env(), [0, 1, 2]));
  }
  const results = await Promise.all(ids.map(started));
  const pids = results.map((r) => {
    assert.ok('pid' in r, JSON.stringify(r));
    return r.pid;
  });
  const exits = await reapAll(pids);
  assert.equal(exits.size, n);
  pids.forEach((pid, i) => {
    const want = i % 10 === 9 ? { pid, code: null, signal: os.constants.signals.SIGTERM } : { pid, code: i % 100, signal: null };
    assert.deepEqual(exits.get(pid), want, `child ${i}`);
    assert.equal(isSpawned(pid), false, 'forgotten once reaped');
  });
  assert.equal(spawnsInFlight(), 0);
  assert.deepEqual(reapSpawned(), [], 'nothing reported twice');
});

test('reapSpawned leaves other children alone: a child_process child still gets its exit event', async () => {
  const other = nodeSpawn('/bin/sh', ['-c', 'exit 7'], { stdio: 'ignore' });
  const otherExit = new Promise<number | null>((resolve) => other.once('exit', (code) => resolve(code)));
  const mine = await run(['--', '/bin/sh', 'sh', '-c', 'exit 3']);
  assert.equal(mine.code, 3);
  // Reap as often as SIGCHLD comes while the other one exits: it is libuv's to wait for.
  const t = setInterval(() => assert.deepEqual(reapSpawned(), []), 5);
  try {
    assert.equal(await otherExit, 7);
  } finally {
    clearInterval(t);
  }
});

test('spawnSync registers its pid as spawnStart does; spawnedAdopt takes a child made elsewhere', async () => {
  const pid = spawnSync(launcherPath, [launcherPath, '--', '/bin/sh', 'sh', '-c', 'exit 5'], env(), [0, 1, 2]);
  assert.equal(isSpawned(pid), true);
  assert.equal((await reapAll([pid])).get(pid)?.code, 5);
  assert.equal(isSpawned(pid), false);
  // A child we have but did not spawn here (as the workers after a reload's execve): an
  // orphan reparented to us as a subreaper, adopted, reaped as ours.
  setChildSubreaper(true);
  try {
    const sh = nodeSpawn('/bin/sh', ['-c', '(sleep 0.5; exit 9) & echo $!'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    sh.stdout!.on('data', (d) => (text += d));
    await new Promise((resolve) => sh.once('close', resolve));
    const orphan = Number(text.trim());
    spawnedAdopt(orphan);
    assert.equal(isSpawned(orphan), true);
    assert.deepEqual((await reapAll([orphan])).get(orphan), { pid: orphan, code: 9, signal: null });
  } finally {
    setChildSubreaper(false);
  }
});

test('spawnWait returns once nothing is in flight; every pid is then in spawnResults', async () => {
  const ids = new Set<number>();
  for (let i = 0; i < 20; i++) ids.add(spawnStart(launcherPath, [launcherPath, '--', '/bin/true', 'true'], env(), [0, 1, 2]));
  spawnWait();
  assert.equal(spawnsInFlight(), 0);
  // This thread never let the completion hook run: every result is still here, once.
  const got = spawnResults();
  assert.deepEqual(new Set(got.map((r) => r.id)), ids);
  assert.deepEqual(spawnResults(), []);
  const pids = got.flatMap((r) => ('pid' in r ? [r.pid] : []));
  for (const pid of pids) assert.equal(isSpawned(pid), true);
  await reapAll(pids);
});
