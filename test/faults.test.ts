/**
 * Faults the master must survive, black-box: grandchildren, many workers,
 * running out of file descriptors, a full disk, and leaks over many upgrades.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, watch, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { alive, childrenOf, cleanupAll, fixture, httpGet, startMaster, tempDir, until } from './harness.js';
import { openFdCount, zombiesOf } from './proc.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

test('what a worker leaves running in its process group goes with it', async () => {
  const out = tempDir();
  const m = startMaster(['-m', '0', '--', 'sh', '-c', 'sleep 1000 & echo $! > "$0/gc"; trap "exit 0" USR2; while :; do sleep 0.1; done', out]);
  await m.ready(1);
  const gc = Number(await until('grandchild pid', () => existsSync(join(out, 'gc')) && readFileSync(join(out, 'gc'), 'utf8').trim()));
  assert.ok(alive(gc));
  await m.stop();
  await until(`grandchild ${gc} gone`, () => !alive(gc));
});

test('64 workers start, are listed, and all stop', async () => {
  const m = startMaster(['-n', '64', '-b', '127.0.0.1:0', '-m', '0', '--', 'sleep', '1000']);
  await m.port();
  const ws = await m.ready(64, 60_000);
  assert.equal(new Set(ws.map((w) => w.slot)).size, 64);
  const r = await m.stop(30_000);
  assert.equal(r.code, 0);
  for (const w of ws) assert.equal(alive(w.pid), false);
});

test('out of file descriptors (low ulimit -n, a flood of control connections): survives and recovers', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0', '-m', '0', '-s', '0.2', '--', 'sleep', '1000'], {
    prefix: ['prlimit', '--nofile=48:48', '--'],
  });
  await m.port();
  await m.ready(2);
  const sock = m.sockPath;
  const master = m.pid;
  // Hold far more connections than the master has fds for.
  const held: Socket[] = [];
  for (let i = 0; i < 120; i++) {
    const s = createConnection(sock);
    s.on('error', () => undefined);
    held.push(s);
  }
  await new Promise((r) => setTimeout(r, 500));
  // Make it respawn while it is short of fds.
  for (const p of childrenOf(master)) process.kill(p, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 1000));
  for (const s of held) s.destroy();
  // Recovered: answers, and has its two workers back.
  const ws = await until(
    'recovery',
    async () => {
      const [r] = await m.ctl('status');
      const st = (r as unknown as { state: { workers: Array<{ pid: number; state: string }> } }).state;
      st.workers.forEach((w) => m.seenChildren.add(w.pid));
      return st.workers.length === 2 && st.workers.every((w) => w.state === 'up') ? st.workers : null;
    },
    30_000,
    200,
  );
  assert.equal(ws.length, 2);
  assert.doesNotMatch(m.stderr, /internal error|TypeError|RangeError/);
  await m.stop();
});

const canMount = (() => {
  const probe = tempDir('ein-mount-');
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  return ok;
})();

test('a full disk for the pidfile: one clear line, exit 1, nothing left', { skip: canMount ? false : 'cannot mount a tmpfs here' }, async () => {
  const dir = tempDir();
  const full = join(dir, 'full');
  mkdirSync(full);
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', full]).status, 0);
  try {
    // Fill it up.
    try {
      writeFileSync(join(full, 'filler'), Buffer.alloc(64 * 1024));
    } catch {
      /* ENOSPC: full, as wanted */
    }
    const m = startMaster(['-e', join(full, 'm.pid'), '-m', '0', '--', 'sleep', '1000'], { dir });
    const r = await m.exit;
    assert.equal(r.code, 1);
    const lines = m.stderr.trim().split('\n');
    assert.equal(lines.length, 1, m.stderr);
    assert.match(lines[0]!, /^einhyrningsins: cannot write pidfile .*m\.pid: ENOSPC/);
    assert.deepEqual(readdirSync(full).sort(), ['filler']);
    assert.equal(existsSync(m.sockPath), false);
  } finally {
    spawnSync('umount', [full]);
  }
});

