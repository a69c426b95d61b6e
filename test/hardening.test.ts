/**
 * Issue 11 (hardening, round two), black-box: each defect found by trying to break the
 * master, with the real CLI, real children, real sockets and real signals.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, realpathSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, ROOT, SupervisorProc, alive, childrenOf, cleanupAll, fixture, httpGet, runCli, sleep, startMaster, tempDir, track, until } from './harness.js';
import { statusKb, zombiesOf } from './proc.js';

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
  // --min-ready: a new worker replaces an old one only once it has been up 1 s (default 0).
  const m = startMaster(['-n', '2', '-r', '2', '-m', 'manual', '-s', '0.2', '--min-ready', '1', '-b', '127.0.0.1:0', '--', process.execPath, fixture('release-child.mjs')], {
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

test('3: as a subreaper the master adopts and reaps what a worker leaves behind, and stops it once its worker is gone', async () => {
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
  // The daemon (its own session) is the master's too, and left alone while its worker lives.
  await until('daemon adopted by the master', () => ppidOf(daemon) === m.pid);
  assert.ok(alive(daemon));
  // Its worker goes (an upgrade replaces it): the daemon is stopped and reaped.
  const replies = await m.ctl('upgrade', [], { timeoutMs: 60_000 });
  assert.equal(replies.at(-1)?.message, 'Upgrade done');
  await until('daemon stopped', () => !existsSync(`/proc/${daemon}`));
  // The master's log reaches us through a pipe: the line may arrive after the daemon is gone.
  await m.waitLog(new RegExp(`Stopping process ${daemon} that a worker left behind`));
  assert.deepEqual(zombiesOf(m.pid), []);
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

// ---- 5. idle connections must not lock out acks and the operator ----------------------

function openIdle(path: string, n: number): Promise<Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((res) => {
          const s = createConnection(path);
          s.on('error', () => undefined);
          s.once('connect', () => res(s));
          s.once('close', () => res(s));
        }),
    ),
  );
}

test('5: 600 connections that never write: the ctl still works and an upgrade with manual acks succeeds', async () => {
  const m = startMaster(['-n', '2', '-m', 'manual', '-b', '127.0.0.1:0', '--', process.execPath, fixture('drain-child.mjs')]);
  await m.port();
  await m.ready(2);
  const held = await openIdle(m.sockPath, 600);
  try {
    const [st] = await m.ctl('status');
    assert.match(st!.message, /workers: 2 up of 2 wanted/);
    const replies = await m.ctl('upgrade', [], { timeoutMs: 60_000 });
    assert.equal(replies.at(-1)?.message, 'Upgrade done');
    // Those silent for a second (never one just accepted, not read yet) make room.
    await m.waitLog(/Control connections at the limit \(512\): closing the one idle longest/);
  } finally {
    for (const s of held) s.destroy();
  }
  assert.equal((await m.stop()).code, 0);
});

test('5: --control-idle-timeout closes a connection that sends nothing', async () => {
  const m = startMaster(['--control-idle-timeout', '0.3', '-m', '0', '--', 'sleep', '1000']);
  await m.ready(1);
  const [s] = await openIdle(m.sockPath, 1);
  let closed = false;
  s!.once('close', () => (closed = true));
  await until('the idle connection closed by the master', () => closed, 10_000);
  assert.equal((await m.stop()).code, 0);
});

test('5: clients that never read their replies are dropped before the master buffers much for them', async () => {
  const m = startMaster(['-n', '4', '-m', '0', '--', 'sleep', '1000']);
  await m.ready(4);
  const rss0 = statusKb(m.pid, 'VmRSS')!;
  const clients = await openIdle(m.sockPath, 40);
  const request = '{"command":"state"}\n'.repeat(1500);
  for (const c of clients) {
    c.pause(); // never read
    c.write(request);
  }
  try {
    await until('every non-reading client dropped', () => (m.stderr.match(/dropping a client that does not read its replies/g) ?? []).length === clients.length, 60_000, 100);
    const grown = (statusKb(m.pid, 'VmRSS')! - rss0) / 1024;
    if (process.env.TEST_VERBOSE) console.error(`non-reading clients: master RSS +${grown.toFixed(1)} MiB`);
    assert.ok(grown < 80, `master RSS grew by ${grown.toFixed(1)} MiB for 40 non-reading clients`);
    assert.match((await m.ctl('status'))[0]!.message, /workers: 4 up/);
  } finally {
    for (const c of clients) c.destroy();
  }
  assert.equal((await m.stop()).code, 0);
});

// ---- 6. worker:ack only from the worker -----------------------------------------------

test('6: a worker:ack from another process is refused with an error reply and a log line', async () => {
  const m = startMaster(['-m', 'manual', '--ack-timeout', '120', '--', 'sleep', '1000']);
  const [w] = await until('a starting worker', async () => (await m.workers()).filter((x) => x.state === 'starting'));
  const r = await rawRequest(m.sockPath, `${JSON.stringify({ command: 'worker:ack', pid: w!.pid })}\n`);
  assert.match(r, /Refusing worker:ack for pid \d+: not sent by that process or its process group/);
  assert.match(r, /error: true/);
  await m.waitLog(new RegExp(`Refusing worker:ack for pid ${w!.pid} from pid ${process.pid} `));
  const ping = await rawRequest(m.sockPath, `${JSON.stringify({ command: 'worker:ping', pid: w!.pid, request_id: 'x' })}\n`);
  assert.match(ping, /Refusing worker:ping/);
  const [again] = await m.workers();
  assert.equal(again!.state, 'starting', 'still not acked');
  assert.equal((await m.stop()).code, 0);
});

/** Send raw bytes on a fresh connection; what the master sends until it closes (or, with `firstLine`, its first line). */
function rawRequest(path: string, data: string, firstLine = false): Promise<string> {
  return new Promise((res, rej) => {
    let out = '';
    const s = createConnection(path);
    const t = setTimeout(() => {
      s.destroy();
      rej(new Error(`no close after ${JSON.stringify(data)}; got ${out}`));
    }, 10_000);
    s.on('connect', () => s.write(data));
    s.on('data', (d) => {
      out += d;
      if (firstLine && out.includes('\n')) s.destroy();
    });
    s.on('close', () => {
      clearTimeout(t);
      res(decodeURIComponent(out.replace(/%(?![0-9A-F]{2})/g, '%25')));
    });
    s.on('error', () => undefined);
  });
}

