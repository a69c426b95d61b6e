/**
 * --handoff: the sockets handed over in the protocol a server already speaks
 * (systemd's LISTEN_FDS with LISTEN_PID = the child's own pid, Server::Starter's
 * SERVER_STARTER_PORT, $PORT with the bind shim), EINHORN_* kept; its bad input;
 * the stop-signal warning for known servers. Real master, real children, real
 * sockets.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, fixture, httpGet, load, runCli, startMaster, tempDir, until } from './harness.js';
import { freePort } from './servers.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

const SERVER = fixture('servers/handoff_server.py');

interface Facts {
  pid: number;
  LISTEN_PID: string | null;
  LISTEN_FDS: string | null;
  LISTEN_FDNAMES: string | null;
  SERVER_STARTER_PORT: string | null;
  EINHORN_FD_0: string | null;
  EINHYRNINGSINS_LISTEN_PID: string | null;
}

async function factsOf(port: number, pids: number): Promise<Map<number, Facts>> {
  const seen = new Map<number, Facts>();
  await until(`answers from ${pids} workers`, async () => {
    const f = JSON.parse(await httpGet(port)) as Facts;
    seen.set(f.pid, f);
    return seen.size >= pids;
  });
  return seen;
}

test('--handoff systemd: LISTEN_PID is each worker\'s own pid, LISTEN_FDS and LISTEN_FDNAMES name every socket, EINHORN_* stay; an upgrade under load fails nothing', async () => {
  const dir = tempDir();
  const sock = join(dir, 'app.sock');
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-b', `unix:${sock}`, '--handoff', 'systemd', '--stop-signal', 'TERM', '--', 'python3', SERVER, 'systemd'], { dir });
  const port = await m.port();
  const workers = await m.ready(2);
  const facts = await factsOf(port, 2);
  for (const w of workers) {
    const f = facts.get(w.pid);
    assert.ok(f, `worker ${w.pid} answered`);
    assert.equal(f.LISTEN_PID, String(w.pid), 'the worker the master started is the pid in LISTEN_PID (the launcher execs in place)');
    assert.equal(f.LISTEN_FDS, '2');
    assert.equal(f.LISTEN_FDNAMES, `127.0.0.1_${port}:unix_${sock}`);
    assert.equal(f.EINHORN_FD_0, '3', 'EINHORN_* are set in every mode');
    assert.equal(f.EINHYRNINGSINS_LISTEN_PID, null, "the launcher's own variable does not reach the program");
  }
  const l = load(port, 4, { fresh: true, maxMs: 30_000 });
  await until('load running', () => l.result.ok > 20);
  const replies = await m.ctl('upgrade');
  assert.match(replies.at(-1)?.message ?? '', /upgrade.*(done|complete)|Upgraded/i);
  const after = await m.ready(2);
  const r = await l.stop();
  assert.equal(r.failed, 0, `failed requests: ${r.errors.join('; ')}`);
  for (const w of after) assert.equal((await factsOf(port, 2)).has(w.pid), true);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
  assert.equal(existsSync(sock), false);
});

test('--handoff server-starter: SERVER_STARTER_PORT in its format, read by a server that knows nothing else', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0', '--handoff', 'server-starter', '--stop-signal', 'TERM', '--', 'python3', SERVER, 'server-starter']);
  const port = await m.port();
  await m.ready(2);
  const facts = await factsOf(port, 2);
  for (const f of facts.values()) {
    assert.equal(f.SERVER_STARTER_PORT, `127.0.0.1:${port}=3`);
    assert.equal(f.LISTEN_FDS, null, 'only the protocols asked for');
    assert.equal(f.EINHORN_FD_0, '3');
  }
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--handoff port: a stock app that binds $PORT itself shares the socket (the bind shim), upgrades under load fail nothing', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '--handoff', 'port', '--stop-signal', 'TERM', '--', process.execPath, fixture('dyno/stock-web.mjs')]);
  const port = await m.port();
  await m.ready(2);
  await m.waitOut(new RegExp(`stock web listening on ${port}[\\s\\S]*stock web listening on ${port}`));
  const l = load(port, 4, { fresh: true, maxMs: 40_000 });
  await until('load running', () => l.result.ok > 20);
  for (let i = 0; i < 2; i++) {
    await m.ctl('upgrade');
    await m.ready(2);
  }
  const r = await l.stop();
  assert.ok(r.ok > 0);
  assert.equal(r.failed, 0, `failed requests: ${r.errors.join('; ')}`);
  assert.doesNotMatch(m.stderr, /EADDRINUSE/);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--handoff bad input: one line, exit 2, no socket file, no child', async () => {
  const dir = tempDir();
  const cases: Array<[string[], RegExp]> = [
    [['--handoff', 'systemd,inetd'], /^einhyrningsins: --handoff: unknown hand-off 'inetd' \(known: einhorn, systemd, server-starter, port\)\n$/],
    [['-b', `unix:${join(dir, 'a.sock')}`, '--handoff', 'port'], /^einhyrningsins: --handoff port needs a TCP socket \(-b ADDR:PORT\): \$PORT names a TCP port\n$/],
    [['--handoff', 'port'], /^einhyrningsins: --handoff port needs a TCP socket/],
    [['-b', `unix:${join(dir, 'a=b.sock')}`, '--handoff', 'server-starter'], /^einhyrningsins: --handoff server-starter: the unix socket path .*a=b\.sock cannot be written in SERVER_STARTER_PORT.*\n$/],
  ];
  const marker = join(dir, 'started');
  for (const [args, re] of cases) {
    const r = await runCli(['-d', join(dir, 'ctl.sock'), ...args, '--', 'sh', '-c', `touch ${marker}`]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.split('\n').length, 2, 'one line');
    assert.deepEqual(readdirSync(dir), [], 'no control socket, no unix socket, no child ran');
  }
});

test('a known server started with the wrong stop signal gets one warning naming the one it needs', async () => {
  const dir = tempDir();
  // A stand-in called unicorn: the warning goes by the program's name.
  const fake = join(dir, 'unicorn');
  writeFileSync(fake, "#!/bin/sh\ntrap 'exit 0' USR2 QUIT TERM\nwhile :; do sleep 0.2; done\n");
  chmodSync(fake, 0o755);
  const m = startMaster(['-n', '1', '--', fake], { dir });
  await m.ready(1);
  const warnings = m.stderr.match(/WARN: unicorn: .*/g) ?? [];
  assert.equal(warnings.length, 1, m.stderr);
  assert.match(warnings[0] as string, /the stop signal SIGUSR2 re-executes its master.*start it with --stop-signal QUIT \(its graceful stop\)/);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });

  const ok = startMaster(['-n', '1', '--stop-signal', 'QUIT', '--', fake], { dir: tempDir() });
  await ok.ready(1);
  assert.doesNotMatch(ok.stderr, /WARN: unicorn/);
  assert.deepEqual(await ok.stop(), { code: 0, signal: null });
});

