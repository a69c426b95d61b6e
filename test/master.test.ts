import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, copyFileSync, unlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import {
  alive,
  cleanupAll,
  fixture,
  httpGet,
  readLine,
  sleep,
  startMaster,
  tempDir,
  until,
} from './harness.js';

afterEach(async () => {
  const problems = await cleanupAll();
  assert.deepEqual(problems, [], 'nothing may be left behind');
});

const node = process.execPath;

test('a Node HTTP child serves through the -b socket and acks in manual mode', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', node, fixture('node-http-child.mjs')], {
    env: { FIXTURE_ACK: '1' },
  });
  const port = await m.port();
  const workers = await m.ready(2);
  const pids = new Set(workers.map((w) => w.pid));
  assert.deepEqual(workers.map((w) => w.slot).sort(), [0, 1]);
  for (let i = 0; i < 10; i++) {
    const body = JSON.parse(await httpGet(port));
    assert.ok(pids.has(body.pid), `answered by one of our workers: ${body.pid}`);
    assert.equal(body.ppid, m.pid, 'a direct child of the master');
    assert.equal(body.masterPid, String(m.pid));
  }
  const r = await m.stop();
  assert.equal(r.code, 0);
  assert.ok(!existsSync(m.sockPath));
});

test('a Python child does a blocking accept() on EINHORN_FD_0 and acks with JSON', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0', '-m', 'manual', '--', 'python3', fixture('py-blocking-child.py')], {
    env: { FIXTURE_ACK: '1' },
  });
  const port = await m.port();
  await m.ready(2);
  const line = await readLine(port);
  assert.match(line, /^py pid=\d+ blocking=True index=[01] ppid_ok=True reuseaddr=0\n$/);
  await m.stop();
});

test('-g: a child ACKs over its own connection, EINHORN_SOCK_FD, the fd after its sockets', async () => {
  const ackOverFd =
    'import os, socket, json\n' +
    'fd = int(os.environ["EINHORN_SOCK_FD"])\n' +
    'assert fd == 4, fd\n' +
    's = socket.socket(fileno=fd)\n' +
    's.sendall((json.dumps({"command": "worker:ack", "pid": os.getpid()}) + "\\n").encode())\n' +
    'assert s.recv(10) == b""  # the master closes it after the ACK\n' +
    's.close()\n' +
    'import time\n' +
    'while True: time.sleep(1)\n';
  const m = startMaster(['-g', '-n', '2', '-b', '127.0.0.1:0', '-m', 'manual', '--', 'python3', '-c', ackOverFd]);
  await m.port();
  const ws = await m.ready(2);
  for (const w of ws) {
    const fds = readdirSync(`/proc/${w.pid}/fd`).map(Number).sort((a, b) => a - b);
    assert.deepEqual(fds, [0, 1, 2, 3], 'the master closed the connection after the ACK (else recv would block)');
  }
  await m.stop();
});

test('flags reach the kernel: r sets SO_REUSEADDR, -l sets the listen backlog', async (t) => {
  const m = startMaster(['-l', '7', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', 'python3', fixture('py-blocking-child.py')], {
    env: { FIXTURE_ACK: '1' },
  });
  const port = await m.port();
  await m.ready(1);
  assert.match(await readLine(port), /blocking=True .*reuseaddr=1\n$/);
  // For a listening socket, ss shows the backlog as Send-Q (Python does not listen() again).
  const ss = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  if (ss.error) t.diagnostic('ss (iproute2) is not installed: backlog not checked');
  else assert.match(ss.stdout, /^LISTEN\s+\d+\s+7\s/m, ss.stdout);
  await m.stop();
});

test('with the n flag the inherited socket is non-blocking', async () => {
  const m = startMaster(['-b', '127.0.0.1:0,n', '-m', 'manual', '--', 'python3', fixture('py-blocking-child.py')], {
    env: { FIXTURE_ACK: '1' },
  });
  const port = await m.port();
  await m.ready(1);
  // A non-blocking accept() raises BlockingIOError when nothing is queued,
  // which kills the fixture's loop; so look only at the first answer.
  assert.match(await readLine(port), /blocking=False/);
  await m.stop();
});

const hasSocat = spawnSync('socat', ['-V']).status === 0;