// ---- 7. the socket directory is resolved at start ------------------------------------

test('7: a symlinked socket directory is resolved once: EINHORN_SOCK_PATH stays valid when the link is swapped', async () => {
  const real = tempDir();
  const other = tempDir();
  const links = tempDir();
  const link = join(links, 'link');
  symlinkSync(real, link);
  const m = startMaster(['-d', join(link, 'ctl.sock'), '-n', '1', '-m', 'manual', '-b', '127.0.0.1:0', '--', process.execPath, fixture('drain-child.mjs')], {
    dir: real,
    socket: false,
  });
  await m.port();
  await m.ready(1);
  const [st] = await m.ctl('status');
  assert.equal((st as unknown as { state: { socket_path: string } }).state.socket_path, join(realpathSync(real), 'ctl.sock'));
  // The link now points elsewhere: new workers must still reach the master.
  unlinkSync(link);
  symlinkSync(other, link);
  const replies = await m.ctl('upgrade', [], { timeoutMs: 60_000 });
  assert.equal(replies.at(-1)?.message, 'Upgrade done');
  assert.equal(existsSync(join(other, 'ctl.sock')), false);
  assert.equal((await m.stop()).code, 0);
});

// ---- 8. a deleted control socket is noticed and recreated -------------------------------

test('8: a deleted control socket is recreated (warning logged); ctl and new workers\' acks work again', async () => {
  const m = startMaster(['-n', '1', '-m', 'manual', '-b', '127.0.0.1:0', '--', process.execPath, fixture('drain-child.mjs')]);
  await m.port();
  await m.ready(1);
  const ino = lstatSync(m.sockPath).ino;
  unlinkSync(m.sockPath);
  await m.waitLog(/control socket .*ctl\.sock was deleted; created it again/, 10_000);
  assert.notEqual(lstatSync(m.sockPath).ino, ino);
  assert.equal(lstatSync(m.sockPath).mode & 0o777, 0o600);
  const replies = await m.ctl('upgrade', [], { timeoutMs: 60_000 });
  assert.equal(replies.at(-1)?.message, 'Upgrade done');
  assert.equal((await m.stop()).code, 0);
});

// ---- 10. a YAML self-alias as the pid ---------------------------------------------------

