/**
 * einhyrningsins-dyno start --config FILE, black-box: the lifecycle of programs at run
 * time as supervisorctl's (add, remove, a removed program's socket closed, restart
 * orders, one process of several, reload keeping every program's sockets and logs).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { freePort, load, until } from './harness.js';
import { WEB, cleanupDrivers, get, newDir, startDriver, type DriverProc } from './dyno-harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupDrivers(), []);
});


/** connect() to a unix path or a loopback port: 'ok' or the error code. */
async function tryConnect(to: string | number): Promise<string> {
  return await new Promise((res) => {
    const c = typeof to === 'number' ? createConnection(to, '127.0.0.1') : createConnection(to);
    c.once('connect', () => {
      c.destroy();
      res('ok');
    });
    c.once('error', (err: NodeJS.ErrnoException) => {
      c.destroy();
      res(err.code ?? err.message);
    });
  });
}

const reply = async (d: DriverProc, command: string, args: string[] = []) => {
  const r = (await d.ctl(command, args, { timeoutMs: 30_000 })).at(-1)!;
  return { message: r.message, error: r.error === true };
};

const pidOf = async (d: DriverProc, program: string) => (await d.state()).types[program]?.workers[0]?.pid;

test('--config: add starts only the named group of the file read now; remove takes a stopped group out (a running one is refused); their sockets close; bad names are one-line errors', async () => {
  const dir = newDir();
  const port = await freePort();
  const sock = join(dir, 'prog.sock');
  const conf = (sections: string[]) => writeFileSync(join(dir, 'app.conf'), sections.join('\n'));
  const keep = '[program:keep]\ncommand = sleep 1001\n';
  const unix = `[program:unix]\ncommand = sleep 1002\nsocket = unix:${sock}\n`;
  const tcp = `[program:tcp]\ncommand = sleep 1003\nsocket = tcp://127.0.0.1:${port}\n`;
  conf([keep, unix, tcp]);
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await d.ready({ keep: 1, unix: 1, tcp: 1 });
  const keepPid = await pidOf(d, 'keep');
  assert.equal(await tryConnect(sock), 'ok');
  assert.equal(await tryConnect(port), 'ok');

  // Bad input: one line each, error replies, nothing touched.
  assert.deepEqual(await reply(d, 'add'), { message: 'add: missing argument; usage: add NAME ...', error: true });
  assert.deepEqual(await reply(d, 'remove'), { message: 'remove: missing argument; usage: remove NAME ...', error: true });
  assert.deepEqual(await reply(d, 'add', ['nope']), { message: 'ERROR: no such process/group: nope', error: true });
  assert.deepEqual(await reply(d, 'add', ['keep']), { message: 'ERROR: process group already active: keep', error: true });
  assert.deepEqual(await reply(d, 'remove', ['nope']), { message: 'ERROR: no such process/group: nope', error: true });
  assert.deepEqual(await reply(d, 'remove', ['unix']), { message: 'ERROR: process/group still running: unix (stop it first: stop unix)', error: true });
  assert.equal(await tryConnect(sock), 'ok', 'a refused remove leaves the socket');

  // The file gains two programs and changes keep: add takes extra only.
  conf([keep.replace('1001', '1011'), unix, tcp, '[program:extra]\ncommand = sleep 1004\n', '[program:other]\ncommand = sleep 1005\n']);
  assert.deepEqual(await reply(d, 'add', ['extra']), { message: 'extra: added process group', error: false });
  await d.ready({ keep: 1, unix: 1, tcp: 1, extra: 1 });
  assert.equal(await pidOf(d, 'keep'), keepPid, 'keep untouched');
  assert.equal((await reply(d, 'reread')).message, 'other: available\nkeep: changed (argv, command)');
  // Several names: each its own line; one bad name makes it an error reply, the others done.
  assert.deepEqual(await reply(d, 'add', ['other', 'nope']), { message: 'other: added process group\nERROR: no such process/group: nope', error: true });
  await d.ready({ keep: 1, unix: 1, tcp: 1, extra: 1, other: 1 });

  // remove: stopped first; then the group goes and its unix socket file with it.
  assert.equal((await reply(d, 'stop', ['unix'])).message, 'unix: stopped');
  assert.deepEqual(await reply(d, 'remove', ['unix']), { message: 'unix: removed process group', error: false });
  await until('unix socket file removed', () => !existsSync(sock));
  assert.equal(await tryConnect(sock), 'ENOENT');
  assert.doesNotMatch((await reply(d, 'status')).message, /^unix /m);
  await d.waitLog(/Closed socket unix:.*prog\.sock: no program uses it any more/);
  // Added back from the file: bound again.
  assert.deepEqual(await reply(d, 'add', ['unix']), { message: 'unix: added process group', error: false });
  await until('unix socket bound again', async () => (await tryConnect(sock)) === 'ok');

  // update with tcp gone from the file: stopped, removed, and its port closed once its process is gone.
  conf([keep, unix, '[program:extra]\ncommand = sleep 1004\n', '[program:other]\ncommand = sleep 1005\n']);
  assert.equal((await reply(d, 'update')).message, 'tcp: stopped, removed process group');
  await until('tcp port closed', async () => (await tryConnect(port)) === 'ECONNREFUSED');
  await d.ready({ keep: 1, unix: 1, extra: 1, other: 1 });
  assert.equal(await pidOf(d, 'keep'), keepPid, 'keep untouched throughout');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

/** A process that notes its start and its stop (SIGTERM) in FILE; with LOCK, it first takes that lock (flock -n) or exits 75. */
const noter = (file: string, lock?: string) =>
  `sh -c '${lock ? `exec 9>${lock}; flock -n 9 || { echo locked >> ${file}; exit 75; }; ` : ''}echo start $$ >> ${file}; trap "echo stop $$ >> ${file}; exit 0" TERM; trap "echo hup $$ >> ${file}" HUP; while :; do sleep 0.1 9>&-; done'`;

const events = (dir: string, file: string) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8').trim().split('\n') : []);

test('--config: restart of a program without socket= stops it before it starts it (a lock held is free again); with socket= it rolls (new before old); update of a changed program without socket= the same', async () => {
  const dir = newDir();
  const port = await freePort();
  const conf = (env: string) =>
    writeFileSync(
      join(dir, 'app.conf'),
      [
        `[program:locker]\ncommand = ${noter('locker.events', 'locker.lock')}\nstartsecs = 1\nstartretries = 0\nenvironment = V="${env}"\n`,
        `[program:web]\ncommand = ${noter('web.events')}\nsocket = tcp://127.0.0.1:${port}\n`,
      ].join('\n'),
    );
  conf('1');
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await d.ready({ locker: 1, web: 1 });
  await until('started', () => events(dir, 'locker.events').length === 1 && events(dir, 'web.events').length === 1);
  const [l1] = events(dir, 'locker.events').map((l) => l.split(' ')[1]);
  const [w1] = events(dir, 'web.events').map((l) => l.split(' ')[1]);

  assert.deepEqual(await reply(d, 'restart', ['locker']), { message: 'locker: stopped\nlocker: started', error: false });
  const l = events(dir, 'locker.events');
  assert.equal(l.length, 3, l.join('|'));
  assert.deepEqual(l.slice(0, 2), [`start ${l1}`, `stop ${l1}`], 'the old one stopped first');
  assert.match(l[2]!, /^start \d+$/, 'then the new one started, and got the lock');

  assert.deepEqual(await reply(d, 'restart', ['web']), { message: 'web: restarted (rolling: new processes up before the old ones stopped)', error: false });
  await until('web rolled', () => events(dir, 'web.events').length === 3);
  const w = events(dir, 'web.events');
  assert.equal(w[0], `start ${w1}`);
  assert.match(w[1]!, /^start \d+$/, 'the new one first');
  assert.equal(w[2], `stop ${w1}`, 'then the old one stopped');

  // update with locker's environment changed: stop-then-start too (the engine's stopFirst).
  const l2 = l[2]!.split(' ')[1];
  conf('2');
  assert.equal((await reply(d, 'update')).message, 'locker: updated process group');
  await until('locker replaced', () => events(dir, 'locker.events').length === 5);
  const after = events(dir, 'locker.events').slice(3);
  assert.equal(after[0], `stop ${l2}`);
  assert.match(after[1]!, /^start \d+$/);
  await d.ready({ locker: 1, web: 1 });
  assert.ok(!events(dir, 'locker.events').includes('locked'), 'no process ever found the lock taken');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config: one process of several (GROUP:PROCESS): stop, start, restart and signal it alone; status per process; a crash elsewhere does not take its slot; bad names are one-line errors', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'app.conf'), `[program:multi]\ncommand = ${noter('%(process_num)02d.events')}\nnumprocs = 3\nprocess_name = %(program_name)s_%(process_num)02d\n`);
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await d.ready({ multi: 3 });
  const status = async () => (await reply(d, 'status')).message;
  const pids = async () => Object.fromEntries([...(await status()).matchAll(/^multi:(multi_\d\d) +RUNNING +pid (\d+)/gm)].map((m) => [m[1], Number(m[2])]));
  const p0 = await until('3 RUNNING', async () => {
    const p = await pids();
    return Object.keys(p).length === 3 ? p : null;
  });

  assert.deepEqual(await reply(d, 'stop', ['multi:multi_01']), { message: 'multi:multi_01: stopped', error: false });
  assert.match(await status(), /^multi:multi_01 +STOPPED +Not started$/m);
  assert.deepEqual(await pids(), { multi_00: p0.multi_00, multi_02: p0.multi_02 }, 'the others untouched');
  assert.deepEqual(await reply(d, 'stop', ['multi:multi_01']), { message: 'multi:multi_01: ERROR (not running)', error: false });
  // status NAME: those processes only.
  assert.match((await reply(d, 'status', ['multi:multi_01', 'multi:multi_00'])).message, /^multi:multi_00 +RUNNING +pid \d+, uptime [\d:]+\nmulti:multi_01 +STOPPED +Not started\n$/);
  assert.deepEqual(await reply(d, 'status', ['nope']), { message: 'No such process: nope (known programs: multi)', error: true });

  // A crash of multi_02 is replaced as multi_02, not in the stopped multi_01.
  process.kill(p0.multi_02!, 'SIGKILL');
  const p1 = await until('multi_02 replaced', async () => {
    const p = await pids();
    return p.multi_02 && p.multi_02 !== p0.multi_02 ? p : null;
  }, 20_000);
  assert.deepEqual(Object.keys(p1).sort(), ['multi_00', 'multi_02']);
  assert.match(await status(), /^multi:multi_01 +STOPPED/m);

  assert.deepEqual(await reply(d, 'start', ['multi:multi_01']), { message: 'multi:multi_01: started', error: false });
  const p2 = await pids();
  assert.equal(p2.multi_00, p0.multi_00);
  assert.equal(p2.multi_02, p1.multi_02);
  assert.deepEqual(await reply(d, 'start', ['multi:multi_01']), { message: 'multi:multi_01: ERROR (already started)', error: false });

  assert.deepEqual(await reply(d, 'restart', ['multi:multi_02']), { message: 'multi:multi_02: stopped\nmulti:multi_02: started', error: false });
  const p3 = await pids();
  assert.notEqual(p3.multi_02, p2.multi_02);
  assert.equal(p3.multi_00, p0.multi_00);
  assert.equal(p3.multi_01, p2.multi_01);

  const sig = await reply(d, 'signal', ['HUP', 'multi:multi_00']);
  assert.equal(sig.error, false, sig.message);
  await until('multi_00 got HUP', () => events(dir, '00.events').includes(`hup ${p0.multi_00}`));
  assert.ok(!events(dir, '01.events').some((l) => l.startsWith('hup')) && !events(dir, '02.events').some((l) => l.startsWith('hup')), 'only multi_00');

  // Bad names: one line each, nothing touched.
  assert.deepEqual(await reply(d, 'stop', ['multi:nope']), { message: 'No such process: multi:nope', error: true });
  assert.deepEqual(await reply(d, 'stop', ['multi_01']), { message: 'No such process: multi_01 (a process of program multi: name it multi:multi_01)', error: true });
  assert.deepEqual(await reply(d, 'signal', ['HUP', 'nope:x']), { message: 'No such group: nope (known programs: multi)', error: true });
  assert.deepEqual(await pids(), p3);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

/** A user of this machine who is a member of some group other than their primary one (and `id -G` of them), or null. */
function userWithSupplementaryGroups(): { name: string; groups: number[] } | null {
  const r = spawnSync('getent', ['group'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  for (const line of r.stdout.split('\n')) {
    for (const name of (line.split(':')[3] ?? '').split(',').filter(Boolean)) {
      const id = spawnSync('id', ['-G', '--', name], { encoding: 'utf8' });
      if (id.status !== 0) continue;
      const groups = id.stdout.trim().split(/\s+/).map(Number);
      if (groups.length > 1) return { name, groups: groups.sort((a, b) => a - b) };
    }
  }
  return null;
}

const member = process.getuid?.() === 0 ? userWithSupplementaryGroups() : null;

test('--config: user= gets the user\'s supplementary groups too (setgroups as supervisord\'s drop_privileges), seen in /proc/self/status', { skip: process.getuid?.() !== 0 ? 'needs root' : member === null ? 'no user with supplementary groups on this machine' : false }, async () => {
  const { name, groups } = member!;
  const dir = newDir();
  const { chmodSync } = await import('node:fs');
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'app.conf'), `[program:as_member]\ncommand = sh -c 'grep -E "^(Uid|Groups):" /proc/self/status | tr -s "\\t " " "; exec sleep 1000'\nuser = ${name}\n`);
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await d.ready({ as_member: 1 });
  const m = await d.waitOut(/as_member \| Groups: ([\d ]*)\n/);
  assert.deepEqual(m[1]!.trim().split(' ').map(Number).sort((a, b) => a - b), groups, `${name}: id -G says ${groups.join(' ')}`);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config: reload keeps every process of every program, their sockets and their log pipes: 0 failed requests on a socket program across back-to-back reloads, every log line in its file once and whole', async (t) => {
  const dir = newDir();
  const port = await freePort();
  const sock = join(dir, 'u.sock');
  // A steady writer of numbered lines: a line every 2 ms, written in two pieces (a partial line is often pending).
  const talker = (tag: string) => `sh -c 'i=0; while :; do printf "${tag}-%%d" $i; printf " end\\n"; i=$((i+1)); sleep 0.002; done'`;
  writeFileSync(
    join(dir, 'app.conf'),
    [
      `[program:web]\ncommand = ${process.execPath} ${WEB}\nsocket = tcp://127.0.0.1:${port},r\nnumprocs = 2\nprocess_name = web_%(process_num)d\nack = manual\n`,
      `[program:filelog]\ncommand = ${talker('f')}\nstdout_logfile = f.log\nstdout_logfile_maxbytes = 0\n`,
      `[program:quiet]\ncommand = ${talker('q')}\nstdout_logfile = NONE\n`,
      `[program:unixsock]\ncommand = sleep 1000\nsocket = unix:${sock}\n`,
    ].join('\n'),
  );
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  const before = await d.ready({ web: 2, filelog: 1, quiet: 1, unixsock: 1 });
  const pids = (st: typeof before) => Object.fromEntries(Object.entries(st.types).map(([n, ty]) => [n, ty.workers.map((w) => w.pid).sort()]));
  await until('lines in f.log', () => existsSync(join(dir, 'f.log')) && readFileSync(join(dir, 'f.log'), 'utf8').includes('f-50 end'));
  const traffic = load(port, 4, { fresh: true, maxMs: 90_000 });
  try {
    await until('some traffic', () => traffic.result.ok > 30, 10_000);
    for (let n = 1; n <= 3; n++) {
      const r = (await d.ctl('reload', [], { timeoutMs: 30_000 })).at(-1)!;
      assert.match(r.message, new RegExp(`^Reload done: driver ${d.pid} is now einhyrningsins-dyno \\S+ \\(reload ${n}\\), 5 processes adopted$`), JSON.stringify(r));
      const seen = traffic.result.ok;
      await until('traffic after the reload', () => traffic.result.ok > seen + 20, 10_000);
    }
  } finally {
    await traffic.stop();
  }
  assert.equal(traffic.result.failed, 0, `failed requests: ${traffic.result.errors.join(', ')}`);
  t.diagnostic(`3 reloads under load: ${traffic.result.ok} requests, ${traffic.result.failed} failed`);
  assert.deepEqual(pids(await d.state()), pids(before), 'every pid of every program kept');
  assert.equal(await tryConnect(sock), 'ok', 'the unix socket is still bound');
  // The writer goes on after the reloads; then it is stopped and its file read whole.
  const mark = readFileSync(join(dir, 'f.log'), 'utf8').length;
  await until('more lines after the reloads', () => readFileSync(join(dir, 'f.log'), 'utf8').length > mark + 200);
  assert.equal((await reply(d, 'stop', ['filelog', 'quiet'])).message, 'filelog: stopped\nquiet: stopped');
  const lines = readFileSync(join(dir, 'f.log'), 'utf8').split('\n');
  assert.equal(lines.pop(), '', 'the file ends with a newline');
  // The piece written just before TERM, its line ended for it at the stream's end.
  if (/^f-\d+$/.test(lines.at(-1) ?? '')) assert.equal(lines.pop(), `f-${lines.length}`);
  lines.forEach((l, i) => assert.equal(l, `f-${i} end`, `line ${i} of ${lines.length}`));
  t.diagnostic(`f.log: ${lines.length} lines, in order, none lost, none split`);
  // Still serving and stopping as it should.
  assert.equal(typeof (await get(port)), 'string');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  assert.ok(!existsSync(sock), 'the unix socket file removed at exit');
});
