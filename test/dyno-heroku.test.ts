/**
 * einhyrningsins-dyno behaves like Heroku, black-box: stock apps that bind
 * $PORT themselves (Node, gunicorn) through releases and scaling under load;
 * SIGTERM to the process group; DYNO names as slots; the release phase;
 * hsup's ftest cases (run_test.go, socket_test.go, json_load_test.go) that
 * apply to a process driver; .env and Procfile edge cases next to foreman's.
 */
import { afterEach, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { FIXTURES, ROOT, alive, load as startLoad, runCli, sleep, until } from './harness.js';
import {
  cleanupDrivers,
  get,
  newDir,
  q,
  runDyno,
  startDriver,
  writeRelease,
  type DriverProc,
  type DynoState,
  type DynoType,
} from './dyno-harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupDrivers(), []);
});

const STOCK = join(FIXTURES, 'dyno', 'stock-web.mjs');
const WSGI = join(FIXTURES, 'dyno', 'wsgi_app.py');
const CTL = join(ROOT, 'bin', 'einhyrningsinsctl');
const type = (st: DynoState, t: string) => st.types[t] as DynoType;
const names = (st: DynoState, t: string) => type(st, t).workers.map((w) => w.dyno);

/** Up processes of `t` exactly `n`, no roll, no draining type. */
async function settled(d: DriverProc, t: string, n: number, timeoutMs = 30_000): Promise<DynoState> {
  return await until(
    `${t} settled at ${n}`,
    async () => {
      const st = await d.state();
      const ty = st.types[t];
      if (!ty || st.retiring.length || ty.upgrading || ty.workers.length !== n || ty.workers.some((w) => w.state !== 'up')) return null;
      return st;
    },
    timeoutMs,
    50,
  );
}

/** A stock app's phases under load: what each one served and failed. */
interface Phase {
  phase: string;
  ok: number;
  failed: number;
}

async function stockAppUnderLoad(t: TestContext, web: string, label: string): Promise<Phase[]> {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), `web: ${web}\n`);
  writeFileSync(join(dir, '.env'), 'RELEASE_MARKER=r0\n');
  const d = startDriver(['start', '-b', '127.0.0.1:0,r', '-m', '1'], { dir });
  const port = await d.port();
  await settled(d, 'web', 1);
  await until('the app answers', async () => /^web\.1 r0 \d+$/.test(await get(port)), 20_000);
  // A fresh connection per request, as Heroku's router makes.
  const load = startLoad(port, 6, { fresh: true, maxMs: 120_000, timeoutMs: 10_000 });
  const phases: Phase[] = [];
  let mark = { ok: 0, failed: 0 };
  const phase = (name: string) => {
    phases.push({ phase: name, ok: load.result.ok - mark.ok, failed: load.result.failed - mark.failed });
    mark = { ok: load.result.ok, failed: load.result.failed };
  };
  await until('traffic', () => load.result.ok > 30, 20_000);
  phase('steady');
  for (let i = 1; i <= 5; i++) {
    writeFileSync(join(dir, '.env'), `RELEASE_MARKER=r${i}\n`);
    const replies = await d.ctl('upgrade', [], { timeoutMs: 60_000 });
    assert.equal(replies.at(-1)!.message, 'Upgrade done', JSON.stringify(replies));
    await settled(d, 'web', 1);
    const seen = load.result.ok;
    await until(`traffic on release r${i}`, () => load.result.ok > seen + 20 && load.result.recent.slice(-5).every((b) => b.includes(` r${i} `)), 20_000);
    phase(`release ${i}`);
  }
  await d.ctl('scale', ['web=4']);
  await settled(d, 'web', 4);
  let seen = load.result.ok;
  await until('traffic at 4', () => load.result.ok > seen + 40, 20_000);
  phase('scale 1 -> 4');
  await d.ctl('scale', ['web=1']);
  const one = await settled(d, 'web', 1);
  assert.deepEqual(names(one, 'web'), ['web.1'], 'scale-down removes the highest numbers');
  seen = load.result.ok;
  await until('traffic at 1', () => load.result.ok > seen + 20, 20_000);
  phase('scale 4 -> 1');
  const r = await load.stop();
  const served = new Set([...r.bodies].map((b) => b.split(' ')[1]));
  assert.deepEqual([...served].sort(), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
  t.diagnostic(`${label}: ${phases.map((p) => `${p.phase}: ${p.ok} ok / ${p.failed} failed`).join('; ')}; total ${r.ok} ok / ${r.failed} failed`);
  assert.equal(r.failed, 0, `failed requests: ${r.errors.join(', ')}`);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  // Every process that answered (gunicorn's workers are the driver's grandchildren) is gone.
  const servers = new Set([...r.bodies].map((b) => Number(b.split(' ')[2])));
  for (const pid of servers) await until(`server process ${pid} gone`, () => !alive(pid), 5000);
  return phases;
}

