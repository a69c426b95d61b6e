/**
 * systemd and unix sockets, black-box: sd_notify to a real datagram NOTIFY_SOCKET
 * receiver, socket activation through the real systemd-socket-activate, and
 * `-b unix:PATH` listening sockets.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { BIN, SupervisorProc, cleanupAll, fixture, freePort, startMaster, tempDir, track, until } from './harness.js';
import { notifyReceiver, stopNotifyReceivers } from './notify.js';

afterEach(async () => {
  stopNotifyReceivers();
  assert.deepEqual(await cleanupAll(), []);
});

const HTTP_CHILD = ['--', process.execPath, fixture('node-http-child.mjs')];

function unixGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: path, path: '/', headers: { connection: 'close' }, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

test('sd_notify: READY=1 once every worker is up, RELOADING=1/READY=1 around upgrades and reloads, STOPPING=1, WATCHDOG=1', async () => {
  const dir = tempDir();
  const rx = await notifyReceiver(dir);
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', ...HTTP_CHILD], {
    env: { FIXTURE_ACK: '1', NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '200000' },
    dir,
  });
  await m.ready(2);
  const ready = await until('READY=1', () => rx.got.find((d) => d.includes('READY=1')));
  assert.ok(ready.includes('STATUS=2/2 workers up, generation 0'), JSON.stringify(ready));
  assert.ok(ready.includes(`MAINPID=${m.pid}`));
  // Nothing said READY before both workers were up.
  const first = rx.got.findIndex((d) => d.includes('READY=1'));
  assert.ok(rx.got.slice(0, first).every((d) => !d.some((l) => l.startsWith('STATUS=2/2'))));
  await until('WATCHDOG=1 every 100 ms', () => rx.got.filter((d) => d.includes('WATCHDOG=1')).length >= 2);

  const mark = rx.got.length;
  assert.equal((await m.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  await until('READY=1 after the upgrade', () => rx.got.slice(mark).some((d) => d.includes('READY=1')));
  const around = rx.got.slice(mark).filter((d) => !d.includes('WATCHDOG=1'));
  const reloading = around.findIndex((d) => d.includes('RELOADING=1'));
  const readyAgain = around.findIndex((d) => d.includes('READY=1'));
  assert.ok(reloading >= 0 && reloading < readyAgain, JSON.stringify(around));
  assert.ok(around[reloading]!.some((l) => /^MONOTONIC_USEC=\d+$/.test(l)));
  assert.ok(around[readyAgain]!.includes('STATUS=2/2 workers up, generation 1'), JSON.stringify(around[readyAgain]));

  const mark2 = rx.got.length;
  assert.match((await m.ctl('reload')).at(-1)!.message, /Reload done/);
  await until('RELOADING=1 then READY=1 around the reload', () => {
    const d = rx.got.slice(mark2).filter((x) => !x.includes('WATCHDOG=1'));
    const a = d.findIndex((x) => x.includes('RELOADING=1'));
    return a >= 0 && d.slice(a).some((x) => x.includes('READY=1'));
  });
  const mark3 = rx.got.length;
  await until('the new image keeps the watchdog', () => rx.got.slice(mark3).some((d) => d.includes('WATCHDOG=1')));

  await m.stop();
  assert.ok(rx.got.some((d) => d.includes('STOPPING=1')));
});

test('the children see neither NOTIFY_SOCKET, WATCHDOG_* nor LISTEN_*', async () => {
  const dir = tempDir();
  const rx = await notifyReceiver(dir);
  const m = startMaster(['-n', '1', '-m', '0', '--', fixture('env-child.sh')], {
    env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '5000000', LISTEN_PID: '1', LISTEN_FDS: '1', FIXTURE_OUT: dir },
    dir,
  });
  await m.ready(1);
  const file = await until('the child env file', () => readdirSync(dir).find((f) => f.endsWith('.env')));
  const env = readFileSync(join(dir, file), 'utf8');
  assert.doesNotMatch(env, /^(NOTIFY_SOCKET|WATCHDOG_|LISTEN_)/m, env);
  assert.match(env, /^EINHORN_FD_COUNT=0$/m, 'LISTEN_PID of another process: nothing taken');
  await m.stop();
});


const haveActivate = spawnSync('systemd-socket-activate', ['--help'], { stdio: 'ignore' }).status === 0;

test('socket activation: systemd-socket-activate hands the master its sockets; children get them as EINHORN_FD_0, before -b ones', { skip: haveActivate ? false : 'systemd-socket-activate is not installed (apt-get install systemd)' }, async () => {
  const dir = tempDir();
  const port = await freePort();
  const sockPath = join(dir, 'ctl.sock');
  const m = new SupervisorProc(
    'systemd-socket-activate',
    ['-l', `127.0.0.1:${port}`, '--fdname=web', '-E', 'FIXTURE_OUT', '-E', 'PATH', process.execPath, BIN],
    ['-d', sockPath, '-n', '2', '-m', '0', '-b', '127.0.0.1:0', '--', fixture('env-child.sh')],
    dir,
    sockPath,
    { ...process.env, FIXTURE_OUT: dir },
  );
  track(m, dir);
  // systemd-socket-activate execs the master only at the first connection (unless --accept); nudge it.
  await until('the listening socket', async () => {
    const c = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(300) }).catch(() => null);
    void c;
    return readdirSync(dir).filter((f) => f.endsWith('.env')).length === 2;
  }, 15_000, 100);
  const envs = readdirSync(dir)
    .filter((f) => f.endsWith('.env'))
    .map((f) => readFileSync(join(dir, f), 'utf8'));
  for (const env of envs) {
    assert.match(env, /^EINHORN_FD_COUNT=2$/m, env);
    assert.match(env, /^EINHORN_FD_0=3$/m);
    assert.match(env, /^EINHORN_FD_FAMILY_0=AF_INET$/m);
    assert.doesNotMatch(env, /^LISTEN_/m);
  }
  assert.match(m.stderr, new RegExp(`listening on 127\\.0\\.0\\.1:${port}, 127\\.0\\.0\\.1:\\d+`));
  await m.stop();
});

test('-b unix:PATH,mode=0660: bound by the master, passed as AF_UNIX, kept across a reload, removed at exit; a stale file is replaced', async () => {
  const dir = tempDir();
  const path = join(dir, 'app.sock');
  // A stale socket file: bound, then its owner went away without removing it.
  const py = spawnSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', path]);
  assert.equal(py.status, 0, String(py.stderr));
  assert.ok(existsSync(path));
  const m = startMaster(['-n', '2', '-b', `unix:${path},mode=0660`, '-m', 'manual', ...HTTP_CHILD], { env: { FIXTURE_ACK: '1' }, dir });
  await m.ready(2);
  assert.match(m.stderr, new RegExp(`listening on unix:${path}`));
  assert.equal(statSync(path).mode & 0o777, 0o660);
  const body = JSON.parse(await unixGet(path)) as { masterPid: string };
  assert.equal(body.masterPid, String(m.pid));
  assert.match((await m.ctl('reload')).at(-1)!.message, /Reload done/);
  assert.equal(JSON.parse(await unixGet(path)).masterPid, String(m.pid));
  // A second master on the same live path is refused in one line and leaves it alone.
  const other = startMaster(['-n', '1', '-b', `unix:${path}`, '--', 'sleep', '1'], { dir: tempDir() });
  assert.equal((await other.exit).code, 1);
  assert.match(other.stderr.trim(), new RegExp(`^einhyrningsins: cannot bind -b unix:${path}: another process is listening on ${path}$`));
  assert.ok(existsSync(path));
  await m.stop();
  assert.equal(existsSync(path), false, 'removed at exit');
});

test('-b unix: bad paths get one line each and leave nothing', async () => {
  const dir = tempDir();
  const long = join(dir, 'x'.repeat(120));
  const notSock = join(dir, 'plain-file');
  writeFileSync(notSock, 'x');
  const cases: Array<[string, RegExp]> = [
    [`unix:${long}`, /the socket path is too long \(\d+ bytes, at most 107\)/],
    [`unix:${join(dir, 'missing', 'app.sock')}`, /directory .*missing does not exist/],
    [`unix:${notSock}`, /exists and is not a socket/],
    ['unix:', /expected unix:PATH/],
    [`unix:${join(dir, 'a.sock')},mode=999`, /unknown unix socket option 'mode=999'/],
  ];
  for (const [b, re] of cases) {
    const m = startMaster(['-n', '1', '-b', b, '--', 'sleep', '1'], { dir: tempDir() });
    const r = await m.exit;
    assert.notEqual(r.code, 0, b);
    const lines = m.stderr.trim().split('\n');
    assert.equal(lines.length, 1, m.stderr);
    assert.match(lines[0]!, re);
    assert.equal(existsSync(m.sockPath), false);
  }
  assert.deepEqual(readdirSync(dir).sort(), ['plain-file']);
});
