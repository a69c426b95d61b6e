/**
 * minisv's side of the dyno driver, black-box: the real driver, real HTTP requests on its
 * control socket and on --http (127.0.0.1, a dynamic port, with and without the token),
 * real programs; minisv's JSON config with date-suffixed log files; one-time tasks; and
 * every kind of bad input (one line, exit 2, nothing left behind; or the HTTP status with
 * a JSON body naming the problem, and nothing done).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { until } from './harness.js';
import { alive } from './proc.js';
import { createServer } from 'node:net';
import { WEB, cleanupDrivers, get, newDir, runDyno, startDriver, type DriverProc } from './dyno-harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupDrivers(), []);
});

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: Record<string, unknown>;
}

/** One HTTP request on a fresh connection: over the unix socket `to.socketPath`, or TCP `to.port`. */
async function http(to: { socketPath: string } | { port: number }, method: string, path: string, opts: { body?: string; token?: string } = {}): Promise<Res> {
  return await new Promise<Res>((resolve, reject) => {
    const headers: Record<string, string> = { connection: 'close' };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const r = request(
      { ...('port' in to ? { host: '127.0.0.1', port: to.port } : { socketPath: to.socketPath }), method, path, headers, agent: false, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(body) as Record<string, unknown>;
          } catch {
            json = {};
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    r.on('error', reject);
    r.on('timeout', () => r.destroy(new Error(`${method} ${path}: timed out`)));
    r.end(opts.body);
  });
}

type Task = { command: string; args: string[]; onetime: boolean; status: { status: string; started: string; finished: string }; state?: unknown; pids: number[] };

const on = (d: DriverProc) => ({ socketPath: d.sockPath });
const tasks = async (d: DriverProc) => (await http(on(d), 'GET', '/')).json as unknown as Record<string, Task>;
const task = async (d: DriverProc, name: string) => (await tasks(d))[name] as Task;
async function running(d: DriverProc, name: string, not: number[] = []): Promise<number> {
  return await until(`${name} running`, async () => {
    const t = await task(d, name);
    const pid = t?.status.status === 'running' ? t.pids[0] : undefined;
    if (pid !== undefined && !not.includes(pid)) {
      d.seenChildren.add(pid);
      return pid;
    }
    return null;
  }, 15_000, 50);
}

/** A task that says it started, then sleeps (exec: its pid is the task's), stopped by TERM at once. */
const sleeper = (marker: string) => ({ command: '/bin/sh', args: ['-c', `echo ${marker}; exec sleep 300`] });

test("minisv.json: tasks run with date-suffixed log files and logdate lines; GET / in minisv's shape; a one-time task runs to its end through the API, never restarted", async () => {
  const dir = newDir();
  writeFileSync(
    join(dir, 'minisv.json'),
    JSON.stringify({
      logdir: 'logs',
      logfileprefix: 'box1-',
      logsuffixdate: '20060102.150405.000',
      logdate: '2006/01/02 15:04:05',
      logreopen: '1s',
      graylog: { remote: '' },
      tasks: {
        ticker: { command: '/bin/sh', args: ['-c', 'while :; do echo tick; sleep 0.2; done'] },
        web: { ...sleeper('web-up'), workdir: '.', wait: 5 },
        pull: { command: '/bin/sh', args: ['-c', 'echo pulled in $PWD; sleep 0.3; exit 3'], workdir: 'logs', oneTime: true },
      },
    }),
  );
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(dir, 'logs'));
  const d = startDriver(['start', '--config', 'minisv.json'], { dir });
  await d.waitLog(/Driver \d+ up/);
  // Unknown and unsupported keys: one warning each, naming the key.
  assert.match(d.stderr, /WARN: minisv\.json:1: graylog: not supported/);
  const web = await running(d, 'web');
  const all = await tasks(d);
  assert.deepEqual(Object.keys(all).sort(), ['pull', 'ticker', 'web']);
  // logreopen (1s here): every task's file reopened at each whole second, named again with the date.
  await until('ticker files of 3 dates', () => readdirSync(join(dir, 'logs')).filter((f) => f.startsWith('box1-ticker.log.')).length >= 3, 15_000, 50);
  assert.deepEqual({ ...all.web, status: { ...all.web!.status, started: 'T' } }, {
    command: '/bin/sh',
    args: ['-c', 'echo web-up; exec sleep 300'],
    onetime: false,
    status: { status: 'running', started: 'T', finished: '0001-01-01T00:00:00Z' },
    state: 'RUNNING',
    pids: [web],
  });
  assert.ok(Math.abs(Date.parse(all.web!.status.started) - Date.now()) < 60_000);
  assert.deepEqual(all.pull!.status, { status: 'not started', started: '0001-01-01T00:00:00Z', finished: '0001-01-01T00:00:00Z' });
  assert.equal(all.pull!.onetime, true);
  // The log file: LOGDIR/PREFIXNAME.log.<date>, each line with the logdate in front.
  const logs = join(dir, 'logs');
  const webLog = await until('web log', () => readdirSync(logs).find((f) => /^box1-web\.log\.\d{8}\.\d{6}\.\d{3}$/.test(f)));
  await until('web line', () => /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d: web-up\n$/.test(readFileSync(join(logs, webLog), 'utf8')));

  // run: the one-time task runs once, to its end (exit 3), and is not restarted.
  const run = await http(on(d), 'GET', '/pull/run');
  assert.equal(run.status, 200);
  assert.deepEqual(run.json, { ok: true, task: 'pull', action: 'run', message: 'running' });
  // While it runs: run again is a conflict, restart is not for one-time tasks.
  const again = await http(on(d), 'GET', '/pull/run');
  assert.equal(again.status, 409);
  assert.match(String(again.json.error), /pull is already running/);
  assert.equal((await http(on(d), 'GET', '/pull/restart')).status, 409);
  const done = await until('pull finished', async () => ((await task(d, 'pull')).status.status.startsWith('finished') ? task(d, 'pull') : null), 15_000, 50);
  assert.equal(done.status.status, 'finished with error: exit status 3');
  assert.ok(Date.parse(done.status.finished) >= Date.parse(done.status.started));
  assert.equal(done.state, 'EXITED');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await task(d, 'pull')).status.status, 'finished with error: exit status 3', 'never restarted');
  assert.equal(d.stderr.match(/\[pull\] ===> Launched/g)?.length, 1);
  const pullLog = readdirSync(logs).filter((f) => f.startsWith('box1-pull.log.'));
  assert.equal(pullLog.length, 1);
  assert.match(readFileSync(join(logs, pullLog[0] as string), 'utf8'), new RegExp(`: pulled in ${logs.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n$`));
  // A second run: a file of its own (minisv opens the log at each run), the status of this run.
  assert.equal((await http(on(d), 'GET', '/pull/run')).status, 200);
  await until('second run done', () => d.stderr.match(/\[pull\] ===> Worker \d+ ended/g)?.length === 2, 15_000);
  assert.equal(readdirSync(logs).filter((f) => f.startsWith('box1-pull.log.')).length, 2);
  // rotate: the next line goes to a file of a new date; SIGHUP means the same for minisv's users.
  assert.equal(web, (await task(d, 'web')).pids[0]);
  const rot = await http(on(d), 'GET', '/web/rotate');
  assert.deepEqual(rot.json, { ok: true, task: 'web', action: 'rotate', message: 'reopened 1 log file' });
  process.kill(d.pid, 'SIGHUP');
  await d.waitLog(/Got SIGHUP: Reopened 3 log files \(minisv's meaning\)/);
  assert.equal((await task(d, 'web')).pids[0], web, 'HUP restarted nothing');
  assert.equal((await d.stop()).code, 0);
});

test("HTTP verbs on --config programs: stop until restart, restart in the program's order (an INI program without socket= stop-then-start, as supervisord's), term/hup/kill, POST adds a task, DELETE removes it; every bad request refused with its status and nothing done", async () => {
  const dir = newDir();
  writeFileSync(
    join(dir, 'box.conf'),
    [
      '[program:svc]',
      `command = /bin/sh -c 'trap "echo got-hup" HUP; echo up; while :; do sleep 0.1; done'`,
      'startsecs = 0',
      'stdout_logfile = svc.log',
      '',
      '[program:job]',
      `command = /bin/sh -c 'echo job-ran; exit 0'`,
      'onetime = true',
      '',
    ].join('\n'),
  );
  const d = startDriver(['start', '--config', 'box.conf'], { dir });
  const svc = await running(d, 'svc');
  const c = on(d);
  // The INI key onetime=true: a one-time task; not started at start.
  assert.equal((await task(d, 'job')).onetime, true);
  assert.equal((await task(d, 'job')).status.status, 'not started');
  assert.equal((await http(c, 'GET', '/job/run')).status, 200);
  await until('job finished', async () => (await task(d, 'job')).status.status === 'finished', 10_000, 50);
  // The ctl's start of a one-time program answers once it ran (it may end before it is seen RUNNING).
  assert.match((await d.ctl('start', ['job']))[0]!.message, /^job: (ran to its end \(one-time\)|started)$/);
  await until('job ran twice', () => d.stderr.match(/\[job\] ===> Worker \d+ ended/g)?.length === 2, 10_000);

  // hup: the signal reaches the process, which keeps running.
  const hup = await http(c, 'GET', '/svc/hup');
  assert.deepEqual(hup.json, { ok: true, task: 'svc', action: 'hup', message: 'sent SIGHUP', pids: [svc] });
  await until('got-hup', () => readFileSync(join(dir, 'svc.log'), 'utf8').includes('got-hup'));
  // restart while running: an INI program without socket= is stopped first, then started (supervisord's order;
  // a minisv task, or a program with socket=, starts the new process first).
  const restarted = await http(c, 'GET', '/svc/restart');
  assert.equal(restarted.status, 200);
  assert.equal(restarted.json.message, 'restarting: the old process is stopped, then a new one starts');
  const svc2 = await running(d, 'svc', [svc]);
  await until('old svc gone', () => !alive(svc));
  const launched = d.stderr.indexOf(`Launched ${svc2}`);
  const oldExit = d.stderr.indexOf(`Exited worker ${svc}`);
  assert.ok(oldExit > 0 && launched > oldExit, 'the old process exited before the new one was launched');
  // stop: stays stopped (not restarted) until restart.
  assert.deepEqual((await http(c, 'GET', '/svc/stop')).json, { ok: true, task: 'svc', action: 'stop', message: 'stopping' });
  await until('svc stopped', async () => (await task(d, 'svc')).status.status === 'stopped', 10_000, 50);
  await until('svc2 gone', () => !alive(svc2));
  const term = await http(c, 'GET', '/svc/term');
  assert.equal(term.status, 409);
  assert.deepEqual(term.json, { error: 'svc has no running process to send SIGTERM to', task: 'svc' });
  assert.equal((await http(c, 'GET', '/svc/restart')).json.message, 'starting');
  const svc3 = await running(d, 'svc', [svc, svc2]);
  // kill: SIGKILL; minisv restarts a task that died, so does this.
  assert.equal((await http(c, 'GET', '/svc/kill')).status, 200);
  await running(d, 'svc', [svc, svc2, svc3]);
  assert.match(d.stderr, new RegExp(`Worker ${svc3} exited unexpectedly \\(killed by SIGKILL\\)`));

  // POST: add a task online (201 with its status), then it runs.
  const add = await http(c, 'POST', '/extra', { body: JSON.stringify({ ...sleeper('extra-up'), env: { GREETING: 'hi' }, wait: 2 }) });
  assert.equal(add.status, 201, add.body);
  assert.equal(add.json.task, 'extra');
  const extra = await running(d, 'extra');
  assert.match(readFileSync(`/proc/${extra}/environ`, 'latin1'), /(^|\0)GREETING=hi\0/);
  // The ctl sees it too (status), with supervisord's state.
  assert.match((await d.ctl('status'))[0]!.message, /^extra\s+RUNNING\s+pid \d+/m);
  // Bad requests: each its status, a JSON body naming the problem, nothing done.
  const bad: Array<[string, string, string | undefined, number, RegExp]> = [
    ['GET', '/nosuch/stop', undefined, 404, /^unknown task "nosuch"$/],
    ['GET', '/svc/launch', undefined, 404, /^unknown action "launch"/],
    ['POST', '/svc/stop', undefined, 405, /POST \/svc\/stop is not allowed \(use GET\)/],
    ['PUT', '/svc', '{}', 405, /PUT \/svc is not allowed/],
    ['GET', '/svc/run', undefined, 409, /svc is not a one-time task \(oneTime is false\)/],
    ['GET', '/job/restart', undefined, 409, /job is a one-time task: run it/],
    ['GET', '/job/rotate', undefined, 409, /job has no log file/],
    ['POST', '/extra', JSON.stringify({ command: '/bin/true' }), 409, /task "extra" exists/],
    ['POST', '/x1', '{"command": ', 400, /the body is not valid JSON: unexpected end of input \(line 1, column 13\)/],
    ['POST', '/x1', '{"comand": "/bin/true"}', 400, /unknown field "comand"/],
    ['POST', '/x1', '{"command": "/bin/true", "wait": "soon"}', 400, /field "wait": expected a whole number of seconds/],
    ['POST', '/x1', '', 400, /the body must be a JSON task/],
    ['POST', '/a%3Ab', '{"command": "/bin/true"}', 400, /invalid task name "a:b"/],
    ['POST', '/x1', JSON.stringify({ command: '/bin/true', args: ['a'.repeat(70_000)] }), 413, /request body too large \(limit 65536 bytes\)/],
    ['DELETE', '/nosuch', undefined, 404, /^unknown task "nosuch"$/],
  ];
  for (const [method, path, body, status, re] of bad) {
    const r = await http(c, method, path, body === undefined ? {} : { body });
    assert.equal(r.status, status, `${method} ${path}: ${r.body}`);
    assert.match(String(r.json.error), re, `${method} ${path}`);
    assert.equal(r.headers['content-type'], 'application/json');
    if (status === 405) assert.ok(r.headers.allow, 'Allow header');
  }
  assert.deepEqual(Object.keys(await tasks(d)).sort(), ['extra', 'job', 'svc']);
  assert.doesNotMatch(d.stderr, /\[x1\]/);
  // A one-time task whose program is missing: "start failed", and it can be run again (not "already running").
  assert.equal((await http(c, 'POST', '/broken', { body: '{"command": "/nonexistent/tool", "oneTime": true}' })).status, 201);
  for (let i = 0; i < 2; i++) {
    const r = await http(c, 'GET', '/broken/run');
    assert.equal(r.status, 200, r.body);
    await until('broken failed', async () => (await task(d, 'broken')).status.status === 'start failed', 10_000, 50);
  }
  assert.equal((await http(c, 'DELETE', '/broken')).status, 200);
  // DELETE: stopped (its process gone) and removed.
  assert.equal((await http(c, 'DELETE', '/extra')).status, 200);
  await until('extra gone', () => !alive(extra));
  assert.deepEqual(Object.keys(await tasks(d)).sort(), ['job', 'svc']);
  assert.equal((await http(c, 'GET', '/extra/status')).status, 404);
  assert.equal((await d.stop()).code, 0);
});

test('a Procfile app: GET / lists its types; stop, restart, term apply; run, rotate, POST and DELETE are 409 saying why', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), 'worker: exec sleep 300\n');
  const d = startDriver(['start'], { dir });
  const w = await running(d, 'worker');
  const c = on(d);
  const listed = await task(d, 'worker');
  assert.equal(listed.onetime, false);
  assert.deepEqual(listed.pids, [w]);
  assert.ok([listed.command, ...listed.args].join(' ').includes('exec sleep 300'), JSON.stringify(listed));
  for (const [m, p, re] of [
    ['GET', '/worker/run', /not a one-time task \(a Procfile has none/],
    ['GET', '/worker/rotate', /worker has no log file: a Procfile's output goes to the driver's own/],
    ['POST', '/other', /tasks are added online only with --config/],
    ['DELETE', '/worker', /tasks are removed online only with --config/],
  ] as const) {
    const r = await http(c, m, p, m === 'POST' ? { body: '{"command":"/bin/true"}' } : {});
    assert.equal(r.status, 409, `${m} ${p}`);
    assert.match(String(r.json.error), re);
  }
  assert.equal((await http(c, 'GET', '/worker/restart')).status, 200);
  const w2 = await running(d, 'worker', [w]);
  await until('old worker gone', () => !alive(w));
  assert.equal((await http(c, 'GET', '/worker/stop')).status, 200);
  await until('worker stopped', async () => (await task(d, 'worker')).status.status === 'stopped', 10_000, 50);
  assert.ok(!alive(w2));
  assert.equal((await http(c, 'GET', '/worker/restart')).json.message, 'starting');
  await running(d, 'worker', [w, w2]);
  // hsup's paths keep hsup's answers beside minisv's.
  assert.equal((await http(c, 'GET', '/health')).body, 'OK');
  assert.ok('Processes' in (await http(c, 'GET', '/status')).json);
  assert.equal((await d.stop()).code, 0);
});