test('a stock Node app that binds $PORT itself: 5 releases and a scale 1 -> 4 -> 1 under load, no failed request', async (t) => {
  const phases = await stockAppUnderLoad(t, `${q(process.execPath)} ${q(STOCK)}`, 'stock Node app');
  assert.equal(phases.length, 8);
});

/** A Python that has Debian's gunicorn (python3-gunicorn), or null. */
function gunicornPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-m', 'gunicorn', '--version'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

test('gunicorn (Debian python3-gunicorn) binding $PORT: releases and scaling under load, no failed request, no process left', async (t) => {
  const py = gunicornPython();
  if (!py) {
    t.skip('gunicorn is not installed (apt-get install python3-gunicorn)');
    return;
  }
  const dir = join(FIXTURES, 'dyno');
  await stockAppUnderLoad(t, `${py} -m gunicorn -b 0.0.0.0:$PORT -w 2 --chdir ${q(dir)} wsgi_app:app`, 'gunicorn -w 2');
  void WSGI;
});

test('processes stop with SIGTERM to their process group (grandchildren too), SIGKILL after -t; --stop-signal', async () => {
  const dir = newDir();
  // The worker ignores TERM but its background sleep (same process group) does not.
  writeFileSync(
    join(dir, 'Procfile'),
    [
      `worker: trap 'echo worker got TERM' TERM; sleep 1000 & echo "sleep $!"; while :; do sleep 0.1; done`,
      `polite: trap 'echo polite got USR1; exit 0' USR1; trap 'echo polite got TERM; exit 0' TERM; while :; do sleep 0.1; done`,
    ].join('\n') + '\n',
  );
  const d = startDriver(['start', '-t', '2'], { dir });
  await d.ready({ worker: 1, polite: 1 });
  const sleepPid = Number((await d.waitOut(/^worker\.1 \| sleep (\d+)$/m))[1]);
  d.snapshotChildren();
  const bye = await d.ctl('die');
  assert.match(bye[0]!.message, /Sent SIGTERM/);
  await d.waitOut(/^worker\.1 \| worker got TERM$/m);
  await d.waitOut(/^polite\.1 \| polite got TERM$/m);
  await until('the grandchild got TERM with its group', () => !alive(sleepPid), 5000);
  await d.waitLog(/SIGKILL/, 10_000);
  assert.deepEqual(await d.exit, { code: 0, signal: null });

  const d2 = startDriver(['start', '--stop-signal', 'USR1', 'polite'], { dir });
  await d2.ready({ polite: 1 });
  await d2.ctl('die');
  await d2.waitOut(/^polite\.1 \| polite got USR1$/m);
  assert.deepEqual(await d2.exit, { code: 0, signal: null });
});