test('a shell child acks with einhorn\'s escaped-YAML framing through socat and serves via socat', { skip: hasSocat ? false : 'socat is not installed (apt-get install socat)' }, async () => {
  const m = startMaster(['-b', '127.0.0.1:0,r', '-m', 'manual', '--', fixture('sh-child.sh')], {
    env: { FIXTURE_ACK: '1' },
  });
  const port = await m.port();
  const [w] = await m.ready(1);
  assert.equal(await readLine(port), `sh pid=${w!.pid} index=0\n`);
  await m.stop();
});

test('children get einhorn\'s environment, fds 0-3 only, their own process group', async () => {
  const out = tempDir();
  const m = startMaster(
    ['-n', '2', '-b', '127.0.0.1:0', '--drop-env-var', 'DROP_ME', '-m', '0.2', '--', fixture('env-child.sh')],
    { env: { FIXTURE_OUT: out, DROP_ME: 'secret', EINHORN_FD_7: 'stale-from-outside' } },
  );
  await m.port();
  const ws = await m.ready(2);
  for (const w of ws) {
    const file = join(out, `${w.pid}.env`);
    await until('env file', () => existsSync(file));
    const env = readFileSync(file, 'utf8');
    assert.match(env, new RegExp(`^EINHORN_MASTER_PID=${m.pid}$`, 'm'));
    assert.match(env, /^EINHORN_FD_COUNT=1$/m);
    assert.match(env, /^EINHORN_FD_0=3$/m);
    assert.match(env, /^EINHORN_FDS=3$/m);
    assert.match(env, /^EINHORN_FD_FAMILY_0=AF_INET$/m);
    assert.match(env, new RegExp(`^EINHORN_CHILD_INDEX=${w.slot}$`, 'm'));
    assert.match(env, new RegExp(`^EINHORN_SOCK_PATH=${m.sockPath}$`, 'm'));
    assert.doesNotMatch(env, /DROP_ME/);
    assert.doesNotMatch(env, /EINHORN_FD_7/);
    assert.match(env, new RegExp(`^ppid=${m.pid}$`, 'm'));
    assert.match(env, new RegExp(`^pgid=${w.pid}$`, 'm'), 'own process group');
  }
  await m.stop();
  rmOut(out);
});

test('children get stdio and their sockets only, even when the master inherited more', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0', '-b', '[::1]:0', '-m', '0', '--', 'sleep', '1000'], { leakFd: 20 });
  await m.port();
  const ws = await m.ready(2);
  assert.ok(readdirSync(`/proc/${m.pid}/fd`).includes('20'), 'the master does hold the leaked fd');
  for (const w of ws) {
    const fds = readdirSync(`/proc/${w.pid}/fd`).map(Number).sort((a, b) => a - b);
    assert.deepEqual(fds, [0, 1, 2, 3, 4], `fds of ${w.pid}`);
  }
  await m.stop();
});

function rmOut(dir: string): void {
  for (const f of readdirSync(dir)) unlinkSync(join(dir, f));
}

test('a crashed child is replaced in the same slot; the socket keeps serving', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', node, fixture('node-http-child.mjs')], {
    env: { FIXTURE_ACK: '1' },
  });
  const port = await m.port();
  const before = await m.ready(2);
  const victim = before.find((w) => w.slot === 1)!;
  process.kill(victim.pid, 'SIGKILL');
  const after = await until('replacement', async () => {
    const ws = await m.workers();
    return ws.length === 2 && ws.every((w) => w.state === 'up') && !ws.some((w) => w.pid === victim.pid) ? ws : null;
  });
  assert.equal(after.find((w) => w.pid !== before.find((b) => b.slot === 0)!.pid)!.slot, 1);
  JSON.parse(await httpGet(port));
  await m.stop();
});