/** A token file as it must be: ours, 0600, 32 characters. */
function tokenFile(dir: string, mode = 0o600, text = 'k3Q9x0Zr7LmN2pV5sT8wY1bC4dF6gH0j'): string {
  const f = join(dir, 'token');
  writeFileSync(f, `${text}\n`);
  chmodSync(f, mode);
  return f;
}

test('--http: refused without a usable token file (one line, exit 2, no socket file); with it, requests without the right bearer token get 401 and nothing is done', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), 'worker: exec sleep 300\n');
  const refuse = async (args: string[], re: RegExp) => {
    const r = await runDyno(['start', '-d', join(dir, 'ctl.sock'), ...args], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(join(dir, 'ctl.sock')), 'no socket file left');
  };
  await refuse(['--http', '127.0.0.1:0'], /^einhyrningsins-dyno: --http 127\.0\.0\.1:0: needs --http-token-file FILE/);
  await refuse(['--http', 'localhost'], /--http expects ADDR:PORT/);
  await refuse(['--http', '127.0.0.1:0', '--http-token-file', join(dir, 'missing')], /--http-token-file \S+missing: cannot open it: ENOENT/);
  const tf = tokenFile(dir, 0o644);
  await refuse(['--http', '127.0.0.1:0', '--http-token-file', tf], /can be read or written by others \(mode 0644\); chmod 600 it/);
  tokenFile(dir, 0o600, 'short');
  await refuse(['--http', '127.0.0.1:0', '--http-token-file', tf], /the token is too short \(5 characters/);
  await refuse(['--http', '127.0.0.1:0', '--http-token-file', dir], /is not a regular file/);
  await refuse(['--http-token-file', tf], /--http-token-file is given but there is nothing to serve on TCP/);

  const token = 'k3Q9x0Zr7LmN2pV5sT8wY1bC4dF6gH0j';
  tokenFile(dir);
  const d = startDriver(['start', '--http', '127.0.0.1:0', '--http-token-file', 'token'], { dir });
  const port = Number((await d.waitLog(/HTTP API on 127\.0\.0\.1:(\d+) \(bearer token\)/))[1]);
  const w = await running(d, 'worker');
  const tcp = { port };
  for (const t of [undefined, 'wrong-token-wrong-token-wrong', token.slice(0, -1), `${token}x`]) {
    const r = await http(tcp, 'GET', '/worker/kill', t === undefined ? {} : { token: t });
    assert.equal(r.status, 401, String(t));
    assert.match(String(r.json.error), /needs the header Authorization: Bearer TOKEN/);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="einhyrningsins-dyno"');
  }
  assert.equal((await http(tcp, 'POST', '/other', { body: '{"command":"/bin/true"}' })).status, 401);
  assert.equal((await http(tcp, 'GET', '/')).status, 401);
  // Nothing was done: the same process runs.
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(alive(w));
  assert.deepEqual((await task(d, 'worker')).pids, [w]);
  assert.match(d.stderr, /WARN: http: refused 1 request without the right bearer token/);
  // The same limits as the control socket: a body over 64 KiB is 413 before anything else.
  const big = await http(tcp, 'POST', '/x', { body: 'a'.repeat(70_000), token });
  assert.equal(big.status, 413);
  // With the token: the same API as on the control socket.
  const all = await http(tcp, 'GET', '/', { token });
  assert.equal(all.status, 200);
  assert.deepEqual((all.json as unknown as Record<string, Task>).worker!.pids, [w]);
  assert.equal((await http(tcp, 'GET', '/health', { token })).body, 'OK');
  assert.equal((await http(tcp, 'GET', '/worker/kill', { token })).status, 200);
  await running(d, 'worker', [w]);
  // A reload carries the TCP listener over: the same port answers, with the token only.
  const replies = await d.ctl('reload');
  assert.match(replies.at(-1)!.message, /Reload done/);
  assert.equal((await http(tcp, 'GET', '/')).status, 401);
  assert.equal((await http(tcp, 'GET', '/', { token })).status, 200);
  assert.equal((await d.stop()).code, 0);
});