test('100 upgrades: no fd leak, no zombie, the right workers', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0', '-m', '0', '--', 'sleep', '1000']);
  await m.port();
  await m.ready(2);
  const fdsBefore = openFdCount(m.pid);
  for (let i = 0; i < 100; i++) {
    const replies = await m.ctl('upgrade');
    assert.equal(replies.at(-1)!.message, 'Upgrade done');
  }
  const ws = await until('old generations gone', async () => {
    const w = await m.workers();
    return w.length === 2 && w.every((x) => x.generation === 100 && x.state === 'up') && childrenOf(m.pid).length === 2 ? w : null;
  });
  assert.equal(ws.length, 2);
  assert.deepEqual(zombiesOf(m.pid), []);
  await until('fds back to the start', () => openFdCount(m.pid) <= fdsBefore, 5000);
  await m.stop();
});

test('after a SIGKILLed master (no -k) its children keep serving; a new master on the port refuses cleanly', async () => {
  const first = startMaster(['-n', '1', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', process.execPath, fixture('node-http-child.mjs')], {
    env: { FIXTURE_ACK: '1' },
  });
  const port = await first.port();
  const [orphan] = await first.ready(1);
  process.kill(first.pid, 'SIGKILL');
  await first.exit;
  assert.ok(JSON.parse(await httpGet(port)).pid === orphan!.pid, 'the orphan still serves');
  const second = startMaster(['-n', '1', '-b', `127.0.0.1:${port},r`, '-m', '0', '--', 'sleep', '1000'], { dir: first.dir });
  const r = await second.exit;
  assert.equal(r.code, 1);
  assert.match(second.stderr.trim(), new RegExp(`^einhyrningsins: cannot bind -b 127\\.0\\.0\\.1:${port},r: address already in use$`));
  process.kill(orphan!.pid, 'SIGKILL');
  await until('orphan gone', () => !alive(orphan!.pid));
  // The stale control socket is taken over by the next master, which leaves nothing.
  const third = startMaster(['-n', '0', '--', 'sleep', '1'], { dir: first.dir });
  await third.waitLog(/Removing stale control socket/);
  await third.stop();
});

test('--nice MASTER:WORKER sets the niceness of the master and of every child', async () => {
  const m = startMaster(['--nice', '3:7', '-n', '2', '-m', '0', '--', 'sleep', '1000']);
  const ws = await m.ready(2);
  const niceOf = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  };
  assert.equal(niceOf(m.pid), 3);
  for (const w of ws) assert.equal(niceOf(w.pid), 7);
  await m.stop();
});

test('a log reader that goes away (EPIPE on stderr) does not take the master down', async () => {
  const m = startMaster(['-n', '1', '-m', '0', '--', 'sleep', '1000']);
  const [w] = await m.ready(1);
  m.proc.stderr!.destroy(); // the reading end of the master's stderr is gone
  process.kill(w!.pid, 'SIGKILL'); // the master logs a warning about it: a write to a broken pipe
  const [again] = await until('a replacement worker', async () => {
    const ws = await m.workers();
    return ws.length === 1 && ws[0]!.pid !== w!.pid && ws[0]!.state === 'up' ? ws : null;
  });
  assert.ok(again);
  const r = await m.stop();
  assert.deepEqual(r, { code: 0, signal: null });
});

test('a SIGTERM while the master is starting (its socket file just created) stops it cleanly and leaves no file', async () => {
  // Regression: signal handlers were installed after start-up, so a TERM in that window
  // took Node's default action and left the control socket behind (16 of 20 tries).
  for (let i = 0; i < 10; i++) {
    const dir = tempDir();
    const watcher = watch(dir);
    const m = startMaster(['-n', '1', '-m', '0', '-e', join(dir, 'pid'), '--', 'sleep', '1000'], { dir });
    watcher.once('change', () => {
      watcher.close();
      m.proc.kill('SIGTERM');
    });
    const r = await m.exit;
    watcher.close();
    assert.deepEqual(r, { code: 0, signal: null }, `try ${i}: ${m.stderr}`);
    assert.deepEqual(readdirSync(dir), [], `try ${i}: nothing left in the directory`);
  }
});