test('DYNO names are slots: kept across releases, crashes and quick upgrades; scale-down from the top; run.N unique; run TYPE', async () => {
  const dir = newDir();
  writeFileSync(
    join(dir, 'Procfile'),
    `web: ${q(process.execPath)} ${q(STOCK)}\nworker: echo "I am $DYNO"; exec sleep 1000\nhello: echo hello $DYNO\n`,
  );
  const d = startDriver(['start', '-b', '127.0.0.1:0,r', '--formation', 'web=2', 'web', 'worker'], { dir });
  const port = await d.port();
  let st = await d.ready({ web: 2, worker: 1 });
  assert.deepEqual(names(st, 'web'), ['web.1', 'web.2']);
  assert.deepEqual(names(st, 'worker'), ['worker.1']);
  await d.waitOut(/^worker\.1 \| I am worker\.1$/m);
  // A release: the new processes take the names of the ones they replace.
  assert.equal((await d.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  st = await d.ready({ web: 2, worker: 1 });
  assert.deepEqual([names(st, 'web'), names(st, 'worker')], [['web.1', 'web.2'], ['worker.1']]);
  // Ten quick upgrades: still web.1 and web.2, worker.1.
  await Promise.all(Array.from({ length: 10 }, () => d.ctl('upgrade', [], { id: null, timeoutMs: 60_000 })));
  st = await d.ready({ web: 2, worker: 1 }, 60_000);
  assert.deepEqual([names(st, 'web'), names(st, 'worker')], [['web.1', 'web.2'], ['worker.1']]);
  // A crash of web.2: its replacement is web.2.
  const web2 = type(st, 'web').workers.find((w) => w.dyno === 'web.2')!.pid;
  process.kill(web2, 'SIGKILL');
  st = await until('web.2 replaced', async () => {
    const s = await d.ready({ web: 2, worker: 1 });
    return type(s, 'web').workers.every((w) => w.pid !== web2) ? s : null;
  });
  assert.deepEqual(names(st, 'web'), ['web.1', 'web.2']);
  await d.ctl('scale', ['web=4']);
  st = await d.ready({ web: 4, worker: 1 });
  assert.deepEqual(names(st, 'web'), ['web.1', 'web.2', 'web.3', 'web.4']);
  await d.ctl('scale', ['web=1']);
  st = await d.ready({ web: 1, worker: 1 });
  assert.deepEqual(names(st, 'web'), ['web.1']);
  assert.match(await get(port), /^web\.1 - \d+$/);

  // run: unique run.N while another one-off runs; run TYPE runs the Procfile entry.
  const first = runDyno(['run', '--', 'sh', '-c', 'echo "$DYNO"; sleep 2'], { cwd: dir });
  await sleep(800);
  const second = await runDyno(['run', '--', 'sh', '-c', 'echo "$DYNO"'], { cwd: dir });
  assert.equal(second.stdout, 'run.2\n', second.stderr);
  assert.equal((await first).stdout, 'run.1\n');
  const hello = await runDyno(['run', '-f', 'Procfile', 'hello', 'there'], { cwd: dir });
  assert.equal(hello.stdout, 'hello run.1 there\n', 'run TYPE runs that Procfile entry, with the further words');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });

  // --start-number (hsup's): the first dyno is web.5.
  const d2 = startDriver(['start', '--start-number', '5', 'worker'], { dir });
  st = await d2.ready({ worker: 1 });
  assert.deepEqual(names(st, 'worker'), ['worker.5']);
  await d2.waitOut(/^worker\.5 \| I am worker\.5$/m);
  assert.deepEqual(await d2.stop(), { code: 0, signal: null });
});