test('a crash loop backs off exponentially instead of fork-storming', async () => {
  const out = tempDir();
  const m = startMaster(['-n', '3', '-s', '0.5', '--', fixture('crash-child.sh')], { env: { FIXTURE_OUT: out } });
  await m.waitLog(/consecutive failed start/);
  await sleep(3000);
  const starts = readFileSync(join(out, 'starts'), 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1]) / 1e6);
  // 3 at once, then one probe after 0.5 s * 2^k: 3 + (0.5?) 1 + 2 ... -> well under 10 in 3 s.
  assert.ok(starts.length >= 4 && starts.length <= 9, `starts in 3 s: ${starts.length}`);
  const probes = starts.slice(3);
  const gaps = probes.slice(1).map((t, i) => t - probes[i]!);
  for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! > gaps[i - 1]! * 1.3, `growing gaps: ${gaps}`);
  const state = await m.ctl('state');
  assert.match(state[0]!.message, /:consecutive_deaths_before_ack: [1-9]/);
  await m.stop();
  rmOut(out);
});

test('SIGTERM stops every child gracefully, removes the socket, pidfile and lockfile, exits 0', async () => {
  const dir = tempDir();
  const pidfile = join(dir, 'm.pid');
  const lockfile = join(dir, 'm.lock');
  const m = startMaster(
    ['-n', '3', '-b', '127.0.0.1:0', '-e', pidfile, '-f', lockfile, '-m', 'manual', '--', node, fixture('node-http-child.mjs')],
    { env: { FIXTURE_ACK: '1' }, dir },
  );
  await m.port();
  const ws = await m.ready(3);
  assert.equal(readFileSync(pidfile, 'utf8').trim(), String(m.pid));
  assert.equal((statSync(m.sockPath).mode & 0o777).toString(8), '600');
  const r = await m.stop();
  assert.deepEqual(r, { code: 0, signal: null });
  for (const w of ws) assert.equal(alive(w.pid), false);
  assert.equal(existsSync(m.sockPath), false);
  assert.equal(existsSync(pidfile), false);
  assert.equal(existsSync(lockfile), false);
});

test('a child that ignores the stop signal is killed after --signal-timeout', async () => {
  const m = startMaster(['-t', '1', '-m', '0', '--', 'sh', '-c', 'trap "" USR2 TERM; while :; do sleep 0.1; done']);
  const [w] = await m.ready(1);
  const r = await m.stop();
  assert.equal(r.code, 0);
  assert.equal(alive(w!.pid), false);
  assert.match(m.stderr, /still active after 1s\. Sending SIGKILL/);
});

test('--stop-signal TERM: upgrades and shutdown ask the children with SIGTERM, not USR2', async () => {
  const child = 'trap "echo got USR2" USR2; trap "echo got TERM; exit 0" TERM; while :; do sleep 0.1; done';
  const m = startMaster(['--stop-signal', 'TERM', '-m', '0', '--', 'sh', '-c', child]);
  const [w] = await m.ready(1);
  assert.equal((await m.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  await until(`old ${w!.pid} gone`, () => !alive(w!.pid));
  await m.ready(1);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
  assert.match(m.stdout, /got TERM/);
  assert.doesNotMatch(m.stdout, /got USR2/);
});

test('SIGHUP upgrades: new children replace the old ones', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', node, fixture('node-http-child.mjs')], {
    env: { FIXTURE_ACK: '1' },
  });
  const port = await m.port();
  const old = await m.ready(2);
  process.kill(m.pid, 'SIGHUP');
  const fresh = await until('new generation', async () => {
    const ws = await m.workers();
    return ws.length === 2 && ws.every((w) => w.generation === 1 && w.state === 'up') ? ws : null;
  });
  for (const w of old) await until(`old ${w.pid} gone`, () => !alive(w.pid));
  assert.ok(fresh.every((w) => !old.some((o) => o.pid === w.pid)));
  JSON.parse(await httpGet(port));
  await m.stop();
});

test('TTIN adds a child and TTOU removes one', async () => {
  const m = startMaster(['-n', '1', '-m', '0', '--', 'sleep', '1000']);
  await m.ready(1);
  process.kill(m.pid, 'SIGTTIN');
  await m.ready(2);
  process.kill(m.pid, 'SIGTTOU');
  await m.ready(1);
  await m.stop();
});

test('control socket: state in einhorn\'s shape, die stops everything', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0', '-m', 'manual', '--', 'python3', fixture('py-blocking-child.py')], {
    env: { FIXTURE_ACK: '1' },
  });
  await m.ready(2);
  const [st] = await m.ctl('state');
  assert.equal((st!.message.match(/:type: :worker/g) ?? []).length, 2);
  assert.equal((st!.message.match(/:acked: true/g) ?? []).length, 2);
  const bye = await m.ctl('die');
  assert.match(bye.at(-1)!.message, /going down/);
  const r = await m.exit;
  assert.equal(r.code, 0);
  assert.equal(existsSync(m.sockPath), false);
});