test('10: a YAML self-alias (as the pid of worker:ack, in config) gets an error reply and one warning, never an internal error', async () => {
  const m = startMaster(['-m', '0', '--', 'sleep', '1000']);
  await m.ready(1);
  for (const line of [
    '---%0Acommand: worker:ack%0Apid: &a [*a]%0A',
    '{command: worker:ping, pid: &a {x: *a}}',
    '--- &a%0Acommand: worker:ack%0Apid: *a%0A',
  ]) {
    const r = await rawRequest(m.sockPath, `${line}\n`, true);
    assert.match(r, /message: Could not parse command/);
  }
  const [cfg] = await m.ctl('config', ['&a {seconds: *a}']);
  assert.match(cfg!.message, /Could not parse argument/);
  assert.equal((await m.ctl('status'))[0]!.message.includes('workers: 1 up'), true);
  assert.doesNotMatch(m.stderr, /ERROR|TypeError|internal error/);
  assert.equal((m.stderr.match(/WARN: control: bad request .*recursive alias/g) ?? []).length, 3);
  assert.equal((await m.stop()).code, 0);
});

// ---- SIGUSR1: no program may open Node's inspector -------------------------------------

/** Is `pid` listening on TCP port `port` (a socket among its fds in /proc/net/tcp*, state LISTEN)? */
function listensOn(pid: number, port: number): boolean {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(hex) && cols[3] === '0A' && inodes.has(cols[9] ?? '')) return true;
    }
  }
  return false;
}

test('SIGUSR1: the master passes it to the workers and opens no inspector', async () => {
  const dir = tempDir();
  const m = startMaster(['-m', '0', '--', 'sh', '-c', 'trap "echo x > \\"$0/usr1\\"" USR1; trap "exit 0" USR2; : > "$0/trapped"; while :; do sleep 0.05; done', dir], { dir });
  await m.ready(1);
  // ACKed at once (-m 0): wait until the shell has set its traps, or USR1 would kill it
  await until('the worker set its traps', () => existsSync(join(dir, 'trapped')));
  process.kill(m.pid, 'SIGUSR1');
  await until('the worker got SIGUSR1', () => existsSync(join(dir, 'usr1')));
  assert.doesNotMatch(m.stderr, /Debugger listening/);
  assert.equal(listensOn(m.pid, 9229), false);
  assert.equal((await m.stop()).code, 0);
});

test('SIGUSR1: the dyno driver logs and ignores it, no inspector', async () => {
  const dir = tempDir('dyno-test-');
  writeFileSync(join(dir, 'Procfile'), 'worker: sleep 1000\n');
  const sock = join(dir, 'ctl.sock');
  const env = { ...process.env };
  delete env.PORT;
  const d = new SupervisorProc(process.execPath, [join(ROOT, 'bin', 'einhyrningsins-dyno')], ['start', '-d', sock], dir, sock, env);
  track(d, dir);
  await d.waitLog(/Driver \d+ up/);
  process.kill(d.pid, 'SIGUSR1');
  await d.waitLog(/Got SIGUSR1: ignored/);
  assert.doesNotMatch(d.stderr, /Debugger listening/);
  assert.equal(listensOn(d.pid, 9229), false);
  assert.equal((await d.stop()).code, 0);
});

test('SIGUSR1: the ctl shell ignores it, no inspector', async () => {
  const m = startMaster(['-m', '0', '--', 'sleep', '1000']);
  await m.ready(1);
  const c = spawn(process.execPath, [join(ROOT, 'bin', 'einhyrningsinsctl'), '-d', m.sockPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout!.on('data', (x) => (out += x));
  c.stderr!.on('data', (x) => (err += x));
  const exited = new Promise((r) => c.once('exit', r));
  try {
    c.stdin!.write('version\n');
    await until('first reply', () => /einhyrningsins \d/.test(out));
    process.kill(c.pid as number, 'SIGUSR1');
    c.stdin!.write('version\n');
    await until('second reply', () => (out.match(/einhyrningsins \d/g) ?? []).length >= 2);
    assert.doesNotMatch(err, /Debugger listening/);
    assert.equal(listensOn(c.pid as number, 9229), false);
  } finally {
    c.stdin!.end();
    await Promise.race([exited, sleep(10_000).then(() => c.kill('SIGKILL'))]);
  }
  assert.equal((await m.stop()).code, 0);
});