test('release phase: once per release before the roll, not for a restart, a failure keeps the running release; never a process type', async () => {
  const dir = newDir();
  writeFileSync(
    join(dir, 'Procfile'),
    [
      `release: echo "release $RELEASE_MARKER $DYNO" >> order.log; exit $RELEASE_EXIT`,
      `worker: echo "worker $RELEASE_MARKER" >> order.log; exec sleep 1000`,
    ].join('\n') + '\n',
  );
  const env = (marker: string, exit: number) => writeFileSync(join(dir, '.env'), `RELEASE_MARKER=${marker}\nRELEASE_EXIT=${exit}\n`);
  const log = () => readFileSync(join(dir, 'order.log'), 'utf8').trim().split('\n');
  env('a', 0);
  const d = startDriver(['start'], { dir });
  let st = await d.ready({ worker: 1 });
  assert.deepEqual(Object.keys(st.types), ['worker'], 'the release phase is not in the formation');
  await until('the worker started', () => existsSync(join(dir, 'order.log')) && log().length === 2);
  assert.deepEqual(log(), ['release a release.1', 'worker a']);

  // A new release: the release phase runs first, then the roll.
  env('b', 0);
  const up = await d.ctl('upgrade');
  assert.equal(up.at(-1)!.message, 'Upgrade done');
  assert.ok(up.some((r) => /running the release phase/.test(r.message)), JSON.stringify(up));
  st = await d.ready({ worker: 1 });
  await until('worker b', () => log().includes('worker b'));
  assert.deepEqual(log(), ['release a release.1', 'worker a', 'release b release.1', 'worker b']);
  // The same app again (a restart): no release phase.
  assert.equal((await d.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  await until('the restarted worker', () => log().length === 5);
  assert.deepEqual(log().slice(4), ['worker b']);
  const pid = type(await d.ready({ worker: 1 }), 'worker').workers[0]!.pid;

  // A failing release phase: the release is not applied.
  env('c', 3);
  const failed = await d.ctl('upgrade');
  assert.equal(failed.at(-1)!.error, true);
  assert.match(failed.at(-1)!.message, /Upgrade failed: the release phase of release \d+ failed \(exit status 3\); still running release \d+/);
  await d.waitLog(/ERROR: Release \d+: the release phase failed \(exit status 3\)/);
  st = await d.ready({ worker: 1 });
  assert.equal(type(st, 'worker').workers[0]!.pid, pid, 'the running worker was left alone');
  assert.deepEqual(log().slice(5), ['release c release.1']);
  const state = (await d.ctl('state'))[0] as unknown as { state: { last_release_phase: { ok: boolean; status: string } } };
  assert.deepEqual([state.state.last_release_phase.ok, state.state.last_release_phase.status], [false, 'exit status 3']);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });

  // At the first start, a failing release phase: one line, exit 1, nothing left.
  const r = await runDyno(['start', '-d', join(dir, 'c2.sock')], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr.trim().split('\n').at(-1)!, /^einhyrningsins-dyno: the release phase of the app failed \(exit status 3\); not starting$/);
  assert.ok(!existsSync(join(dir, 'c2.sock')));

  // SIGTERM during the first release phase: it is stopped, nothing starts, exit 1.
  const slow = newDir();
  writeFileSync(join(slow, 'Procfile'), 'release: echo $$ > rel.pid; exec sleep 30\nworker: exec sleep 1000\n');
  const s3 = startDriver(['start'], { dir: slow });
  const relPid = await until('the release phase runs', () => (existsSync(join(slow, 'rel.pid')) ? Number(readFileSync(join(slow, 'rel.pid'), 'utf8')) : 0));
  s3.proc.kill('SIGTERM');
  assert.deepEqual(await s3.exit, { code: 1, signal: null });
  assert.match(s3.stderr, /einhyrningsins-dyno: stopped by SIGTERM during the release phase; nothing was started\n$/);
  await until('the release phase is gone', () => !alive(relPid), 5000);
  assert.ok(!existsSync(s3.sockPath));
});

