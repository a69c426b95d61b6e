/**
 * einhyrningsins-dyno, black-box: real driver, real dynos (a Node web server
 * on the shared socket, a shell worker), Procfile and control-dir apps,
 * releases under load, scaling, bad releases, slugs, bad input.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, watch, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { alive, childrenOf, until } from './harness.js';
import {
  WEB,
  WORKER,
  cleanupDrivers,
  get,
  load,
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

function procfileApp(dir: string, marker: string): void {
  writeFileSync(join(dir, 'Procfile'), `# the test app\n\nweb: ${q(process.execPath)} ${q(WEB)}\nworker: sh ${q(WORKER)}\n`);
  writeFileSync(join(dir, '.env'), `export RELEASE_MARKER="${marker}"\nFOO='bar baz' # from .env\n`);
}

interface RelOpts {
  web?: number;
  worker?: number | null;
  slug?: string;
}

function release(version: number, marker: string, o: RelOpts = {}) {
  const processes: unknown[] = [{ Type: 'web', Args: [process.execPath, WEB], Quantity: o.web ?? 2 }];
  if (o.worker !== null) processes.push({ Type: 'worker', Args: ['sh', WORKER], Quantity: o.worker ?? 1 });
  return { Version: version, Env: { RELEASE_MARKER: marker }, Slug: o.slug ?? '', Stack: 'cedar-14', Processes: processes };
}

function controlDir(dir: string): string {
  const c = join(dir, 'control');
  mkdirSync(c);
  return c;
}

const type = (st: DynoState, t: string) => st.types[t] as DynoType;
const pids = (st: DynoState, t: string) => type(st, t).workers.map((w) => w.pid);

async function waitRelease(d: DriverProc, version: number, pred: (st: DynoState) => boolean = () => true, timeoutMs = 30_000) {
  return await until(
    `release ${version} applied and settled`,
    async () => {
      const st = await d.state();
      if (st.release?.version !== version || st.retiring.length) return null;
      for (const t of Object.values(st.types)) {
        if (t.upgrading || t.workers.length !== t.quantity || t.workers.some((w) => w.state !== 'up')) return null;
      }
      return pred(st) ? st : null;
    },
    timeoutMs,
    50,
  );
}

test('a Procfile app: web and worker run with prefixed logs, DYNO, PORT, .env; run exits with the status', async () => {
  const dir = newDir();
  procfileApp(dir, 'from-dotenv');
  const d = startDriver(['start', '-b', '127.0.0.1:0,r', '--formation', 'web=2'], { dir });
  const port = await d.port();
  const st = await d.ready({ web: 2, worker: 1 });
  const kids = childrenOf(d.pid);
  for (const p of [...pids(st, 'web'), ...pids(st, 'worker')]) assert.ok(kids.includes(p), `dyno ${p} is a direct child`);
  assert.deepEqual(type(st, 'web').workers.map((w) => w.dyno), ['web.1', 'web.2']);
  await d.waitOut(new RegExp(`^web\\.1 \\| web listening DYNO=web\\.1 PORT=${port} FDS=1$`, 'm'));
  await d.waitOut(new RegExp(`^web\\.2 \\| web listening DYNO=web\\.2 PORT=${port} FDS=1$`, 'm'));
  await d.waitOut(new RegExp(`^worker\\.1 \\| tick worker\\.1 marker=from-dotenv fds=0$`, 'm'));
  await d.waitLog(/^web\.1 \| web stderr line from web\.1$/m);
  for (let i = 0; i < 6; i++) assert.match(await get(port), /^web\.[12] from-dotenv -$/);

  const run = await runDyno(['run', '--', 'sh', '-c', 'echo "$FOO $DYNO"; exit 7'], { cwd: dir });
  assert.equal(run.code, 7, run.stderr);
  assert.equal(run.stdout, 'bar baz run.1\n');
  const killed = await runDyno(['run', 'sh', '-c', 'kill -TERM $$'], { cwd: dir });
  assert.equal(killed.code, 128 + 15);
  const missing = await runDyno(['run', '--', 'no-such-command-anywhere'], { cwd: dir });
  assert.equal(missing.code, 127);
  assert.equal(missing.stderr, 'einhyrningsins-dyno: run: no-such-command-anywhere: command not found\n');

  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  assert.match(d.stderr, /Every process has exited; bye/);
});

test('control dir: a new release (new Env) rolls every type under load with no failed request', async () => {
  const dir = newDir();
  const ctlDir = controlDir(dir);
  writeRelease(ctlDir, release(1, 'one'));
  const d = startDriver(['start', '-c', ctlDir, '-b', '127.0.0.1:0,r'], { dir });
  const port = await d.port();
  const st1 = await waitRelease(d, 1);
  assert.ok(!existsSync(join(ctlDir, 'new')) && existsSync(join(ctlDir, 'loaded')), 'new was renamed to loaded');
  assert.equal(JSON.parse(readFileSync(join(ctlDir, 'loaded'), 'utf8')).Version, 1);
  const oldPids = [...pids(st1, 'web'), ...pids(st1, 'worker')];

  const traffic = load(port, 8);
  await until('some traffic', () => traffic.result.ok > 50, 10_000);
  writeRelease(ctlDir, release(2, 'two'));
  const st2 = await waitRelease(d, 2, (st) => type(st, 'web').generation === 1 && type(st, 'worker').generation === 1);
  for (const p of oldPids) await until(`old dyno ${p} to exit`, () => !alive(p));
  const seen = traffic.result.ok;
  await until('traffic on the new release', () => traffic.result.ok > seen + 50, 10_000);
  const r = await traffic.stop();
  assert.equal(r.failed, 0, `failed requests: ${r.errors.join(', ')}`);
  const markers = new Set([...r.bodies].map((b) => b.split(' ')[1]));
  assert.deepEqual([...markers].sort(), ['one', 'two'], `served both releases: ${[...r.bodies]}`);
  assert.match(await get(port), /^web\.\d+ two -$/);
  assert.equal(type(st2, 'web').release_version, 2);
  assert.equal(type(st2, 'worker').release_version, 2);
  await d.waitOut(/^worker\.(\d) \| tick worker\.\1 marker=two fds=0$/m);
  assert.match(d.stderr, /Release 2 from .*new: web: environment changed; worker: environment changed/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('quantities: by a new release, by scale/inc/dec; a type the release drops is drained', async () => {
  const dir = newDir();
  const ctlDir = controlDir(dir);
  writeRelease(ctlDir, release(1, 'one', { web: 1, worker: 1 }));
  const d = startDriver(['start', '-c', ctlDir, '-b', '127.0.0.1:0,r'], { dir });
  const port = await d.port();
  const st1 = await waitRelease(d, 1);
  const web1 = pids(st1, 'web');

  writeRelease(ctlDir, release(2, 'one', { web: 3, worker: 1 }));
  const st2 = await waitRelease(d, 2, (st) => type(st, 'web').workers.length === 3);
  assert.equal(type(st2, 'web').generation, 0, 'a quantity change is no upgrade');
  for (const p of web1) assert.ok(pids(st2, 'web').includes(p), 'the first web dyno kept running');

  const scaled = await d.ctl('scale', ['web=1', 'worker=2']);
  assert.equal(scaled.length, 1);
  assert.match(scaled[0]!.message, /\[web\] Altering worker count, 3 -> 1/);
  assert.match(scaled[0]!.message, /\[worker\] Altering worker count, 1 -> 2/);
  await d.ready({ web: 1, worker: 2 });
  assert.match((await d.ctl('inc', ['worker']))[0]!.message, /\[worker\] Incrementing number of workers from 2 -> 3/);
  await d.ready({ web: 1, worker: 3 });
  await d.ctl('dec', ['worker']);
  const st3 = await d.ready({ web: 1, worker: 2 });
  const bad = await d.ctl('scale', ['nope=1']);
  assert.equal(bad[0]!.error, true);
  assert.match(bad[0]!.message, /Unknown process type 'nope' \(running: web, worker\)/);
  assert.equal((await d.ctl('scale', ['web=x']))[0]!.error, true);
  assert.equal((await d.ctl('inc'))[0]!.error, true);

  // Release 3 keeps web's quantity (the scale stands) and drops worker.
  writeRelease(ctlDir, release(3, 'one', { web: 3, worker: null }));
  await d.waitLog(/\[worker\] not in release 3: draining its processes/);
  for (const p of pids(st3, 'worker')) await until(`worker dyno ${p} to exit`, () => !alive(p));
  const st4 = await waitRelease(d, 3, (st) => !('worker' in st.types));
  assert.deepEqual(Object.keys(st4.types), ['web']);
  assert.equal(type(st4, 'web').quantity, 1);
  assert.match(await get(port), /^web\.\d one -$/);
  await d.waitLog(/\[worker\] every process has exited; process type removed/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('bad control files are set aside as hsup does (rejected, last_error); the running release keeps serving', async () => {
  const dir = newDir();
  const ctlDir = controlDir(dir);
  writeRelease(ctlDir, release(1, 'one', { web: 1, worker: null }));
  const d = startDriver(['start', '-c', ctlDir, '-b', '127.0.0.1:0,r'], { dir });
  const port = await d.port();
  const st1 = await waitRelease(d, 1);
  const loaded = readFileSync(join(ctlDir, 'loaded'), 'utf8');
  const web = { Type: 'web', Args: [process.execPath, WEB], Quantity: 1 };
  const cases: Array<[string, RegExp]> = [
    ['{"Version": 2, "Processes": [', /invalid JSON/],
    [JSON.stringify({ Version: 2, Processes: [{ Type: 'web', Quantity: 1 }] }), /Processes\[0\]\.Args \(web\) must be a non-empty array of strings, got nothing/],
    [JSON.stringify({ Version: 2, Processes: [{ ...web, Quantity: -1 }] }), /Processes\[0\]\.Quantity \(web\) must be an integer from 0 to 10000, got -1/],
    [JSON.stringify({ Version: 2, Env: { A: 1 }, Processes: [web] }), /Env\.A must be a string/],
    [JSON.stringify({ Version: 2, Processes: [web, web] }), /Type 'web' appears more than once/],
  ];
  for (const [text, why] of cases) {
    writeRelease(ctlDir, null, text);
    await until(
      `${text} set aside`,
      () => !existsSync(join(ctlDir, 'new')) && existsSync(join(ctlDir, 'rejected')) && readFileSync(join(ctlDir, 'rejected'), 'utf8') === text,
      10_000,
    );
    const st = await d.state();
    assert.match(st.last_rejected?.reason ?? '', why);
    assert.match(readFileSync(join(ctlDir, 'last_error'), 'utf8'), why);
    assert.equal(st.release?.version, 1);
    assert.deepEqual(pids(st, 'web'), pids(st1, 'web'), 'the same dynos still run');
    const line = await d.waitLog(new RegExp(`^.*ERROR: Rejected release .*new \\(moved to rejected, reason in last_error\\): .*$`, 'm'));
    assert.ok(!line[0].includes('\n'));
    assert.match(await get(port), /^web\.1 one -$/);
    assert.equal(readFileSync(join(ctlDir, 'loaded'), 'utf8'), loaded);
  }
  assert.match((await d.ctl('status'))[0]!.message, /last rejected release: .*Type 'web' appears more than once/);
  // A good one is taken again.
  writeRelease(ctlDir, release(2, 'two', { web: 1, worker: null }));
  const st2 = await waitRelease(d, 2);
  assert.equal(st2.last_rejected, null);
  assert.ok(!existsSync(join(ctlDir, 'rejected')) && !existsSync(join(ctlDir, 'last_error')), 'a loaded release clears them, as in hsup');
  assert.match(await get(port), /^web\.\d two -$/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('slugs: a .tgz is unpacked into the state dir and the release runs there; a bad archive is refused', async () => {
  const dir = newDir();
  const ctlDir = controlDir(dir);
  const src = join(dir, 'src');
  mkdirSync(src);
  const pack = (name: string, marker: string) => {
    writeFileSync(join(src, 'slug-marker.txt'), `${marker}\n`);
    execFileSync('tar', ['czf', join(ctlDir, name), '-C', src, '.']);
  };
  pack('app-1.tgz', 'slug-v1');
  writeRelease(ctlDir, release(1, 'one', { web: 1, worker: null, slug: 'app-1.tgz' }));
  // Manual ACKs: the web dynos' worker:ack must reach their group.
  const d = startDriver(['start', '-c', ctlDir, '-b', '127.0.0.1:0,r', '-m', 'manual'], { dir });
  const port = await d.port();
  const st1 = await waitRelease(d, 1);
  assert.equal(st1.release?.cwd, join(ctlDir, '.state', 'releases', '1'));
  assert.equal(readFileSync(join(ctlDir, '.state', 'releases', '1', 'slug-marker.txt'), 'utf8'), 'slug-v1\n');
  assert.match(await get(port), /^web\.1 one slug-v1$/);

  pack('app-2.tgz', 'slug-v2');
  writeRelease(ctlDir, release(2, 'one', { web: 1, worker: null, slug: 'app-2.tgz' }));
  const st2 = await waitRelease(d, 2, (st) => type(st, 'web').generation === 1);
  assert.equal(st2.release?.cwd, join(ctlDir, '.state', 'releases', '2'));
  assert.match(await get(port), /^web\.\d one slug-v2$/);
  // run: the loaded release's environment, in its slug directory.
  const run = await runDyno(['run', '-c', ctlDir, '--', 'sh', '-c', 'echo "$(cat slug-marker.txt) $RELEASE_MARKER $DYNO $PWD"'], { cwd: dir });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `slug-v2 one run.1 ${join(ctlDir, '.state', 'releases', '2')}\n`);
  assert.ok(existsSync(join(ctlDir, 'loaded')) && !existsSync(join(ctlDir, 'new')));

  writeFileSync(join(ctlDir, 'bad.tgz'), 'this is not gzip');
  writeRelease(ctlDir, release(3, 'one', { web: 1, worker: null, slug: 'bad.tgz' }));
  await until('bad slug refused', () => existsSync(join(ctlDir, 'rejected')), 10_000);
  const st3 = await d.state();
  assert.match(st3.last_rejected?.reason ?? '', /Slug bad\.tgz: cannot unpack/);
  assert.equal(st3.release?.version, 2);
  assert.ok(!existsSync(join(ctlDir, '.state', 'releases', '3')));
  assert.deepEqual(readdirSync(join(ctlDir, '.state', 'releases')).filter((n) => n.startsWith('.unpack')), []);
  assert.match(await get(port), /^web\.\d one slug-v2$/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('control commands: upgrade streams per type and waits for all; SIGHUP re-reads .env; die exits', async () => {
  const dir = newDir();
  procfileApp(dir, 'a');
  const d = startDriver(['start', '-b', '127.0.0.1:0,r'], { dir });
  const port = await d.port();
  await d.ready({ web: 1, worker: 1 });
  const all = await d.ctl('upgrade');
  assert.equal(all.at(-1)!.message, 'Upgrade done', JSON.stringify(all));
  assert.ok(all.some((r) => r.message.startsWith('[web] ')) && all.some((r) => r.message.startsWith('[worker] ')));
  let st = await d.ready({ web: 1, worker: 1 });
  assert.deepEqual([type(st, 'web').generation, type(st, 'worker').generation], [1, 1]);
  const one = await d.ctl('upgrade', ['web']);
  assert.equal(one.at(-1)!.message, 'Upgrade done');
  st = await d.ready({ web: 1, worker: 1 });
  assert.deepEqual([type(st, 'web').generation, type(st, 'worker').generation], [2, 1]);
  const nope = await d.ctl('upgrade', ['nope']);
  assert.equal(nope[0]!.error, true);
  assert.match(nope[0]!.message, /unknown process type 'nope' \(the app has: web, worker\)/);
  assert.match((await d.ctl('help'))[0]!.message, /scale: Set the number of processes/);
  assert.equal((await d.ctl('version'))[0]!.message, 'einhyrningsins-dyno 0.1.0');
  assert.match((await d.ctl('status'))[0]!.message, /^web\s+1\s+1\s+2\s+3/m);
  assert.equal((await d.ctl('bogus'))[0]!.error, true);

  writeFileSync(join(dir, '.env'), 'RELEASE_MARKER=b\n');
  process.kill(d.pid, 'SIGHUP');
  await until('the new .env is served', async () => /^web\.\d b -$/.test(await get(port)), 20_000);
  st = await d.ready({ web: 1, worker: 1 });
  assert.equal(type(st, 'worker').generation, 2, 'SIGHUP rolls every type');
  assert.equal(st.release?.version, 4, 'each upgrade read the app again');
  // A Procfile whose every line is skipped, on SIGHUP: logged, nothing changes.
  writeFileSync(join(dir, 'Procfile'), 'web node\n');
  process.kill(d.pid, 'SIGHUP');
  await d.waitLog(/WARN: .*Procfile:1: skipped: expected 'type: command'/);
  await d.waitLog(/Upgrade failed: the app could not be read again: .*Procfile: no process types defined; still running release 4/);
  d.snapshotChildren();
  const bye = await d.ctl('die');
  assert.match(bye[0]!.message, /\[web\] Einhorn is going down! Sent SIGTERM to 1 worker/);
  assert.deepEqual(await d.exit, { code: 0, signal: null });
  assert.ok(!existsSync(d.sockPath));
});

test('start TYPE runs only that type; web without a socket gets a warning', async () => {
  const dir = newDir();
  procfileApp(dir, 'x');
  const d = startDriver(['start', 'worker'], { dir });
  await d.ready({ worker: 1 });
  assert.doesNotMatch(d.stderr, /listening on/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  const dir2 = newDir();
  writeFileSync(join(dir2, 'Procfile'), 'web: sleep 30\n');
  const w = startDriver(['start'], { dir: dir2 });
  await w.ready({ web: 1 });
  assert.match(w.stderr, /No -b and no PORT: the web processes get no listening socket/);
  assert.deepEqual(await w.stop(), { code: 0, signal: null });
});

interface BadCase {
  name: string;
  args: (dir: string) => string[];
  error: RegExp;
  code: number;
  setup?: (dir: string) => Promise<() => void> | (() => void);
  procfile?: string | null;
}

test('bad input: one line on stderr, exit 2 or 1, nothing left behind', async () => {
  const port = { n: 0 };
  const cases: BadCase[] = [
    { name: 'unknown option', args: () => ['start', '--frobnicate'], error: /unknown option '--frobnicate'/, code: 2 },
    { name: 'no command', args: () => [], error: /missing command/, code: 2 },
    { name: 'missing Procfile', args: () => ['start'], error: /Procfile .*Procfile does not exist/, code: 1, procfile: null },
    {
      name: 'a TYPE whose Procfile line is skipped',
      args: () => ['start', 'web'],
      error: /unknown process type 'web' \(.*Procfile has: none\)/,
      code: 2,
      procfile: 'web sleep 1\n',
    },
    { name: 'bad formation', args: () => ['start', '--formation', 'web=lots'], error: /--formation: web: quantity must be an integer/, code: 2 },
    { name: 'formation of an unknown type', args: () => ['start', '--formation', 'clock=1'], error: /--formation: unknown process type 'clock'/, code: 2 },
    { name: 'unknown TYPE', args: () => ['start', 'web', 'nope'], error: /unknown process type 'nope' \(.*Procfile has: web, worker\)/, code: 2 },
    { name: 'malformed -b', args: () => ['start', '-b', 'nowhere'], error: /-b nowhere: expected ADDR:PORT/, code: 2 },
    { name: 'bad PORT', args: () => ['start'], error: /PORT=eighty: -b 0\.0\.0\.0:eighty,r: expected ADDR:PORT/, code: 1 },
    {
      name: 'port in use',
      setup: async () => {
        const srv = createServer();
        await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
        port.n = (srv.address() as { port: number }).port;
        return () => srv.close();
      },
      args: () => ['start', '-b', `127.0.0.1:${port.n}`],
      error: /cannot bind -b 127\.0\.0\.1:\d+: address already in use/,
      code: 1,
    },
    { name: 'missing control dir', args: (d) => ['start', '-c', join(d, 'nope')], error: /control directory .*nope does not exist/, code: 1 },
    { name: 'bad .env', args: () => ['start', '--env', 'missing.env'], error: /\.env file .*missing\.env does not exist/, code: 1 },
  ];
  for (const c of cases) {
    const dir = newDir();
    if (c.procfile !== null) writeFileSync(join(dir, 'Procfile'), c.procfile ?? `web: touch started; exec sleep 30\nworker: touch started; exec sleep 30\n`);
    const undo = c.setup ? await c.setup(dir) : () => undefined;
    const before = readdirSync(dir).sort();
    const extra = c.name === 'bad PORT' ? { PORT: 'eighty' } : {};
    const sock = join(dir, 'ctl.sock');
    const args = c.args(dir);
    const r = await runDyno(args.length ? [args[0] as string, '-d', sock, ...args.slice(1)] : args, { cwd: dir, env: { TMPDIR: dir, ...extra } });
    undo();
    assert.equal(r.code, c.code, `${c.name}: exit status (stderr: ${r.stderr})`);
    assert.match(r.stderr, /^einhyrningsins-dyno: [^\n]+\n$/, `${c.name}: one line`);
    assert.match(r.stderr, c.error, c.name);
    assert.deepEqual(readdirSync(dir).sort(), before, `${c.name}: nothing left behind`);
  }
  // Control socket directory missing; a live driver on the socket.
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), 'worker: sleep 30\n');
  const gone = await runDyno(['start', '-d', join(dir, 'no', 'ctl.sock')], { cwd: dir, env: { TMPDIR: dir } });
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^einhyrningsins-dyno: control socket directory does not exist: .*\n$/);
  const live = startDriver(['start'], { dir });
  await live.ready({ worker: 1 });
  const second = await runDyno(['start', '-d', live.sockPath], { cwd: dir, env: { TMPDIR: dir } });
  assert.equal(second.code, 1);
  assert.match(second.stderr, /^einhyrningsins-dyno: another master is listening on the control socket .*\n$/);
  await live.ready({ worker: 1 });
  assert.deepEqual(await live.stop(), { code: 0, signal: null });
});

test('a stop signal at any moment of start-up stops the driver: no default-action death, no lost signal, nothing left', async () => {
  // Regression: the start-up handlers were removed before the final ones were added, so
  // libuv briefly reset SIGTERM to its default action (the driver died, leaving its
  // control socket) or dropped a TERM whose listener had gone (the driver ran on).
  for (let i = 0; i < 8; i++) {
    const dir = newDir();
    writeFileSync(join(dir, 'Procfile'), 'worker: sleep 100\n');
    const watcher = watch(dir);
    const d = startDriver(['start'], { dir });
    watcher.once('change', () => {
      watcher.close();
      d.proc.kill('SIGTERM');
    });
    const r = await Promise.race([d.exit, new Promise<null>((res) => setTimeout(() => res(null), 20_000))]);
    watcher.close();
    assert.ok(r !== null, `try ${i}: the driver ignored the TERM:\n${d.stderr}`);
    assert.equal(r.signal, null, `try ${i}: killed by the signal's default action`);
    assert.ok(r.code === 0 || (r.code === 1 && /stopped by SIGTERM during start-up; nothing was started/.test(d.stderr)), `try ${i}: ${r.code} ${d.stderr}`);
    assert.deepEqual(readdirSync(dir), ['Procfile'], `try ${i}: nothing left`);
  }
});
