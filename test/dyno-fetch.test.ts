/**
 * fetch= and watch= per program of a config file (einhyrningsins-dyno start --config),
 * black-box: the real driver polls a loopback HTTP server or a file:// URL for one
 * program's executable, installs it and restarts that program alone (rolling, for a
 * socket program under load); a failing release is put back and not tried again; a
 * watched path restarts its program; bad keys are one line FILE:LINE.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort, load, until } from './harness.js';
import { WEB, cleanupDrivers, get, newDir, runDyno, startDriver, type DynoState } from './dyno-harness.js';

const servers = new Set<http.Server>();
afterEach(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  servers.clear();
  assert.deepEqual(await cleanupDrivers(), []);
});


/** A release of the web program: the test's web server with RELEASE_MARKER=VERSION; `crash`: exits at once. */
function webRelease(version: string, crash = false): Buffer {
  return Buffer.from(`#!/bin/sh\n${crash ? 'echo crashing >&2; exit 1' : `RELEASE_MARKER=${version} exec ${process.execPath} ${WEB}`}\n`);
}

/** A loopback release server: HEAD and GET serve `body` with an ETag (its hash). */
async function releaseServer(body: Buffer) {
  const st = { body, heads: 0, gets: 0 };
  const server = http.createServer((req, res) => {
    if (req.method === 'HEAD') st.heads += 1;
    else st.gets += 1;
    const etag = `"${createHash('sha256').update(st.body).digest('hex').slice(0, 16)}"`;
    res.writeHead(200, { etag, 'content-length': st.body.length, 'content-type': 'application/octet-stream' });
    res.end(req.method === 'HEAD' ? undefined : st.body);
  });
  servers.add(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { st, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/releases/web` };
}

const pids = (st: DynoState, t: string) => (st.types[t]?.workers ?? []).map((w) => w.pid).sort();
const upAll = (st: DynoState, want: Record<string, number>) =>
  Object.entries(want).every(([t, n]) => st.types[t]?.workers.length === n && st.types[t]!.workers.every((w) => w.state === 'up') && !st.types[t]!.upgrading);
const tempFiles = (dir: string) => readdirSync(dir).filter((n) => n.includes('.fetch.'));

test('--config fetch=: a new release of one program is installed and rolled out under load with no failed request, other programs untouched; a failing release is put back and not tried again', async (t) => {
  const dir = newDir();
  const port = await freePort();
  const app = join(dir, 'web-app');
  writeFileSync(app, webRelease('v1'), { mode: 0o755 });
  const { st, url } = await releaseServer(webRelease('v1'));
  writeFileSync(
    join(dir, 'app.conf'),
    [
      '[program:web]',
      `command = ${app}`,
      `socket = tcp://127.0.0.1:${port}`,
      'numprocs = 2',
      'process_name = %(program_name)s_%(process_num)d',
      'ack = manual',
      `fetch = ${url}`,
      'fetch_interval = 0.1',
      'fetch_max_size = 1MB',
      'startretries = 1',
      '',
      '[program:other]',
      'command = sleep 1000',
      '',
    ].join('\n'),
  );
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  const first = await until('every program up', async () => {
    const s = await d.state();
    return upAll(s, { web: 2, other: 1 }) ? s : null;
  }, 30_000);
  assert.match(await get(port), / v1 /);
  // The first poll downloads once (the hash is the program's: the same), then HEAD only.
  await until('several polls', () => st.heads >= 5);
  assert.equal(st.gets, 1);

  // v2: installed, the previous kept, the web program rolled under load.
  const traffic = load(port, 4, { fresh: true, maxMs: 60_000 });
  try {
    await until('some traffic', () => traffic.result.ok > 30, 10_000);
    st.body = webRelease('v2');
    await d.waitLog(/\[program:web\] fetch: installed release sha256 [0-9a-f]{12} \(\d+ bytes\) from \S+ as \S+web-app \(the previous one kept as \S+web-app\.previous\); upgrading/, 20_000);
    await d.waitLog(/\[program:web\] fetch: installed release .*: upgrade done/, 30_000);
    const seen = traffic.result.ok;
    await until('traffic after the roll', () => traffic.result.ok > seen + 30, 10_000);
  } finally {
    await traffic.stop();
  }
  assert.equal(traffic.result.failed, 0, `failed requests: ${traffic.result.errors.join(', ')}`);
  t.diagnostic(`web rolled to a fetched release under load: ${traffic.result.ok} requests, ${traffic.result.failed} failed`);
  assert.match(await get(port), / v2 /);
  assert.deepEqual(readFileSync(app), webRelease('v2'));
  assert.deepEqual(readFileSync(`${app}.previous`), webRelease('v1'));
  const second = await until('rolled', async () => {
    const s = await d.state();
    return upAll(s, { web: 2, other: 1 }) && s.retiring.length === 0 ? s : null;
  });
  assert.ok(pids(second, 'web').every((p) => !pids(first, 'web').includes(p)), 'every web process replaced');
  assert.deepEqual(pids(second, 'other'), pids(first, 'other'), 'the other program untouched');

  // v3 crashes at start: the upgrade fails, v2 goes back on disk, v3 is not fetched again; v2 keeps serving.
  st.body = webRelease('v3', true);
  await d.waitLog(/\[program:web\] fetch: release sha256 [0-9a-f]{12} failed its upgrade \(.*\); \S+web-app is the previous release again/, 30_000);
  assert.deepEqual(readFileSync(app), webRelease('v2'), 'the previous executable is back');
  const gets = st.gets;
  const heads = st.heads;
  await until('more polls', () => st.heads >= heads + 5);
  assert.equal(st.gets, gets, 'the failed release is not downloaded again');
  const third = await d.state();
  assert.deepEqual(pids(third, 'web'), pids(second, 'web'), 'the v2 processes kept serving');
  assert.deepEqual(pids(third, 'other'), pids(first, 'other'));
  assert.match(await get(port), / v2 /);
  // The status of the program is what it was: RUNNING.
  assert.match((await d.ctl('status')).at(-1)!.message, /web:web_0\s+RUNNING/);
  // The failed release did not leave the program given up: a process that dies now is replaced (on v2).
  const victim = pids(third, 'web')[0]!;
  process.kill(victim, 'SIGKILL');
  await until('the killed web process replaced', async () => {
    const s = await d.state();
    return upAll(s, { web: 2 }) && !pids(s, 'web').includes(victim) ? s : null;
  }, 20_000);
  assert.match(await get(port), / v2 /);
  assert.deepEqual(tempFiles(dir), []);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config fetch=file:// and watch=: a release copied into place restarts its program; a watched path renamed over restarts its own; update adds and drops fetchers without restarting anything', async () => {
  const dir = newDir();
  const bin = join(dir, 'worker');
  const releases = join(dir, 'releases');
  const out = join(dir, 'out');
  const worker = (v: string) => Buffer.from(`#!/bin/sh\necho "${v} $$" >> "${out}"\nexec sleep 600\n`);
  writeFileSync(bin, worker('v1'), { mode: 0o755 });
  writeFileSync(join(dir, 'deploy.txt'), 'one\n');
  const base = [
    '[program:fetched]',
    `command = ${bin}`,
    `fetch = file://${releases}`,
    'fetch_interval = 0.1',
    'fetch_max_size = 1K',
    '',
    '[program:watched]',
    'command = sleep 1001',
    'watch = deploy.txt',
    '',
    '[program:plain]',
    'command = sleep 1002',
    '',
  ];
  writeFileSync(join(dir, 'app.conf'), base.join('\n'));
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  const first = await until('up', async () => {
    const s = await d.state();
    return upAll(s, { fetched: 1, watched: 1, plain: 1 }) ? s : null;
  }, 30_000);
  // No release yet: a warning, retried, nothing fatal.
  await d.waitLog(/\[program:fetched\] fetch: .*releases.*; retrying in/);
  // Too large: refused, named by its key.
  writeFileSync(`${releases}.tmp`, Buffer.concat([worker('big'), Buffer.alloc(2048, 0x23)]));
  renameSync(`${releases}.tmp`, releases);
  await d.waitLog(/\[program:fetched\] fetch file:\S+releases: not installing it: too large: \d+ bytes, more than the limit of 1024 \(fetch_max_size=\); waiting for the next release/, 20_000);
  assert.equal(readFileSync(bin, 'utf8'), worker('v1').toString());

  writeFileSync(`${releases}.tmp`, worker('v2'), { mode: 0o644 });
  renameSync(`${releases}.tmp`, releases);
  await d.waitLog(/\[program:fetched\] fetch: installed release .*: upgrade done/, 20_000);
  await until('the v2 process', () => readFileSync(out, 'utf8').trim().split('\n').at(-1)!.startsWith('v2 '));
  const second = await until('rolled', async () => {
    const s = await d.state();
    return upAll(s, { fetched: 1, watched: 1, plain: 1 }) && s.retiring.length === 0 ? s : null;
  });
  assert.notDeepEqual(pids(second, 'fetched'), pids(first, 'fetched'));
  assert.deepEqual(pids(second, 'watched'), pids(first, 'watched'));
  assert.deepEqual(pids(second, 'plain'), pids(first, 'plain'));
  assert.equal((readFileSync(bin, 'utf8')), worker('v2').toString(), 'installed executable (mode kept)');

  // A deploy renames over the watched path: that program alone restarts.
  writeFileSync(join(dir, 'deploy.txt.new'), 'two\n');
  renameSync(join(dir, 'deploy.txt.new'), join(dir, 'deploy.txt'));
  await d.waitLog(/\[program:watched\] watch: \S+deploy\.txt changed \(.*\): upgrade done/, 20_000);
  const third = await until('rolled', async () => {
    const s = await d.state();
    return upAll(s, { fetched: 1, watched: 1, plain: 1 }) && s.retiring.length === 0 ? s : null;
  });
  assert.notDeepEqual(pids(third, 'watched'), pids(second, 'watched'));
  assert.deepEqual(pids(third, 'fetched'), pids(second, 'fetched'));
  assert.deepEqual(pids(third, 'plain'), pids(first, 'plain'));

  // update: watch= moves to plain, fetched loses fetch=: reread says so, update restarts nothing.
  writeFileSync(
    join(dir, 'app.conf'),
    ['[program:fetched]', `command = ${bin}`, '', '[program:watched]', 'command = sleep 1001', '', '[program:plain]', 'command = sleep 1002', 'watch = deploy.txt', ''].join('\n'),
  );
  assert.equal((await d.ctl('reread')).at(-1)!.message, 'fetched: changed (fetch)\nplain: changed (watch)\nwatched: changed (watch)');
  assert.equal((await d.ctl('update')).at(-1)!.message, 'fetched: updated process group\nplain: updated process group\nwatched: updated process group');
  writeFileSync(join(dir, 'deploy.txt'), 'three\n');
  await d.waitLog(/\[program:plain\] watch: \S+deploy\.txt changed \(.*\): upgrade done/, 20_000);
  const fourth = await until('rolled', async () => {
    const s = await d.state();
    return upAll(s, { fetched: 1, watched: 1, plain: 1 }) && s.retiring.length === 0 ? s : null;
  });
  assert.deepEqual(pids(fourth, 'watched'), pids(third, 'watched'), 'no longer watching: untouched');
  assert.deepEqual(pids(fourth, 'fetched'), pids(third, 'fetched'), 'fetch= dropped: not restarted for it');
  assert.notDeepEqual(pids(fourth, 'plain'), pids(third, 'plain'));
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config fetch=/watch= bad input: one line FILE:LINE and exit 2 at start, nothing left; an error reply at reread/update, the running programs untouched', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'app.sh'), '#!/bin/sh\nexec sleep 1000\n', { mode: 0o755 });
  const cases: [string, RegExp][] = [
    ['fetch = ftp://example/app', /app\.conf:3: fetch: ftp:\/\/example\/app: unsupported scheme 'ftp' \(http, https or file\)$/],
    ['fetch = not a url', /app\.conf:3: fetch: expects a URL .*got 'not a url'$/],
    ['fetch_interval = 5', /app\.conf:3: fetch_interval: only means something with fetch=URL$/],
    ['fetch = http://127.0.0.1:1/x\nfetch_interval = 0', /app\.conf:4: fetch_interval: expects a number of seconds greater than 0, got "0"$/],
    ['fetch = http://127.0.0.1:1/x\nfetch_max_size = lots', /app\.conf:4: fetch_max_size: expects a size in bytes .*got "lots"$/],
    ['watch = /no/such/dir/file', /app\.conf:3: watch: \/no\/such\/dir\/file: directory \/no\/such\/dir does not exist$/],
    ['watch = a,,b', /app\.conf:3: watch: expects PATH\[,PATH\.\.\.\]/],
    ['ack = manual:0', /app\.conf:3: ack: ack=manual:SECONDS expects an ACK deadline of more than 0 and at most 86400 seconds, got "manual:0"$/],
    ['ack = manual:soon', /app\.conf:3: ack: ack=manual:SECONDS expects an ACK deadline .*got "manual:soon"$/],
  ];
  for (const [line, want] of cases) {
    writeFileSync(join(dir, 'app.conf'), `[program:a]\ncommand = ${join(dir, 'app.sh')}\n${line}\n`);
    const r = await runDyno(['start', '--config', 'app.conf', '-d', join(dir, 'ctl.sock')], { cwd: dir });
    assert.equal(r.code, 2, `${line}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, want, line);
    assert.deepEqual(readdirSync(dir).sort(), ['app.conf', 'app.sh']);
  }
  // What fetch= would replace: not node itself, not one executable for two programs.
  writeFileSync(join(dir, 'app.conf'), `[program:a]\ncommand = ${process.execPath} -e 0\nfetch = http://127.0.0.1:1/node\n`);
  let r = await runDyno(['start', '--config', 'app.conf', '-d', join(dir, 'ctl.sock')], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /^einhyrningsins-dyno: .*app\.conf:3: \[program:a\] fetch: the program \S+ is the node executable itself; fetch releases of a program file, not of its interpreter$/);
  writeFileSync(
    join(dir, 'app.conf'),
    `[program:a]\ncommand = ${join(dir, 'app.sh')}\nfetch = http://127.0.0.1:1/a\n[program:b]\ncommand = ./app.sh x\nfetch = http://127.0.0.1:1/b\n`,
  );
  r = await runDyno(['start', '--config', 'app.conf', '-d', join(dir, 'ctl.sock')], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /app\.conf:6: \[program:b\] fetch: \S+app\.sh is already replaced by the fetch= of \[program:a\]; one fetcher per executable$/);
  assert.deepEqual(readdirSync(dir).sort(), ['app.conf', 'app.sh']);

  // At reread/update: an error reply, nothing touched.
  writeFileSync(join(dir, 'app.conf'), `[program:a]\ncommand = ${join(dir, 'app.sh')}\n`);
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  const before = await until('up', async () => {
    const s = await d.state();
    return upAll(s, { a: 1 }) ? s : null;
  }, 20_000);
  writeFileSync(join(dir, 'app.conf'), `[program:a]\ncommand = ${join(dir, 'app.sh')}\nfetch = gopher://x/y\n`);
  for (const c of ['reread', 'update']) {
    const reply = (await d.ctl(c)).at(-1)!;
    assert.equal(reply.error, true);
    assert.match(reply.message, /^ERROR: .*app\.conf:3: fetch: gopher:\/\/x\/y: unsupported scheme 'gopher'.*; the running programs are untouched$/);
  }
  writeFileSync(join(dir, 'app.conf'), `[program:a]\ncommand = ${join(dir, 'app.sh')}\n\nack = manual:-5\n`);
  for (const c of ['reread', 'update']) {
    const reply = (await d.ctl(c)).at(-1)!;
    assert.equal(reply.error, true);
    assert.match(reply.message, /^ERROR: .*app\.conf:4: ack: ack=manual:SECONDS expects an ACK deadline .*got "manual:-5"; the running programs are untouched$/);
  }
  writeFileSync(join(dir, 'app.conf'), `[program:a]\ncommand = ${process.execPath} -e 0\nfetch = http://127.0.0.1:1/node\n`);
  const reply = (await d.ctl('update')).at(-1)!;
  assert.equal(reply.error, true);
  assert.match(reply.message, /^ERROR: .*app\.conf:3: \[program:a\] fetch: the program \S+ is the node executable itself.*; the running programs are untouched$/);
  assert.deepEqual(pids(await d.state(), 'a'), pids(before, 'a'));
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config fetch= with user=: the installed release has the owner and mode of the executable it replaces (a 0700 program of nobody stays runnable by nobody)', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
  const dir = newDir();
  chmodSync(dir, 0o755);
  const bin = join(dir, 'app');
  const releases = join(dir, 'releases');
  const release = (v: string) => Buffer.from(`#!/bin/sh\necho "${v} $(id -u)"\nexec sleep 600\n`);
  writeFileSync(bin, release('v1'), { mode: 0o700 });
  chownSync(bin, 65534, 65534);
  writeFileSync(join(dir, 'app.conf'), `[program:app]\ncommand = ${bin}\nuser = nobody\nfetch = file://${releases}\nfetch_interval = 0.1\n`);
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await d.waitOut(/app \| v1 65534\n/, 20_000);
  writeFileSync(`${releases}.tmp`, release('v2'));
  renameSync(`${releases}.tmp`, releases);
  await d.waitLog(/\[program:app\] fetch: installed release .*: upgrade done/, 20_000);
  await d.waitOut(/app \| v2 65534\n/);
  const st = statSync(bin);
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [65534, 65534, 0o700]);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config fetch=: a release that failed its upgrade is not fetched or installed again after a driver reload (the memory is in the reload snapshot)', async () => {
  const dir = newDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  const release = (v: string, crash = false) => Buffer.from(`#!/bin/sh\necho "${v} $$" >> "${out}"\n${crash ? 'exit 1' : 'exec sleep 600'}\n`);
  writeFileSync(app, release('v1'), { mode: 0o755 });
  const { st, url } = await releaseServer(release('v2', true));
  writeFileSync(join(dir, 'app.conf'), `[program:app]\ncommand = ${app}\nfetch = ${url}\nfetch_interval = 0.1\nstartretries = 1\n`);
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await d.waitLog(/\[program:app\] fetch: release sha256 [0-9a-f]{12} failed its upgrade \(.*\); \S+app is the previous release again/, 30_000);
  assert.deepEqual(readFileSync(app), release('v1'));
  const before = await until('app RUNNING again', async () => {
    const s = await d.state();
    return upAll(s, { app: 1 }) && s.retiring.length === 0 ? s : null;
  }, 30_000);
  const installs = () => (d.stderr.match(/\[program:app\] fetch: installed release [^\n]*; upgrading\n/g) ?? []).length;
  assert.equal(installs(), 1);
  for (let i = 1; i <= 2; i++) {
    const replies = await d.ctl('reload');
    assert.match(replies.at(-1)!.message, new RegExp(`^Reload done: .*\\(reload ${i}\\), 1 process adopted$`), JSON.stringify(replies));
    const gets = st.gets;
    const heads = st.heads;
    await until('polls of the new image', () => st.heads >= heads + 5, 20_000);
    assert.equal(st.gets, gets, `reload ${i}: the failed release is not downloaded again`);
  }
  assert.equal(installs(), 1, 'the failed release is not installed again');
  assert.deepEqual(readFileSync(app), release('v1'));
  assert.deepEqual(pids(await d.state(), 'app'), pids(before, 'app'), 'the v1 process kept running');
  // A good release after the reloads: installed and run.
  st.body = release('v3');
  await until('the v3 process', () => readFileSync(out, 'utf8').trim().split('\n').at(-1)!.startsWith('v3 '), 30_000);
  assert.equal(installs(), 2);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('--config fetch= with ack=manual:SECONDS: a release whose processes never ACK is put back after the deadline, the old processes serving throughout; it is not fetched again; a later good release is applied', async (t) => {
  const dir = newDir();
  const port = await freePort();
  const app = join(dir, 'web-app');
  const started = join(dir, 'started');
  // A release that starts and hangs: it never listens nor ACKs (each start leaves a line).
  const hung = Buffer.from(`#!/bin/sh\necho "hung $$" >> "${started}"\nexec sleep 600\n`);
  writeFileSync(app, webRelease('v1'), { mode: 0o755 });
  const { st, url } = await releaseServer(webRelease('v1'));
  writeFileSync(
    join(dir, 'app.conf'),
    [
      '[program:web]',
      `command = ${app}`,
      `socket = tcp://127.0.0.1:${port}`,
      'numprocs = 2',
      'process_name = %(program_name)s_%(process_num)d',
      'ack = manual:1',
      `fetch = ${url}`,
      'fetch_interval = 0.1',
      'startretries = 1',
      '',
    ].join('\n'),
  );
  // The driver's own deadline is far longer: the program's ack=manual:1 is the one that counts.
  const d = startDriver(['start', '--config', 'app.conf', '--ack-timeout', '600'], { dir });
  const first = await until('web up', async () => {
    const s = await d.state();
    return upAll(s, { web: 2 }) ? s : null;
  }, 30_000);
  await until('first poll', () => st.heads >= 2);
  const installs = () => (d.stderr.match(/\[program:web\] fetch: installed release [^\n]*; upgrading\n/g) ?? []).length;

  const traffic = load(port, 4, { fresh: true, maxMs: 60_000 });
  try {
    await until('some traffic', () => traffic.result.ok > 30, 10_000);
    st.body = hung;
    await d.waitLog(/did not ACK within 1s; stopping it/, 20_000);
    await d.waitLog(/\[program:web\] fetch: release sha256 [0-9a-f]{12} failed its upgrade \([^\n]*did not ack within 1s[^\n]*\); \S+web-app is the previous release again/, 40_000);
    assert.deepEqual(readFileSync(app), webRelease('v1'), 'the previous executable is back on disk');
    const seen = traffic.result.ok;
    await until('traffic after the put-back', () => traffic.result.ok > seen + 30, 10_000);
  } finally {
    await traffic.stop();
  }
  assert.equal(traffic.result.failed, 0, `failed requests: ${traffic.result.errors.join(', ')}`);
  t.diagnostic(`a never-ACKing release put back under load: ${traffic.result.ok} requests, ${traffic.result.failed} failed`);
  const hungPids = readFileSync(started, 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1]));
  assert.ok(hungPids.length >= 1, 'the hung release was started');
  await until('every hung process gone', () => hungPids.every((p) => {
    try {
      process.kill(p, 0);
      return false;
    } catch {
      return true;
    }
  }), 20_000);
  const second = await until('web settled', async () => {
    const s = await d.state();
    return upAll(s, { web: 2 }) && s.retiring.length === 0 ? s : null;
  }, 20_000);
  assert.deepEqual(pids(second, 'web'), pids(first, 'web'), 'the v1 processes kept serving');
  assert.match(await get(port), / v1 /);
  // Not downloaded nor installed again while the URL serves the same content.
  const gets = st.gets;
  const heads = st.heads;
  await until('more polls', () => st.heads >= heads + 5, 20_000);
  assert.equal(st.gets, gets, 'the refused release is not downloaded again');
  assert.equal(installs(), 1, 'the refused release is not installed again');
  assert.equal(readFileSync(started, 'utf8').trim().split('\n').length, hungPids.length, 'the hung release is not started again');
  assert.match((await d.ctl('status')).at(-1)!.message, /web:web_0\s+RUNNING/);

  // A good release afterwards: installed and rolled out.
  st.body = webRelease('v3');
  await d.waitLog(/\[program:web\] fetch: installed release sha256 [0-9a-f]{12} [^\n]*: upgrade done/, 30_000);
  assert.equal(installs(), 2);
  assert.deepEqual(readFileSync(app), webRelease('v3'));
  assert.deepEqual(readFileSync(`${app}.previous`), webRelease('v1'));
  await until('v3 serving', async () => / v3 /.test(await get(port)), 20_000);
  const third = await until('rolled', async () => {
    const s = await d.state();
    return upAll(s, { web: 2 }) && s.retiring.length === 0 ? s : null;
  });
  assert.ok(pids(third, 'web').every((p) => !pids(first, 'web').includes(p)), 'every web process replaced');
  assert.deepEqual(tempFiles(dir), []);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('minisv.json fetch/watch: a task fetches its releases and a watched path restarts its task, as the INI keys; the other task untouched', async () => {
  const dir = newDir();
  const bin = join(dir, 'worker');
  const releases = join(dir, 'releases');
  const out = join(dir, 'out');
  const worker = (v: string) => Buffer.from(`#!/bin/sh\necho "${v} $$" >> "${out}"\nexec sleep 600\n`);
  writeFileSync(bin, worker('v1'), { mode: 0o755 });
  writeFileSync(join(dir, 'deploy.txt'), 'one\n');
  writeFileSync(
    join(dir, 'minisv.json'),
    JSON.stringify({
      tasks: {
        fetched: { command: bin, fetch: `file://${releases}`, fetchInterval: 0.1, fetchMaxSize: '1K' },
        watched: { command: 'sleep', args: ['1001'], watch: ['deploy.txt'] },
        plain: { command: 'sleep', args: ['1002'] },
      },
    }),
  );
  const d = startDriver(['start', '--config', 'minisv.json'], { dir });
  const first = await until('every task up', async () => {
    const s = await d.state();
    return upAll(s, { fetched: 1, watched: 1, plain: 1 }) ? s : null;
  }, 30_000);
  writeFileSync(`${releases}.tmp`, worker('v2'));
  renameSync(`${releases}.tmp`, releases);
  await d.waitLog(/\[program:fetched\] fetch: installed release sha256 [0-9a-f]{12} \(\d+ bytes\) from file:\S+releases as \S+worker .*: upgrade done/, 20_000);
  await until('the v2 process', () => readFileSync(out, 'utf8').trim().split('\n').at(-1)!.startsWith('v2 '), 20_000);
  assert.equal(readFileSync(bin, 'utf8'), worker('v2').toString());
  writeFileSync(join(dir, 'deploy.txt.new'), 'two\n');
  renameSync(join(dir, 'deploy.txt.new'), join(dir, 'deploy.txt'));
  await d.waitLog(/\[program:watched\] watch: \S+deploy\.txt changed \(.*\): upgrade done/, 20_000);
  const second = await until('rolled', async () => {
    const s = await d.state();
    return upAll(s, { fetched: 1, watched: 1, plain: 1 }) && s.retiring.length === 0 ? s : null;
  });
  assert.notDeepEqual(pids(second, 'fetched'), pids(first, 'fetched'));
  assert.notDeepEqual(pids(second, 'watched'), pids(first, 'watched'));
  assert.deepEqual(pids(second, 'plain'), pids(first, 'plain'));
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});
