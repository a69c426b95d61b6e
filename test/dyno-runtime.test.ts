/**
 * einhyrningsins-dyno as the master's runtime, black-box: what the driver gained by
 * running on the same host as einhyrningsins (PID 1 reaping, sd_notify, reload).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, sleep, until } from './harness.js';
import { notifyReceiver, stopNotifyReceivers } from './notify.js';
import { childrenOf, zombiesOf } from './proc.js';
import { DYNO_BIN, WEB, WORKER, cleanupDrivers, get, newDir, q, startDriver, type DynoState } from './dyno-harness.js';

afterEach(async () => {
  stopNotifyReceivers();
  assert.deepEqual(await cleanupDrivers(), []);
});

function canUnsharePid(): boolean {
  return spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;
}

test('as PID 1 (unshare --pid) the driver reaps every orphan its dynos leave: no zombies pile up', { skip: !canUnsharePid() && 'needs unshare --pid (root)' }, async () => {
  const dir = newDir();
  const sock = join(dir, 'ctl.sock');
  // A type whose process leaves a short-lived orphan every 50 ms (a double fork) and counts them.
  const script = 'i=0; trap "exit 0" TERM; while :; do (sleep 0.01 &); i=$((i+1)); echo $i > n; sleep 0.05; done';
  writeFileSync(join(dir, 'Procfile'), `orphans: sh -c ${q(script)}\n`);
  const u = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, DYNO_BIN, 'start', '-d', sock, '-f', join(dir, 'Procfile')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  u.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => u.once('exit', r));
  let driver = 0;
  try {
    driver = await until('the driver in its namespace', () => childrenOf(u.pid as number)[0]);
    await until('60 orphans made', () => existsSync(join(dir, 'n')) && Number(readFileSync(join(dir, 'n'), 'utf8')) >= 60, 30_000);
    assert.match(stderr, /Driver 1 up/);
    const z = zombiesOf(driver);
    assert.ok(z.length <= 2, `${z.length} zombies under the PID 1 driver`);
  } finally {
    if (driver) process.kill(driver, 'SIGTERM');
    else u.kill('SIGKILL');
    await Promise.race([exited, sleep(15_000).then(() => u.kill('SIGKILL'))]);
  }
  assert.equal(existsSync(sock), false);
  assert.match(stderr, /Every process has exited; bye/);
});

test('sd_notify: READY=1 once every process type is up, RELOADING=1/READY=1 around an upgrade, STOPPING=1; dynos do not get NOTIFY_SOCKET', async () => {
  const dir = newDir();
  const rx = await notifyReceiver(dir);
  writeFileSync(join(dir, 'Procfile'), `web: ${q(process.execPath)} ${q(WEB)}\nworker: sh ${q(WORKER)}\n`);
  writeFileSync(join(dir, '.env'), 'PORT=0\n');
  const d = startDriver(['start', '-f', join(dir, 'Procfile'), '-m', '1', '--formation', 'web=2,worker=1'], { dir, env: { NOTIFY_SOCKET: rx.path } });
  const ready = await until('READY=1', () => rx.got.find((x) => x.includes('READY=1')), 20_000);
  const status = ready.find((l) => l.startsWith('STATUS=')) ?? '';
  assert.equal(status, 'STATUS=web: 2/2 workers up, generation 0; worker: 1/1 workers up, generation 0');
  assert.ok(ready.includes(`MAINPID=${d.pid}`));
  const first = rx.got.findIndex((x) => x.includes('READY=1'));
  assert.ok(rx.got.slice(0, first).every((x) => !x.some((l) => l === status)), 'nothing said everything was up before it was');
  const st = (await d.state()) as DynoState;
  for (const w of Object.values(st.types).flatMap((t) => t.workers)) {
    assert.doesNotMatch(readFileSync(`/proc/${w.pid}/environ`, 'utf8'), /(^|\0)NOTIFY_SOCKET=/);
  }

  const mark = rx.got.length;
  assert.equal((await d.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  await until('READY=1 after the upgrade', () => rx.got.slice(mark).some((x) => x.includes('READY=1')));
  const around = rx.got.slice(mark);
  const reloading = around.findIndex((x) => x.includes('RELOADING=1'));
  const readyAgain = around.findIndex((x) => x.includes('READY=1'));
  assert.ok(reloading >= 0 && reloading < readyAgain, JSON.stringify(around));
  assert.ok(around[readyAgain]!.includes('STATUS=web: 2/2 workers up, generation 1; worker: 1/1 workers up, generation 1'), JSON.stringify(around[readyAgain]));

  const r = await d.stop();
  assert.equal(r.code, 0);
  assert.ok(rx.got.some((x) => x.includes('STOPPING=1')));
});

test('reload under load: the driver re-executes in place keeping every process of every type, their output, and every request', async (t) => {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), `web: ${q(process.execPath)} ${q(WEB)}\nworker: sh ${q(WORKER)}\n`);
  writeFileSync(join(dir, '.env'), 'RELEASE_MARKER=one\n');
  const d = startDriver(['start', '-f', join(dir, 'Procfile'), '-b', '127.0.0.1:0,r', '--formation', 'web=2,worker=1'], { dir });
  const port = await d.port();
  const ready = async () => {
    const st = await d.state();
    return Object.values(st.types).every((t) => t.workers.length === t.quantity && t.workers.every((w) => w.state === 'up')) ? st : null;
  };
  const before = await until('every dyno up', ready, 20_000);
  const pidsOf = (st: DynoState) => Object.values(st.types).flatMap((t) => t.workers.map((w) => `${t.type}.${w.pid}`)).sort();

  // Bounded in time, and stopped whatever happens.
  const traffic = load(port, 6, { fresh: true, maxMs: 60_000 });
  try {
    await until('some traffic', () => traffic.result.ok > 50, 10_000);
    // Three reloads back to back under load.
    for (let n = 1; n <= 3; n++) {
      const replies = await d.ctl('reload');
      const final = replies.at(-1)!;
      assert.match(final.message, new RegExp(`^Reload done: driver ${d.pid} is now einhyrningsins-dyno \\S+ \\(reload ${n}\\), 3 processes adopted$`));
      assert.ok(replies.some((r) => r.wait && /^Upgrade check passed; re-executing the driver$/.test(r.message)), JSON.stringify(replies));
      const seen = traffic.result.ok;
      await until('traffic after the reload', () => traffic.result.ok > seen + 100, 10_000);
    }
  } finally {
    await traffic.stop();
  }
  const r = traffic.result;
  assert.equal(r.failed, 0, `failed requests: ${r.errors.join(', ')}`);
  t.diagnostic(`3 reloads under load: ${r.ok} requests on fresh connections, ${r.failed} failed`);

  const after = await d.state();
  assert.deepEqual(pidsOf(after), pidsOf(before), 'every process of every type kept');
  // Their output still reaches the driver's, labelled.
  const mark = d.stdout.length;
  await until('a worker line after the reload', () => /worker\.1 \| tick worker\.1 marker=one/.test(d.stdout.slice(mark)));
  // And the runtime goes on: an upgrade after the reload rolls them.
  writeFileSync(join(dir, '.env'), 'RELEASE_MARKER=two\n');
  assert.equal((await d.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  assert.match(await get(port), /^web\.\d two -$/);
  // A second reload finds the first one's state.
  assert.match((await d.ctl('reload')).at(-1)!.message, /\(reload 4\), 3 processes adopted$/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('reload is refused during an upgrade and while stopping, with the reason; the driver keeps running', async () => {
  const dir = newDir();
  // Up 2 s after it starts; ignores the stop signal (so stopping lasts until SIGKILL).
  writeFileSync(join(dir, 'Procfile'), `slow: sh -c 'trap "" TERM; while :; do sleep 0.1; done'\n`);
  const d = startDriver(['start', '-f', join(dir, 'Procfile'), '-m', '2', '-t', '60'], { dir });
  await until('up', async () => (await d.state()).types.slow?.workers.every((w) => w.state === 'up') === true, 20_000);
  const upgrading = d.ctl('upgrade', [], { id: 7 });
  await until('upgrading', async () => (await d.state()).types.slow?.upgrading === true);
  const during = (await d.ctl('reload')).at(-1)!;
  assert.equal(during.message, 'Not reloading: an upgrade is in progress (slow); reload when it is done');
  assert.equal(during.error, true);
  assert.equal((await upgrading).at(-1)!.message, 'Upgrade done');
  await d.ctl('die');
  const stopping = (await d.ctl('reload')).at(-1)!;
  assert.equal(stopping.message, 'Not reloading: the driver is stopping');
  await d.ctl('die');
  assert.deepEqual(await d.exit, { code: 0, signal: null });
});

test('commands take process types: signal SIG TYPE, inc TYPE, upgrade TYPE; extra words are refused with the usage', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), `web: ${q(process.execPath)} ${q(WEB)}\nworker: sh -c 'trap "echo got-usr1 \\$DYNO" USR1; trap "exit 0" TERM; while :; do sleep 0.1; done'\n`);
  const d = startDriver(['start', '-f', join(dir, 'Procfile'), '-b', '127.0.0.1:0,r', '-m', '1'], { dir });
  await until('both up', async () => Object.values((await d.state()).types).every((t) => t.workers.length === 1 && t.workers[0]!.state === 'up'), 20_000);
  const st = await d.state();
  const web = st.types.web!.workers[0]!.pid;
  const sig = (await d.ctl('signal', ['USR1', 'worker'])).at(-1)!;
  assert.match(sig.message, /^\[worker\] Sent SIGUSR1 to 1 worker: \[\d+\]$|^\[worker\] Sent SIGUSR1 to 1 worker$/);
  await d.waitOut(/got-usr1 worker\.1/);
  assert.deepEqual((await d.state()).types.web!.workers.map((w) => w.pid), [web], 'the web process was not signalled (USR1 would have killed it)');
  assert.equal((await d.ctl('signal', ['USR1', 'nope'])).at(-1)!.message, "Unknown process type 'nope' (running: web, worker)");
  assert.equal((await d.ctl('inc', ['worker'])).at(-1)!.message, '[worker] Incrementing number of workers from 1 -> 2');
  assert.equal((await d.ctl('inc')).at(-1)!.message, 'inc expects one process type (running: web, worker)');
  assert.equal((await d.ctl('state', ['x'])).at(-1)!.message, "state takes no arguments (got 'x'); usage: state");
  assert.equal((await d.ctl('upgrade', ['worker'])).at(-1)!.message, 'Upgrade done');
  assert.deepEqual((await d.state()).types.web!.workers.map((w) => w.pid), [web], 'upgrade worker left web alone');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});