test("minisv.json's http: refused without --http-token-file, naming FILE:LINE and the option; bad configs are one line FILE:LINE, exit 2, nothing left", async () => {
  const dir = newDir();
  const refuse = async (json: string, re: RegExp) => {
    writeFileSync(join(dir, 'm.json'), json);
    const r = await runDyno(['start', '-d', join(dir, 'ctl.sock'), '--config', 'm.json'], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(join(dir, 'ctl.sock')), 'no socket file left');
  };
  await refuse(
    '{\n"tasks": {"a": {"command": "/bin/true"}},\n"http": {"address": "127.0.0.1", "port": 3443}\n}',
    /^einhyrningsins-dyno: m\.json:3: "http" asks for minisv's API on TCP \(127\.0\.0\.1:3443\): that needs --http-token-file FILE/,
  );
  await refuse('{\n"tasks": {\n"a": {"args": []}}}', /^einhyrningsins-dyno: m\.json:3: task a: "command" is required/);
  await refuse('{"tasks": {"a": {"command": "/bin/true"}}', /^einhyrningsins-dyno: m\.json:1: not valid JSON: expected ',' or '}'/);
  await refuse('{"logreopen": "hourly"}', /^einhyrningsins-dyno: m\.json:1: logreopen: invalid duration "hourly"/);
  await refuse('{"tasks": {\n"a": {"command": "/bin/true",\n  "ack": "manual:0"}}}', /^einhyrningsins-dyno: m\.json:3: task a: field "ack": ack=manual:SECONDS expects an ACK deadline of more than 0 and at most 86400 seconds, got "manual:0"$/m);
  // With the token file, the config's address is served (port 0: any free one here).
  writeFileSync(join(dir, 'm.json'), JSON.stringify({ tasks: { a: sleeper('a') }, http: { address: '127.0.0.1', port: 0 } }));
  tokenFile(dir);
  const d = startDriver(['start', '--config', 'm.json', '--http-token-file', 'token'], { dir });
  const port = Number((await d.waitLog(/HTTP API on 127\.0\.0\.1:(\d+)/))[1]);
  await running(d, 'a');
  assert.equal((await http({ port }, 'GET', '/a/status', { token: 'k3Q9x0Zr7LmN2pV5sT8wY1bC4dF6gH0j' })).json.onetime, false);
  assert.equal((await d.stop()).code, 0);
});