test('a program that disappears before a respawn: the master keeps running and says so', async () => {
  const dir = tempDir();
  const prog = join(dir, 'app.sh');
  copyFileSync(fixture('env-child.sh'), prog);
  const m = startMaster(['-m', '0', '--', prog], { env: { FIXTURE_OUT: dir }, dir });
  const [w] = await m.ready(1);
  unlinkSync(prog);
  process.kill(w!.pid, 'SIGKILL');
  await m.waitLog(/program not found: .*app\.sh/);
  const [st] = await m.ctl('status');
  assert.match(st!.message, /0 up of 1 wanted/);
  // Put it back: the backoff probe picks it up.
  copyFileSync(fixture('env-child.sh'), prog);
  await m.ready(1, 20_000);
  await m.stop();
});

test('a second master on the same control socket is refused; a stale socket is replaced', async () => {
  const m = startMaster(['-m', '0', '--', 'sleep', '1000']);
  await m.ready(1);
  const second = startMaster(['-m', '0', '--', 'sleep', '1000'], { dir: m.dir });
  const r = await second.exit;
  assert.equal(r.code, 1);
  assert.match(second.stderr, /another master is listening on the control socket/);
  assert.equal(second.stderr.trim().split('\n').length, 1);
  assert.ok(existsSync(m.sockPath), 'the live master keeps its socket');
  // Kill the first one hard: its socket file stays, stale.
  m.kill();
  await m.exit;
  assert.ok(existsSync(m.sockPath));
  const third = startMaster(['-m', '0', '--', 'sleep', '1000'], { dir: m.dir });
  await third.ready(1);
  assert.match(third.stderr, /Removing stale control socket/);
  await third.stop();
});

test('--syslog-socket and --syslog-to: warnings reach a local datagram socket and a remote UDP collector', async () => {
  const dgram = await import('node:dgram');
  const dir = tempDir();
  // A stand-in for /dev/log: a unix datagram receiver (Node has none), printing each datagram as JSON.
  const local = spawn('python3', [fixture('notify-receiver.py'), join(dir, 'log.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const localLines: string[] = [];
  let pending = '';
  local.stdout.on('data', (d: Buffer) => {
    pending += d.toString();
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      localLines.push(...(JSON.parse(pending.slice(0, i)) as string[]));
      pending = pending.slice(i + 1);
    }
  });
  await until('the datagram receiver', () => localLines.includes('LISTENING'));
  const udp = dgram.createSocket('udp4');
  const udpLines: string[] = [];
  udp.on('message', (m) => udpLines.push(m.toString()));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  try {
    const m = startMaster(
      ['--syslog-socket', join(dir, 'log.sock'), '--syslog-to', `udp://127.0.0.1:${udp.address().port}`, '-m', '0', '--', 'sleep', '1000'],
      { dir },
    );
    const [w] = await m.ready(1);
    process.kill(w!.pid, 'SIGKILL'); // a warning: the worker died unexpectedly
    await until('syslog lines', () => localLines.some((l) => l.includes(`${w!.pid}`)) && udpLines.some((l) => l.includes(`${w!.pid}`)));
    const line = localLines.find((l) => l.includes(`${w!.pid}`))!;
    assert.match(line, new RegExp(`^<2[78]>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d einhyrningsins\\[${m.pid}\\]: `));
    assert.ok(!localLines.some((l) => / INFO|Launched/.test(l)), 'info lines stay out of syslog');
    await m.stop();
  } finally {
    local.kill('SIGTERM');
    udp.close();
  }
});

test('--syslog without a syslog socket is a start-up error', async () => {
  const m = startMaster(['--syslog-socket', '/nonexistent/log.sock', '--', 'sleep', '1000']);
  const r = await m.exit;
  assert.equal(r.code, 1);
  assert.match(m.stderr.trim(), /^einhyrningsins: --syslog: no syslog socket at \/nonexistent\/log\.sock/);
});