test('release phase in a control dir: a failure rejects the release (rejected, last_error)', async () => {
  const dir = newDir();
  const ctlDir = join(dir, 'control');
  mkdirSync(ctlDir);
  const rel = (v: number, exit: number) => ({
    Version: v,
    Env: { V: String(v) },
    Processes: [
      { Type: 'release', Args: [`echo release $V >> ${q(join(dir, 'rel.log'))}; exit ${exit}`] },
      { Type: 'worker', Args: ['sleep', '1000'], Quantity: 1 },
    ],
  });
  writeRelease(ctlDir, rel(1, 0));
  const d = startDriver(['start', '-c', ctlDir], { dir });
  await until('release 1', async () => (await d.state()).release?.version === 1, 20_000);
  await d.ready({ worker: 1 });
  writeRelease(ctlDir, rel(2, 1));
  await until('release 2 rejected', () => existsSync(join(ctlDir, 'rejected')), 20_000);
  assert.match(readFileSync(join(ctlDir, 'last_error'), 'utf8'), /release phase failed \(exit status 1\)/);
  assert.equal((await d.state()).release?.version, 1);
  assert.equal(readFileSync(join(dir, 'rel.log'), 'utf8'), 'release 1\nrelease 2\n');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

/** One HTTP request over the control socket (hsup's API client). */
async function hsupHttp(sock: string, method: string, path: string, body?: unknown): Promise<{ status: number; type: string; body: string }> {
  return await new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath: sock, method, path, headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: b }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

test("hsup ftest socket_test: GET /health, GET /status, POST /control/stop on the control socket, beside einhorn's protocol", async () => {
  const dir = newDir();
  const ctlDir = join(dir, 'control');
  mkdirSync(ctlDir);
  // hsup's AppWithEnv, with two process types.
  writeRelease(ctlDir, {
    Version: 1,
    Name: 'test-app-123',
    Env: { TESTENTRY: 'vAlId', PORT: '0' },
    Stack: 'cedar-14',
    Processes: [
      { Type: 'web', Args: [`${q(process.execPath)} ${q(STOCK)}`], Quantity: 1 },
      { Type: 'clock', Args: ['sleep 5; exec sleep 1000'], Quantity: 1 },
    ],
  });
  const d = startDriver(['start', '-c', ctlDir, '-b', '127.0.0.1:0'], { dir });
  const port = await d.port();
  await d.ready({ web: 1, clock: 1 });
  const health = await hsupHttp(d.sockPath, 'GET', '/health');
  assert.deepEqual([health.status, health.body], [200, 'OK']);
  const status = await hsupHttp(d.sockPath, 'GET', '/status');
  assert.equal(status.status, 200);
  assert.equal(status.type, 'application/json');
  const s = JSON.parse(status.body) as { Processes: Record<string, { Status: string; IPAddress: string; Port: number }> };
  assert.equal(Object.keys(s.Processes).length, 2);
  assert.equal(s.Processes.web!.Status, 'Started');
  assert.ok(s.Processes.web!.IPAddress !== '' && !s.Processes.web!.IPAddress.includes('/'));
  assert.equal(s.Processes.web!.Port, port);
  // einhorn lines on the same socket still work.
  assert.match((await d.ctl('status'))[0]!.message, /^web\s+1\s+1/m);
  assert.equal((await hsupHttp(d.sockPath, 'POST', '/status')).status, 405);
  assert.equal((await hsupHttp(d.sockPath, 'GET', '/nope')).status, 404);
  const stop = await hsupHttp(d.sockPath, 'POST', '/control/stop', { Processes: ['web', 'nope'] });
  assert.equal(stop.status, 200);
  assert.deepEqual(JSON.parse(stop.body), { StoppedProcesses: ['web'] });
  await d.ready({ web: 0, clock: 1 });
  await until('web reported stopped', async () => JSON.parse((await hsupHttp(d.sockPath, 'GET', '/status')).body).Processes.web.Status === 'Stopped');
  assert.equal((await hsupHttp(d.sockPath, 'POST', '/control/stop', 'not json')).status, 200);
  assert.equal((await hsupHttp(d.sockPath, 'POST', '/control/stop')).status, 500);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('hsup ftest run_test and json_load_test: bash -c one-offs, DYNO=run.1; cold start from loaded or new; lower-case keys; rejected/last_error', async () => {
  const dir = newDir();
  const ctlDir = join(dir, 'control');
  mkdirSync(ctlDir);
  // TestEmptyDB: nothing to run yet; the driver waits.
  const d = startDriver(['start', '-c', ctlDir], { dir });
  await d.waitLog(/Waiting for a release in/);
  // TestSimpleBashExprWithVar / TestEnv.
  const appWithEnv = { Version: 1, Env: { TESTENTRY: 'vAlId', PORT: '5000' }, Processes: [] };
  writeRelease(ctlDir, appWithEnv);
  await until('new promoted to loaded (TestColdStartNew)', () => existsSync(join(ctlDir, 'loaded')) && !existsSync(join(ctlDir, 'new')), 20_000);
  const run = await runDyno(['run', '-c', ctlDir, 'echo $TESTENTRY'], { cwd: dir });
  assert.equal(run.stdout.trim(), 'vAlId', run.stderr);
  const envRun = await runDyno(['run', '-c', ctlDir, 'env'], { cwd: dir });
  assert.match(envRun.stdout, /^DYNO=run\.1$/m);
  // TestLoadCycle with hsup's looser parsing: lower-case keys, one-element Args, no Quantity.
  writeRelease(ctlDir, { version: 2, env: { another: 'fixture' }, processes: [{ type: 'another-fixture', args: ['echo "$another $DYNO"; exec sleep 1000'], quantity: 1 }, { type: 'idle', args: ['x'] }] });
  await d.waitOut(/^another-fixture\.1 \| fixture another-fixture\.1$/m, 20_000);
  assert.deepEqual(Object.keys((await d.ready({ 'another-fixture': 1, idle: 0 })).types).sort(), ['another-fixture', 'idle']);
  writeRelease(ctlDir, null, 'bogus json');
  await until('bogus json rejected', () => existsSync(join(ctlDir, 'rejected')) && existsSync(join(ctlDir, 'last_error')), 20_000);
  assert.match(readFileSync(join(ctlDir, 'last_error'), 'utf8'), /invalid JSON/);
  assert.equal((await d.state()).release?.version, 2);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  // TestColdStartLoaded: loaded and no new; hsup's `start TYPE=N` sets the quantity (and runs only that type).
  const d2 = startDriver(['start', '-c', ctlDir, 'another-fixture=2'], { dir });
  await d2.waitOut(/^another-fixture\.2 \| fixture another-fixture\.2$/m, 20_000);
  assert.deepEqual(Object.keys((await d2.ready({ 'another-fixture': 2 })).types), ['another-fixture']);
  assert.deepEqual(await d2.stop(), { code: 0, signal: null });
});

test("hsup's command line: --oneshot exits with the highest status; -d simple and other drivers refused in one line", async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), 'a: sleep 0.3; exit 3\nb: sleep 0.5\n');
  const d = startDriver(['start', '--oneshot', '--dynodriver', 'simple'], { dir });
  assert.deepEqual(await d.exit, { code: 3, signal: null });
  assert.equal((d.stdout + d.stderr).match(/Launched/g)?.length, 2, 'nothing was restarted');
  assert.ok(!existsSync(d.sockPath));
  for (const [args, re] of [
    [['-d', 'simple', 'start'], /^einhyrningsins-dyno: -d is the control socket path; to choose hsup's dyno driver use --dynodriver simple \(see --help\)\n$/],
    [['start', '--dynodriver', 'docker'], /^einhyrningsins-dyno: --dynodriver docker: not supported \(containers are out of scope\); only 'simple' is \(see --help\)\n$/],
  ] as Array<[string[], RegExp]>) {
    const r = await runDyno(args, { cwd: dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, re);
    assert.ok(!existsSync(join(dir, 'simple')));
  }
});

test('the .env PORT is the bind; a static executable that binds $PORT gets a log line; einhyrningsinsctl finds the default socket', async (t) => {
  const dir = newDir();
  const free = await new Promise<number>((resolve) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  writeFileSync(join(dir, 'Procfile'), `web: ${q(process.execPath)} ${q(STOCK)}\n`);
  writeFileSync(join(dir, '.env'), `PORT=${free}\n`);
  const d = startDriver(['start'], { dir, env: { TMPDIR: dir }, socket: false });
  // No -d: the default socket in $TMPDIR.
  Object.defineProperty(d, 'sockPath', { value: join(dir, 'einhyrningsins-dyno.sock') });
  assert.equal(await d.port(), free);
  await until('the app answers on the .env PORT', async () => /^web\.1 - \d+$/.test(await get(free)), 20_000);
  // No -d: the ctl finds the driver's default socket in $TMPDIR.
  const st = await runCli(['status'], { bin: CTL, env: { TMPDIR: dir }, cwd: dir });
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /^ {2}web\.1 +pid \d+/m);
  // A release that moves PORT: the new processes listen on the new port.
  const free2 = await new Promise<number>((resolve) => {
    const s2 = http.createServer().listen(0, '127.0.0.1', () => {
      const p = (s2.address() as { port: number }).port;
      s2.close(() => resolve(p));
    });
  });
  writeFileSync(join(dir, '.env'), `PORT=${free2}\n`);
  assert.equal((await d.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  await d.waitLog(new RegExp(`PORT changed from ${free} to ${free2}`));
  await until('the app answers on the new PORT', async () => /^web\.1 - \d+$/.test(await get(free2)), 20_000);
  assert.equal(((await d.ctl('state'))[0] as unknown as { state: { bind: { port: number } } }).state.bind.port, free2);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });

  let cc: string | null = null;
  for (const c of ['cc', 'gcc']) if (spawnSync(c, ['--version']).status === 0) cc = c;
  if (!cc) {
    t.diagnostic('no C compiler: the static-executable case is not tested');
    return;
  }
  const src = join(dir, 'bindport.c');
  writeFileSync(
    src,
    `#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(getenv("PORT")));
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); return 1; }
  listen(s, 8);
  pause();
  return 0;
}
`,
  );
  try {
    execFileSync(cc, ['-static', '-O1', '-o', join(dir, 'bindport'), src], { stdio: 'ignore' });
  } catch {
    t.diagnostic('cannot link statically (no libc.a): the static-executable case is not tested');
    return;
  }
  writeFileSync(join(dir, 'Procfile'), `web: ./bindport\n`);
  const s = startDriver(['start', '-b', '127.0.0.1:0,r'], { dir });
  await s.port();
  const line = await s.waitLog(/WARN: web\.1( \(pid \d+\))? runs .*bindport, a static executable: LD_PRELOAD cannot reach it, so if it binds \$PORT itself it cannot share the port.*EINHORN_FD_0/, 15_000);
  assert.ok(!line[0].includes('\n'));
  await s.waitLog(/web\.1 \| bind: Address already in use/);
  assert.deepEqual(await s.stop(), { code: 0, signal: null });
});

/** foreman's own reading of a .env (ruby-foreman), or null when it is not installed. */
function foremanEnv(dir: string): Record<string, string> | null {
  const r = spawnSync('foreman', ['run', 'env'], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) return null;
  const out: Record<string, string> = {};
  for (const l of r.stdout.split('\n')) {
    const eq = l.indexOf('=');
    if (eq > 0) out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

test('.env and Procfile edge cases, next to foreman: what foreman skips is skipped with a warning naming file and line', async (t) => {
  const dir = newDir();
  writeFileSync(
    join(dir, '.env'),
    ['A=1', 'JUNK', 'C="unterminated', '1X=digits', 'MY-K=dash', 'Q="quoted \\" x"', 'S=\'single\'', 'A=2'].join('\n') + '\n',
  );
  writeFileSync(join(dir, 'Procfile'), ['# a comment', 'web: echo first', 'not a procfile line', 'bad.type: x', 'web: echo second', 'empty:'].join('\n') + '\n');
  const ours = await runDyno(['run', 'env'], { cwd: dir });
  assert.equal(ours.code, 0, ours.stderr);
  const got = Object.fromEntries(
    ours.stdout
      .split('\n')
      .filter((l) => /^(A|C|1X|MY-K|Q|S|JUNK)=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const expected = { A: '2', C: '"unterminated', '1X': 'digits', Q: 'quoted " x', S: 'single' };
  assert.deepEqual(got, expected);
  const warnings = ours.stderr.trim().split('\n');
  assert.ok(warnings.some((w) => /\.env:2: skipped: expected KEY=VALUE, got "JUNK"$/.test(w)), ours.stderr);
  assert.ok(warnings.some((w) => /\.env:3: unterminated double quote in C; taken literally/.test(w)), ours.stderr);
  assert.ok(warnings.some((w) => /\.env:5: skipped: invalid variable name "MY-K"/.test(w)), ours.stderr);
  const web = await runDyno(['run', 'web'], { cwd: dir });
  assert.equal(web.stdout, 'second\n', 'a type defined twice: the later one, as foreman run');
  assert.match(web.stderr, /Procfile:3: skipped: expected 'type: command'/);
  assert.match(web.stderr, /Procfile:4: skipped: invalid process type "bad.type"/);
  assert.match(web.stderr, /Procfile:5: process type 'web' is defined again; this definition replaces the one of line 2/);
  assert.match(web.stderr, /Procfile:6: skipped: process type 'empty' has no command/);

  const foreman = foremanEnv(dir);
  if (foreman === null) {
    t.diagnostic('foreman is not installed (apt-get install ruby-foreman): compared with the recorded behaviour only');
  } else {
    const theirs = Object.fromEntries(Object.entries(foreman).filter(([k]) => /^(A|C|1X|MY-K|Q|S|JUNK)$/.test(k)));
    assert.deepEqual(theirs, expected, 'foreman reads this .env the same way');
    const fw = spawnSync('foreman', ['run', 'web'], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    assert.equal(fw.stdout, web.stdout, 'foreman run web runs the same entry');
  }

  // A comment-only Procfile: foreman runs nothing (and waits); so do we, with a warning, until an upgrade.
  writeFileSync(join(dir, 'Procfile'), '# nothing yet\n');
  const d = startDriver(['start'], { dir });
  await d.waitLog(/WARN: .*Procfile: no process types defined; nothing to run/);
  await d.waitLog(/Release 1 from .*Procfile: no process types/);
  writeFileSync(join(dir, 'Procfile'), 'worker: exec sleep 1000\n');
  assert.equal((await d.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  await d.ready({ worker: 1 });
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});
