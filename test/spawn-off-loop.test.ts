/**
 * Workers are spawned off the event loop (issue 24): the master's control socket must keep
 * answering while 1,000 workers start. child_process.spawn forked the 60 MB master and waited
 * for the child's exec on the event loop's thread; now the addon's own threads posix_spawn the
 * launcher, and exits come from waitpid of exactly those pids on SIGCHLD. Black-box: the real
 * master, real children, the kernel's own record of which thread made each child.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, realpathSync } from 'node:fs';
import { alive, cleanupAll, startMaster, until } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

/** Which of `pid`'s threads each of its children was made by (/proc/PID/task/TID/children). */
function parentThreads(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    for (const c of text.split(' ')) if (c.trim() !== '') out.set(Number(c), Number(tid));
  }
  return out;
}

test('workers are spawned by a thread of the master other than its event loop', async () => {
  const m = startMaster(['-n', '4', '-m', '0', '--', 'sleep', '1000']);
  const ws = await m.ready(4);
  const threads = parentThreads(m.pid);
  for (const w of ws) {
    const tid = threads.get(w.pid);
    assert.ok(tid !== undefined, `worker ${w.pid} is the master's child`);
    // The event loop's thread is the one whose tid is the master's pid.
    assert.notEqual(tid, m.pid, `worker ${w.pid} was spawned on the event loop's thread`);
  }
  assert.equal((await m.stop()).code, 0);
});

test('-k: workers are spawned from the event loop\'s thread, and a reload does not give them their death signal', async () => {
  // PR_SET_PDEATHSIG fires when the child's parent *thread* ends, and the re-exec ends every
  // thread but the event loop's: a worker made by a spawner thread would get SIGUSR2 (sleep dies).
  const m = startMaster(['-k', '-n', '2', '-m', '0', '--', 'sleep', '1000']);
  const ws = await m.ready(2);
  const threads = parentThreads(m.pid);
  for (const w of ws) assert.equal(threads.get(w.pid), m.pid, `worker ${w.pid}'s parent thread`);
  const replies = await m.ctl('reload');
  assert.match(replies.at(-1)!.message, /Reload done/, JSON.stringify(replies));
  const after = await m.ready(2);
  assert.deepEqual(after.map((w) => w.pid).sort(), ws.map((w) => w.pid).sort(), 'the same workers after the reload');
  for (const w of ws) assert.ok(alive(w.pid), `worker ${w.pid} alive`);
  assert.equal((await m.stop()).code, 0);
});

test('a burst of workers that exit at once: every exit status reported, none taken for an orphan by the reaper', async () => {
  // The reaper (the master is a child subreaper) scans the master's children on each SIGCHLD;
  // a child made by a spawner thread whose pid has not reached the event loop yet must be left
  // alone: reaped there, its exit status would be lost (the worker never leaves 'starting').
  const n = 150;
  const m = startMaster(['-n', String(n), '-m', '0', '--', 'sh', '-c', 'exit 3']);
  await m.waitLog(/Master \d+ up/);
  const launched = () => [...m.stderr.matchAll(/===> Launched (\d+)/g)].map((x) => Number(x[1]));
  await until(`${n} workers launched`, () => launched().length >= n, 30_000);
  const pids = launched();
  const exitedOf = () =>
    new Map(
      [...m.stderr.matchAll(/(?:Exited worker (\d+) before it was ACKed |Worker (\d+) exited [^\n(]*)\((exit status \d+|killed by \w+)\)/g)].map((x) => [
        Number(x[1] ?? x[2]),
        x[3],
      ]),
    );
  await until(`every launched worker's exit reported (${n})`, () => pids.every((p) => exitedOf().has(p)), 30_000);
  const exits = exitedOf();
  for (const p of pids) assert.equal(exits.get(p), 'exit status 3', `worker ${p}`);
  assert.doesNotMatch(m.stderr, /that a worker left behind/, 'a worker taken for an orphan');
  assert.equal((await m.stop()).code, 0);
});

test('a reload right after start: the new image adopts every worker (the master\'s children are exactly its workers) and reaps them at stop', async () => {
  // Spawns still queued or in flight on the spawner's threads at the snapshot are waited
  // for (Runtime.flushSpawns); the adopted workers are registered with the addon and their
  // exits reaped as the others' (the stop below waits for every one).
  const n = 60;
  const m = startMaster(['-n', String(n), '-m', '0', '--', 'sleep', '1000']);
  await m.waitLog(/Master \d+ up/);
  const replies = await m.ctl('reload');
  assert.match(replies.at(-1)!.message, /Reload done/, JSON.stringify(replies));
  const ws = await m.ready(n, 30_000);
  const kids = [...parentThreads(m.pid).keys()];
  assert.deepEqual(kids.sort((a, b) => a - b), ws.map((w) => w.pid).sort((a, b) => a - b), 'the master\'s children are exactly its workers');
  assert.equal(new Set(ws.map((w) => w.pid)).size, n);
  assert.equal((await m.stop()).code, 0);
});

test('a worker starts with no signal blocked or ignored (the master ignores SIGPIPE), its stdio blocking, in the -d directory\'s cwd given', async () => {
  // What libuv's fork gave a child, now from posix_spawn + the launcher: SETSIGDEF/SETSIGMASK,
  // and signals 32-34 (the libc's own, left ignored by posix_spawn) back to their default.
  const m = startMaster(['-n', '1', '-m', '0', '--', 'sh', '-c', 'grep -E "^Sig(Blk|Ign):" /proc/self/status > sig.txt; grep flags /proc/self/fdinfo/2 >> sig.txt; pwd >> sig.txt; exec sleep 1000']);
  await m.ready(1);
  const file = `${m.dir}/sig.txt`;
  const lines = await until('the worker\'s report', () => {
    try {
      const l = readFileSync(file, 'utf8').trim().split('\n');
      return l.length === 4 ? l : null;
    } catch {
      return null;
    }
  });
  assert.deepEqual(lines.slice(0, 2), ['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000']);
  assert.equal(Number.parseInt(lines[2]!.split(/\s+/)[1]!, 8) & 0o4000, 0, 'fd 2 is not O_NONBLOCK');
  assert.equal(lines[3], realpathSync(m.dir), 'the worker runs in the master\'s cwd');
  assert.equal((await m.stop()).code, 0);
});
