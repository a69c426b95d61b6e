/**
 * einhyrningsins-dyno start --config FILE, black-box: a supervisord-style config's
 * programs as the runtime's groups (real processes, real sockets, real signals).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { LineSplitter, decodeReply, encodeRequest } from '@einhyrningsins/protocol';
import { join } from 'node:path';
import { freePort, load, sleep, until } from './harness.js';
import { alive } from './proc.js';
import { spawn } from 'node:child_process';
import { DYNO_BIN, WEB, cleanupDrivers, get, newDir, runDyno, startDriver, type DynoState } from './dyno-harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupDrivers(), []);
});


const upAll = (st: DynoState, want: Record<string, number>) =>
  Object.entries(want).every(([t, n]) => st.types[t]?.workers.length === n && st.types[t]!.workers.every((w) => w.state === 'up') && !st.types[t]!.upgrading);

test('--config: programs run as groups with their command, numprocs, directory, environment, umask, stopsignal; autostart=false starts none; a socket program restarts as a rolling upgrade with no failed request', async (t) => {
  const dir = newDir();
  const port = await freePort();
  mkdirSync(join(dir, 'sub'));
  const probe =
    'umask > umask.%(process_num)d; pwd > pwd.%(process_num)d; echo "$GREETING $SUPERVISOR_PROCESS_NAME $SUPERVISOR_GROUP_NAME" > env.%(process_num)d; ' +
    'trap "echo int > stopped-by.%(process_num)d; exit 0" INT; trap "echo term > stopped-by.%(process_num)d; exit 0" TERM; while :; do sleep 0.1; done';
  const config = [
    '[program:web]',
    `command = ${process.execPath} ${WEB}`,
    `socket = tcp://127.0.0.1:${port},r`,
    'numprocs = 2',
    'process_name = %(program_name)s_%(process_num)d',
    'ack = manual',
    'environment = RELEASE_MARKER="one"',
    'stopwaitsecs = 10',
    '',
    '[program:probe]',
    `command = sh -c '${probe}'`,
    'numprocs = 2',
    'process_name = probe_%(process_num)02d',
    'numprocs_start = 1',
    'directory = sub',
    'umask = 027',
    'environment = GREETING="hello world"',
    'priority = 1',
    'stopsignal = INT',
    '',
    '[program:later]',
    'command = sleep 1000',
    'autostart = false',
    '',
    '[eventlistener:x]',
    'command = true',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'app.conf'), config);
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  const st = await until('every program up', async () => {
    const s = await d.state();
    return upAll(s, { web: 2, probe: 2, later: 0 }) ? s : null;
  }, 30_000);
  // Start order: priority (probe=1 before the default 999), then name.
  assert.deepEqual(Object.keys(st.types), ['probe', 'later', 'web']);
  // A warning about what is not supported, with FILE:LINE, once start-up succeeded.
  assert.match(d.stderr, /app\.conf:25: .*event listeners are not supported/);
  const sub = join(dir, 'sub');
  await until('probe files', () => ['env.1', 'env.2', 'umask.1', 'umask.2'].every((f) => existsSync(join(sub, f)) && readFileSync(join(sub, f), 'utf8').length > 0));
  assert.equal(readFileSync(join(sub, 'umask.1'), 'utf8').trim(), '0027');
  assert.equal(readFileSync(join(sub, 'pwd.2'), 'utf8').trim(), sub);
  assert.equal(readFileSync(join(sub, 'env.1'), 'utf8').trim(), 'hello world probe_01 probe');
  assert.equal(readFileSync(join(sub, 'env.2'), 'utf8').trim(), 'hello world probe_02 probe');
  // Output prefixed by the process name.
  await d.waitOut(/web_1 \| web listening/);
  assert.match(await get(port), / one /);

  // restart of the socket program: a rolling upgrade under load, no request lost.
  const before = st.types.web!.workers.map((w) => w.pid).sort();
  const traffic = load(port, 4, { fresh: true, maxMs: 60_000 });
  try {
    await until('some traffic', () => traffic.result.ok > 30, 10_000);
    const replies = await d.ctl('restart', ['web']);
    assert.equal(replies.at(-1)!.message, 'web: restarted (rolling: new processes up before the old ones stopped)', JSON.stringify(replies));
    const seen = traffic.result.ok;
    await until('traffic after the restart', () => traffic.result.ok > seen + 30, 10_000);
  } finally {
    await traffic.stop();
  }
  assert.equal(traffic.result.failed, 0, `failed requests: ${traffic.result.errors.join(', ')}`);
  t.diagnostic(`restart web under load: ${traffic.result.ok} requests, ${traffic.result.failed} failed`);
  const after = await until('restarted', async () => {
    const s = await d.state();
    return upAll(s, { web: 2, probe: 2, later: 0 }) ? s : null;
  });
  const now = after.types.web!.workers.map((w) => w.pid).sort();
  assert.ok(now.every((p) => !before.includes(p)), `every web process replaced: ${before} -> ${now}`);
  // The other programs were not touched.
  assert.deepEqual(after.types.probe!.workers.map((w) => w.pid).sort(), st.types.probe!.workers.map((w) => w.pid).sort());

  // GROUP:* and all name programs; a bare process name is refused with the name to use (supervisord's group:process).
  assert.match((await d.ctl('restart', ['web_1'])).at(-1)!.message, /^No such process: web_1 \(a process of program web: name it web:web_1\)$/);
  assert.match((await d.ctl('restart', ['nope'])).at(-1)!.message, /^No such process: nope/);
  // A program without socket= restarts stop-then-start, as supervisorctl's.
  assert.equal((await d.ctl('restart', ['probe:*'])).at(-1)!.message, 'probe:probe_01: stopped\nprobe:probe_02: stopped\nprobe:probe_01: started\nprobe:probe_02: started');

  // Stopping: each program gets its own stopsignal (probe: INT).
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  assert.equal(readFileSync(join(sub, 'stopped-by.1'), 'utf8').trim(), 'int');
  assert.equal(readFileSync(join(sub, 'stopped-by.2'), 'utf8').trim(), 'int');
});

test('--config: a config error is one line FILE:LINE and exit 2, warnings unsaid, nothing left behind', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'app.conf'), '[program:ok]\ncommand = sleep 1000\n[eventlistener:x]\ncommand = true\n\n[program:bad]\ncommand = sleep 1000\nnumprocs = lots\n');
  const r = await runDyno(['start', '--config', 'app.conf', '-d', join(dir, 'ctl.sock')], { cwd: dir });
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^einhyrningsins-dyno: .*app\.conf:8: .*numprocs/);
  assert.deepEqual(readdirSync(dir).sort(), ['app.conf']);

  // A usage mistake: --config with -f.
  const u = await runDyno(['start', '--config', 'app.conf', '-f', 'Procfile'], { cwd: dir });
  assert.equal(u.code, 2);
  assert.match(u.stderr, /--config cannot be used with -f or -c/);
});

test('--config: a socket that cannot be bound fails start-up in one line naming the program; the sockets bound before are removed, nothing started', async () => {
  const dir = newDir();
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as { port: number }).port;
  try {
    writeFileSync(
      join(dir, 'app.conf'),
      `[program:a]\ncommand = sleep 1000\nsocket = unix:${join(dir, 'a.sock')}\n\n[program:b]\ncommand = sleep 1000\nsocket = tcp://127.0.0.1:${port}\n`,
    );
    const r = await runDyno(['start', '--config', 'app.conf', '-d', join(dir, 'ctl.sock')], { cwd: dir });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /socket tcp:\/\/127\.0\.0\.1:\d+ of \[program:b\] \(.*app\.conf:5\).*address already in use/);
    assert.deepEqual(readdirSync(dir).sort(), ['app.conf']);
  } finally {
    await new Promise((r) => taken.close(r));
  }
});

test('--config: killasgroup=true SIGKILLs the whole process group after stopwaitsecs; killasgroup=false only the process (as supervisord)', async () => {
  const dir = newDir();
  // A process that ignores the stop signal, with a grandchild (same process group) that ignores it too.
  const cmd = (name: string) =>
    `sh -c '(trap "" TERM; exec sleep 1000) & echo $! > ${name}.grandchild; trap "" TERM; while :; do sleep 0.1; done'`;
  writeFileSync(
    join(dir, 'app.conf'),
    ['[program:grouped]', `command = ${cmd('grouped')}`, 'killasgroup = true', 'stopwaitsecs = 1', '', '[program:alone]', `command = ${cmd('alone')}`, 'stopwaitsecs = 1', ''].join('\n'),
  );
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await until('up', async () => upAll(await d.state(), { grouped: 1, alone: 1 }), 20_000);
  const pidIn = (f: string) => Number(readFileSync(join(dir, f), 'utf8'));
  await until('grandchildren', () => ['grouped', 'alone'].every((n) => existsSync(join(dir, `${n}.grandchild`)) && pidIn(`${n}.grandchild`) > 0));
  const grouped = pidIn('grouped.grandchild');
  const alone = pidIn('alone.grandchild');
  try {
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
    await until('the grouped grandchild killed with its process', () => !alive(grouped));
    await sleep(300);
    assert.ok(alive(alone), 'killasgroup=false: the grandchild is not SIGKILLed');
  } finally {
    for (const p of [grouped, alone]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
});

test('--config: status with supervisord states per process; stop and start NAME|GROUP:*|all answer once done; startretries failed starts make FATAL', async () => {
  const dir = newDir();
  writeFileSync(
    join(dir, 'app.conf'),
    [
      '[program:sleeper]',
      'command = sleep 1000',
      'numprocs = 2',
      'process_name = %(program_name)s_%(process_num)d',
      '',
      '[program:crasher]',
      `command = sh -c 'exit 3'`,
      'startretries = 2',
      'startsecs = 1',
      '',
    ].join('\n'),
  );
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  const status = async () => (await d.ctl('status')).at(-1)!.message;
  const text = await until('sleepers RUNNING, crasher FATAL', async () => {
    const s = await status();
    return /^sleeper:sleeper_0 +RUNNING +pid \d+, uptime 0:00:\d\d$/m.test(s) && /^sleeper:sleeper_1 +RUNNING /m.test(s) && /^crasher +FATAL +Exited too quickly/m.test(s) ? s : null;
  }, 30_000);
  assert.equal(text.trim().split('\n').length, 3, text);
  // A failed start on the way there was BACKOFF (the engine's streak), never RUNNING.
  assert.match(d.stderr, /crasher/);

  const stopped = await d.ctl('stop', ['sleeper:*']);
  assert.equal(stopped.at(-1)!.message, 'sleeper:sleeper_0: stopped\nsleeper:sleeper_1: stopped');
  assert.match(await status(), /^sleeper:sleeper_0 +STOPPED +Not started$/m);
  assert.equal((await d.state()).types.sleeper!.workers.length, 0);

  const started = await d.ctl('start', ['all'], { timeoutMs: 30_000 });
  // In the config's order (priority, then name): crasher before sleeper.
  assert.equal(started.at(-1)!.message, 'crasher: ERROR (spawn error or exited too quickly: FATAL)\nsleeper:sleeper_0: started\nsleeper:sleeper_1: started');
  assert.match(await status(), /^sleeper:sleeper_1 +RUNNING /m);
  assert.match((await d.ctl('stop', ['nope'])).at(-1)!.message, /^No such process: nope/);
  // signal by GROUP:*: every process of the group's programs, and only those.
  const sleepers = (await d.state()).types.sleeper!.workers.map((w) => w.pid);
  const sig = (await d.ctl('signal', ['KILL', 'sleeper:*'])).at(-1)!;
  assert.notEqual(sig.error, true, sig.message);
  await until('sleepers replaced', async () => {
    const ws = (await d.state()).types.sleeper!.workers;
    return ws.length === 2 && ws.every((w) => !sleepers.includes(w.pid as number));
  });
  assert.match((await d.ctl('signal', ['TERM', 'nope:*'])).at(-1)!.message, /^No such group: nope/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config: stdout_logfile/stderr_logfile/redirect_stderr with size rotation and backups; reopen (command and SIGUSR2) after an outside rename; tail NAME [stdout|stderr]', async () => {
  const dir = newDir();
  mkdirSync(join(dir, 'log'));
  // Lines on demand: each SIGHUP to the process writes a batch (to stdout and stderr).
  const talker = (n: number) =>
    `sh -c 'i=0; trap "j=0; while [ \\$j -lt ${n} ]; do echo out-\\$i-\\$j; echo err-\\$i-\\$j >&2; j=\\$((j+1)); done; i=\\$((i+1))" HUP; echo started; while :; do sleep 0.05; done'`;
  writeFileSync(
    join(dir, 'app.conf'),
    [
      '[program:split]',
      `command = ${talker(3)}`,
      'stdout_logfile = log/split.out',
      'stderr_logfile = log/split.err',
      '',
      '[program:joined]',
      `command = ${talker(200)}`,
      'stdout_logfile = log/joined.log',
      'redirect_stderr = true',
      'stdout_logfile_maxbytes = 1KB',
      'stdout_logfile_backups = 2',
      '',
      '[program:quiet]',
      `command = ${talker(1)}`,
      'stdout_logfile = NONE',
      'stderr_logfile = NONE',
      '',
    ].join('\n'),
  );
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await until('up', async () => upAll(await d.state(), { split: 1, joined: 1, quiet: 1 }), 20_000);
  const log = (f: string) => (existsSync(join(dir, 'log', f)) ? readFileSync(join(dir, 'log', f), 'utf8') : '');
  await until('started lines', () => log('split.out').includes('started') && log('joined.log').includes('started'));
  const pids = Object.fromEntries(Object.entries((await d.state()).types).map(([t, ty]) => [t, ty.workers[0]!.pid]));
  process.kill(pids.split!, 'SIGHUP');
  process.kill(pids.joined!, 'SIGHUP');
  process.kill(pids.quiet!, 'SIGHUP');
  await until('split lines', () => log('split.out').includes('out-0-2') && log('split.err').includes('err-0-2'));
  assert.ok(!log('split.out').includes('err-'), 'stderr kept out of the stdout file');
  // 400 lines of ~10 bytes into a 1 KB file with 2 backups: rotated; what the three files hold is whole lines, the newest last.
  const three = () => log('joined.log.2') + log('joined.log.1') + log('joined.log');
  await until('joined rotated', () => existsSync(join(dir, 'log', 'joined.log.2')) && three().includes('out-0-199\n') && three().includes('err-0-199\n'));
  assert.ok(!existsSync(join(dir, 'log', 'joined.log.3')));
  const kept = (log('joined.log.2') + log('joined.log.1') + log('joined.log')).split('\n').filter(Boolean);
  assert.ok(kept.every((l) => /^(started|(out|err)-0-\d+)$/.test(l)), 'whole lines only');
  // Each stream's own lines stay in order (the two pipes are read apart, so they interleave by batches).
  const outs = kept.filter((l) => l.startsWith('out-')).map((l) => Number(l.split('-')[2]));
  assert.deepEqual(outs, [...outs].sort((a, b) => a - b), 'in order across the rotated files');
  for (const f of ['joined.log.1', 'joined.log.2']) assert.ok(readFileSync(join(dir, 'log', f)).length <= 1024);
  // NONE: nothing written, not even to the driver's output.
  assert.ok(!/quiet \| out-0-0/.test(d.stdout) && !/quiet \| err-0-0/.test(d.stderr));

  // tail
  assert.match((await d.ctl('tail', ['split'])).at(-1)!.message, /out-0-2\n$/);
  assert.match((await d.ctl('tail', ['split', 'stderr'])).at(-1)!.message, /err-0-2\n$/);
  assert.match((await d.ctl('tail', ['joined', 'stderr'])).at(-1)!.message, /redirect_stderr=true/);
  assert.match((await d.ctl('tail', ['nope'])).at(-1)!.message, /^No such process: nope$/);

  // tail -f: the end, then every line written later, until the client goes.
  const got: string[] = [];
  const follower = createConnection(d.sockPath);
  const splitter = new LineSplitter();
  follower.on('data', (chunk) => {
    for (const item of splitter.push(chunk)) if (!('error' in item)) got.push(String((decodeReply(item.line) as { reply: { message: string } }).reply.message));
  });
  follower.write(encodeRequest({ command: 'tail', args: ['-f', 'split'], id: 1 }, 'json'));
  await until('tail -f: the end', () => got.join('').includes('out-0-2'));
  process.kill(pids.split!, 'SIGHUP');
  await until('tail -f: the lines written later', () => got.join('').includes('out-1-2\n'));
  follower.destroy();
  await sleep(700); // the follower stops once the client is gone

  const { renameSync } = await import('node:fs');
  renameSync(join(dir, 'log', 'split.out'), join(dir, 'log', 'split.out.old'));
  assert.match((await d.ctl('reopen')).at(-1)!.message, /^Reopened 3 log files$/);
  process.kill(pids.split!, 'SIGHUP');
  await until('new file after reopen', () => log('split.out').includes('out-2-2'));
  assert.ok(!log('split.out.old').includes('out-2-'));
  // And by SIGUSR2.
  renameSync(join(dir, 'log', 'split.out'), join(dir, 'log', 'split.out.old2'));
  d.proc.kill('SIGUSR2');
  await d.waitLog(/Reopened 3 log files/);
  process.kill(pids.split!, 'SIGHUP');
  await until('new file after SIGUSR2', () => log('split.out').includes('out-3-2'));
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config: reread says what changed, update applies exactly that (added started, removed stopped, changed rolled, unchanged untouched); a config error at either is an error reply and nothing changes', async () => {
  const dir = newDir();
  const conf = (programs: Record<string, string>) =>
    writeFileSync(join(dir, 'app.conf'), Object.entries(programs).map(([n, c]) => `[program:${n}]\ncommand = ${c}\n`).join('\n'));
  conf({ keep: 'sleep 1001', change: 'sleep 1002', gone: 'sleep 1003' });
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  const before = await until('up', async () => {
    const s = await d.state();
    return upAll(s, { keep: 1, change: 1, gone: 1 }) ? s : null;
  }, 20_000);
  const pid = (st: DynoState, t: string) => st.types[t]?.workers[0]?.pid;
  assert.equal((await d.ctl('reread')).at(-1)!.message, 'No config updates to processes');

  // A broken file: an error reply naming FILE:LINE, nothing touched.
  writeFileSync(join(dir, 'app.conf'), '[program:keep]\ncommand = sleep 1001\nautostart = maybe\n');
  for (const c of ['reread', 'update']) {
    const r = (await d.ctl(c)).at(-1)!;
    assert.equal(r.error, true);
    assert.match(r.message, /^ERROR: .*app\.conf:3: .*autostart.*; the running programs are untouched$/);
  }
  assert.equal(pid(await d.state(), 'gone'), pid(before, 'gone'));

  conf({ keep: 'sleep 1001', change: 'sleep 1012', added: 'sleep 1004' });
  assert.equal((await d.ctl('reread')).at(-1)!.message, 'added: available\nchange: changed (argv, command)\ngone: disappeared');
  assert.equal(pid(await d.state(), 'gone'), pid(before, 'gone'), 'reread changes nothing');
  assert.equal((await d.ctl('update')).at(-1)!.message, 'added: added process group\nchange: updated process group\ngone: stopped, removed process group');
  const after = await until('updated', async () => {
    const s = await d.state();
    return upAll(s, { keep: 1, change: 1, added: 1 }) && s.retiring.length === 0 ? s : null;
  }, 20_000);
  assert.equal(pid(after, 'keep'), pid(before, 'keep'), 'unchanged untouched');
  assert.notEqual(pid(after, 'change'), pid(before, 'change'), 'changed restarted');
  assert.equal((await d.ctl('reread')).at(-1)!.message, 'No config updates to processes');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

const isRoot = process.getuid?.() === 0;

test('--config: user= runs the program as that user and its primary group (setgroups/setgid/setuid in the launcher, the driver being root)', { skip: !isRoot && 'needs root' }, async () => {
  const dir = newDir();
  writeFileSync(
    join(dir, 'app.conf'),
    ['[program:as_nobody]', `command = sh -c 'echo "ids $(id -u) $(id -g) $(id -G)"; exec sleep 1000'`, 'user = nobody', '', '[program:as_root]', `command = sh -c 'echo "ids $(id -u)"; exec sleep 1000'`, ''].join('\n'),
  );
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await until('up', async () => upAll(await d.state(), { as_nobody: 1, as_root: 1 }), 20_000);
  await d.waitOut(/as_nobody \| ids 65534 65534 65534\n/);
  await d.waitOut(/as_root \| ids 0\n/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config: user= of another user when the driver is not root is one line FILE:LINE at start, exit 2', { skip: !isRoot && 'needs root (to become nobody with setpriv)' }, async () => {
  const dir = newDir();
  const { chmodSync } = await import('node:fs');
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'app.conf'), '[program:ok]\ncommand = sleep 1000\n\n[program:other]\ncommand = sleep 1000\nuser = root\n');
  const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
    const p = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, DYNO_BIN, 'start', '--config', 'app.conf', '-d', join(dir, 'ctl.sock')], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c));
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.once('exit', (code: number | null) => {
      clearTimeout(t);
      res({ code, stderr });
    });
  });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^einhyrningsins-dyno: .*app\.conf:4: \[program:other\] user=root: the driver must run as root to run a program as another user \(it runs as uid 65534\)\n$/);
  assert.deepEqual(readdirSync(dir).sort(), ['app.conf']);
});

test('--config: autorestart and exitcodes: a started process that exits is EXITED or replaced as supervisord decides', async () => {
  const dir = newDir();
  const exits = (code: number) => `sh -c 'sleep 1.5; exit ${code}'`;
  writeFileSync(
    join(dir, 'app.conf'),
    [
      '[program:expected]', `command = ${exits(0)}`, '', // default: autorestart=unexpected, exitcodes=0
      '[program:unexpected]', `command = ${exits(3)}`, '',
      '[program:never]', `command = ${exits(3)}`, 'autorestart = false', '',
      '[program:always]', `command = ${exits(0)}`, 'autorestart = true', '',
      '[program:listed]', `command = ${exits(3)}`, 'exitcodes = 0,3', '',
    ].join('\n'),
  );
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  const status = async () => (await d.ctl('status')).at(-1)!.message;
  await until('every process started once', () => (d.stderr.match(/exited \(exit|exited unexpectedly/g) ?? []).length >= 5, 20_000);
  const s = await until('states settled', async () => {
    const t = await status();
    return /^expected +EXITED +exited on its own \(exit 0\)$/m.test(t) && /^never +EXITED +exited on its own \(exit 3\)$/m.test(t) && /^listed +EXITED /m.test(t) ? t : null;
  }, 20_000);
  assert.doesNotMatch(s, /^(unexpected|always) +(EXITED|STOPPED|FATAL)/m, s);
  // Replaced: a second process of each.
  await until('unexpected and always replaced', () => /\[unexpected\] ===> Launched[\s\S]*\[unexpected\] ===> Launched/.test(d.stderr) && /\[always\] ===> Launched[\s\S]*\[always\] ===> Launched/.test(d.stderr), 20_000);
  assert.equal((d.stderr.match(/\[never\] ===> Launched/g) ?? []).length, 1);
  // start brings an EXITED program back; stop answers for EXITED ones at once (supervisorctl's words).
  assert.equal((await d.ctl('stop', ['expected'])).at(-1)!.message, 'expected: ERROR (not running)');
  const started = (await d.ctl('start', ['never'])).at(-1)!.message;
  assert.equal(started, 'never: started');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});