test('POST a task with a socket (this project\'s keys): it serves on the shared socket, and GET /NAME/restart rolls it with no failed request', async (t) => {
  const dir = newDir();
  writeFileSync(join(dir, 'box.json'), JSON.stringify({ tasks: {} }));
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  const d = startDriver(['start', '--config', 'box.json'], { dir });
  await d.waitLog(/Driver \d+ up/);
  const body = { command: process.execPath, args: [WEB], socket: `tcp://127.0.0.1:${port},r`, ack: 'manual', env: { RELEASE_MARKER: 'one' }, startTime: 1 };
  const add = await http(on(d), 'POST', '/web', { body: JSON.stringify(body) });
  assert.equal(add.status, 201, add.body);
  const first = await running(d, 'web');
  await until('serving', async () => (await get(port).catch(() => '')).includes('one'), 15_000, 50);
  // Requests on fresh connections across the restart: none may fail.
  let ok = 0;
  const failures: string[] = [];
  let stop = false;
  const load = (async () => {
    const end = Date.now() + 30_000;
    while (!stop && Date.now() < end) {
      try {
        if ((await get(port)).includes('one')) ok += 1;
        else failures.push('bad answer');
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  })();
  await until('some load', () => ok > 20, 10_000);
  assert.equal((await http(on(d), 'GET', '/web/restart')).status, 200);
  await running(d, 'web', [first]);
  await until('old web gone', () => !alive(first), 15_000);
  const after = ok;
  await until('load after', () => ok > after + 20, 10_000);
  stop = true;
  await load;
  t.diagnostic(`fresh-connection requests across GET /web/restart: ${ok} answered, ${failures.length} failed`);
  assert.deepEqual(failures, []);
  assert.ok(ok > 40, String(ok));
  assert.equal((await d.stop()).code, 0);
});