/** GETs on fresh connections for `ms`, each failing after 1 s: [failed, total]. */
async function briefLoad(port: number, ms: number): Promise<[number, number]> {
  const l = load(port, 4, { fresh: true, maxMs: ms, timeoutMs: 1000 });
  await new Promise((r) => setTimeout(r, ms));
  const r = await l.stop();
  return [r.failed, r.ok + r.failed];
}

test('-b ...,p with a server that opens its own reuse-port socket: connections time out in the master\'s queue and one warning says so; --handoff port prevents it', async (t) => {
  const port = await freePort();
  const args = ['-n', '1', '-b', `127.0.0.1:${port},p`, '--stop-signal', 'TERM'];
  const cmd = ['--', 'python3', fixture('servers/reuseport_server.py')];
  // PORT set by hand, no hand-off: the pitfall as users hit it.
  const m = startMaster([...args, ...cmd], { env: { PORT: String(port) } });
  await m.ready(1);
  await until('the server answers', async () => /reuseport/.test(await httpGet(port, '/', 1000)));
  const [failed, total] = await briefLoad(port, 3000);
  t.diagnostic(`own reuse-port socket beside the master's: ${failed} of ${total} requests timed out`);
  assert.ok(failed > 0, 'the kernel hands some connections to the socket nobody accepts from');
  await m.waitLog(/WARN: -b 127\.0\.0\.1:\d+,p: 1 other socket listens on port \d+ beside the master's \(SO_REUSEPORT\).*--handoff port/, 15_000);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });

  const fixed = startMaster([...args, '--handoff', 'port', ...cmd]);
  await fixed.ready(1);
  await until('the server answers', async () => /reuseport/.test(await httpGet(port, '/', 1000)));
  const [failed2, total2] = await briefLoad(port, 3000);
  t.diagnostic(`with --handoff port (the bind shim gives it the master's socket): ${failed2} of ${total2} failed`);
  assert.equal(failed2, 0);
  await new Promise((r) => setTimeout(r, 5500));
  assert.doesNotMatch(fixed.stderr, /other socket/);
  assert.deepEqual(await fixed.stop(), { code: 0, signal: null });
});

test('--handoff port with a static executable (Go, CGO_ENABLED=0): one warning that the bind shim cannot reach it, naming the inherited socket', async (t) => {
  const go = spawnSync('go', ['version'], { stdio: 'ignore' });
  if (go.status !== 0) {
    t.skip('go is not installed (apt-get install golang-go)');
    return;
  }
  const dir = tempDir();
  const exe = join(dir, 'goserver');
  const built = spawnSync('go', ['build', '-o', exe, fixture('servers/fileserver.go')], {
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, CGO_ENABLED: '0', GO111MODULE: 'off' },
  });
  assert.equal(built.status, 0, built.stderr);
  const m = startMaster(['-n', '1', '-b', '127.0.0.1:0', '--handoff', 'port', '--stop-signal', 'TERM', '--', exe], { dir });
  const port = await m.port();
  await m.ready(1);
  const warnings = m.stderr.match(/WARN: --handoff port: the program runs .*goserver, a static executable: LD_PRELOAD cannot reach it.*EINHORN_FD_0 \(fd 3\) or LISTEN_FDS instead/g) ?? [];
  assert.equal(warnings.length, 1, m.stderr);
  // It reads EINHORN_FD_0 itself, so it serves all the same.
  assert.match(await httpGet(port), /^go \d+/);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});
