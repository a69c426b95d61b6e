/**
 * Issue 11 (hardening, round two), black-box: each defect found by trying to break the
 * master, with the real CLI, real children, real sockets and real signals.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, alive, childrenOf, cleanupAll, fixture, httpGet, runCli, sleep, startMaster, tempDir, until } from './harness.js';
import { zombiesOf } from './proc.js';

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

// ---- 3. reaping what workers leave behind: subreaper, PID 1 ---------------------------

test('3: as a subreaper the master adopts and reaps what a worker leaves behind, and stops what no live worker claims', async () => {
  const dir = tempDir();
  // The worker leaves an orphan that soon exits (o), and a daemon in its own session (d).
  const script =
    'echo $$ > "$0/w"; (sleep 2 & echo $! > "$0/o"); (setsid sleep 1000 & echo $! > "$0/d"); ' +
    'trap "exit 0" USR2; while :; do sleep 0.1; done';
  const m = startMaster(['-m', '0', '--', 'sh', '-c', script, dir], { dir });
  await m.ready(1);
  const read = async (f: string) =>
    (await until(f, () => existsSync(join(dir, f)) && Number(readFileSync(join(dir, f), 'utf8').trim()))) as number;
  const orphan = await read('o');
  const daemon = await read('d');
  const ppidOf = (pid: number) => {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
  };
  // Reparented to the master, not to init.
  await until('orphan adopted by the master', () => ppidOf(orphan) === m.pid);
  // It exits and is reaped: no zombie stays.
  await until('orphan reaped', () => !existsSync(`/proc/${orphan}`));
  assert.deepEqual(zombiesOf(m.pid), []);
  // The daemon is in no live worker's process group or session: stopped and reaped.
  await until('daemon stopped', () => !existsSync(`/proc/${daemon}`));
  assert.match(m.stderr, new RegExp(`Stopping process ${daemon} that a worker left behind`));
  assert.equal((await m.stop()).code, 0);
});

test('3: --no-subreaper leaves orphans to init', async () => {
  const dir = tempDir();
  const script = '(sleep 1000 & echo $! > "$0/o"); trap "exit 0" USR2; while :; do sleep 0.1; done';
  const m = startMaster(['--no-subreaper', '-m', '0', '--', 'sh', '-c', script, dir], { dir });
  await m.ready(1);
  const orphan = (await until('o', () => existsSync(join(dir, 'o')) && Number(readFileSync(join(dir, 'o'), 'utf8').trim()))) as number;
  await until('the subshell exited', () => {
    const st = readFileSync(`/proc/${orphan}/stat`, 'utf8');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) !== m.pid && childrenOf(m.pid).length === 1;
  });
  assert.equal(childrenOf(m.pid).includes(orphan), false);
  assert.equal((await m.stop()).code, 0);
  // It was in the worker's process group: gone with it.
  await until('orphan gone', () => !alive(orphan));
});

test('3: as PID 1 (unshare --pid) the master reaps every orphan: no zombies pile up', { skip: !canUnsharePid() && 'needs unshare --pid (root)' }, async () => {
  const dir = tempDir();
  const sock = join(dir, 'ctl.sock');
  // A worker that leaves a short-lived background process every 50 ms and counts them.
  const script = 'i=0; trap "exit 0" USR2; while :; do (sleep 0.01 &); i=$((i+1)); echo $i > "$0/n"; sleep 0.05; done';
  const u = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, BIN, '-d', sock, '-m', '0', '--', 'sh', '-c', script, dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  u.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => u.once('exit', r));
  let master = 0;
  try {
    master = await until('the master in its namespace', () => childrenOf(u.pid as number)[0]);
    await until('40 orphans made', () => existsSync(join(dir, 'n')) && Number(readFileSync(join(dir, 'n'), 'utf8')) >= 40, 20_000);
    assert.match(stderr, /Master 1 up/);
    const z = zombiesOf(master);
    assert.ok(z.length <= 2, `${z.length} zombies under the PID 1 master`);
  } finally {
    if (master) process.kill(master, 'SIGTERM');
    else u.kill('SIGKILL');
    await Promise.race([exited, sleep(15_000).then(() => u.kill('SIGKILL'))]);
  }
  assert.equal(existsSync(sock), false);
});

function canUnsharePid(): boolean {
  return spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;
}

// ---- 4. state is YAML that einhorn's clients read back exactly ------------------------

function yamlLoad(cmd: string, script: string, doc: string): unknown {
  const r = spawnSync(cmd, [fixture(script)], { input: `${JSON.stringify({ doc })}\n` });
  const out = JSON.parse(r.stdout.toString()) as { ok?: unknown; error?: string };
  assert.equal(out.error, undefined, `${cmd} could not load the state: ${out.error}\n${doc}`);
  return out.ok;
}

const hasRuby = spawnSync('ruby', ['-e', 'require "yaml"']).status === 0;
const hasPyYaml = spawnSync('python3', ['-c', 'import yaml']).status === 0;

for (const [name, cmd, script, ok] of [
  ['psych', 'ruby', 'yaml-load.rb', hasRuby],
  ['PyYAML', 'python3', 'yaml-load.py', hasPyYaml],
] as const) {
  test(`4: state with client-chosen strings (request_id "@x", args "-", "yes") reads back exactly in ${name}`, { skip: !ok && `${cmd} with YAML not installed` }, async () => {
    const dir = tempDir();
    const done = join(dir, 'done');
    const args = ['-', 'yes', '@x', "'q", '*a', '`t', 'No', '1:20', 'a: b', '#c'];
    const m = startMaster(['-m', '0', '--', process.execPath, fixture('ping-child.mjs'), ...args], {
      dir,
      env: { FIXTURE_REQUEST_ID: '@x', FIXTURE_DONE_FILE: done },
    });
    const [w] = await m.ready(1);
    await until('the ping', () => existsSync(done));
    const [r] = await m.ctl('state');
    const v = yamlLoad(cmd, script, r!.message) as Record<string, Record<string, unknown>>;
    const st = (v[':state'] ?? v['state']) as Record<string, unknown>;
    const get = (o: Record<string, unknown>, k: string) => o[`:${k}`] ?? o[k];
    assert.deepEqual(get(st, 'orig_cmd'), [process.execPath, fixture('ping-child.mjs'), ...args]);
    const children = get(st, 'children') as Record<string, Record<string, unknown>>;
    const me = children[String(w!.pid)] as Record<string, unknown>;
    assert.equal(get(me, 'pinged_request_id'), '@x');
    assert.equal(get(st, 'socket_path'), m.sockPath);
    assert.equal((await m.stop()).code, 0);
  });
}
