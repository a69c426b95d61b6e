/**
 * Issue 18 (hardening, round three), black-box: each defect found by attacking the landed
 * tree from outside, with the real CLIs, real children, real sockets and real signals.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { ROOT, cleanupAll, runCli, sleep, startMaster, tempDir, until } from './harness.js';
import { newDir, runDyno, startDriver, writeRelease, type DriverProc } from './dyno-harness.js';
import { statusKb } from './proc.js';
import { serializedCore } from './reload-states.js';
import { decodeReply } from '@einhyrningsins/protocol';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

// ---- 1. -b unix:PATH,mode=OCTAL: the mode is never applied by path ---------------------

/**
 * The attacker of the issue, made deterministic: a preload (NODE_OPTIONS=--require) in the
 * master that, whenever the master chmods the socket's path, first renames a symlink to
 * `victim` over the socket, which is what another user who can write the directory does in
 * the window between bind() and a chmod() by path. A master that never applies the mode by
 * path is never raced; one that does chmods the victim, every time.
 */
function attackerPreload(dir: string, sock: string, victim: string): string {
  const hook = join(dir, 'swap-before-chmod.cjs');
  writeFileSync(
    hook,
    `const fs = require('node:fs');
const sock = ${JSON.stringify(sock)}, victim = ${JSON.stringify(victim)};
const swap = (p) => {
  if (String(p) !== sock) return;
  fs.appendFileSync(${JSON.stringify(join(dir, 'chmod-by-path.log'))}, 'chmod ' + p + '\\n');
  try { fs.unlinkSync(sock + '.evil'); } catch {}
  fs.symlinkSync(victim, sock + '.evil');
  fs.renameSync(sock + '.evil', sock);
};
for (const name of ['chmodSync', 'chmod', 'lchmodSync']) {
  const orig = fs[name];
  if (typeof orig !== 'function') continue;
  fs[name] = function (p, ...rest) { swap(p); return orig.call(this, p, ...rest); };
}
const origP = fs.promises.chmod;
fs.promises.chmod = async (p, ...rest) => { swap(p); return origP(p, ...rest); };
`,
  );
  return hook;
}

test('1: -b unix:PATH,mode=666 with a symlink renamed over the new socket never chmods the link target', async () => {
  const dir = tempDir();
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'secret\n');
  chmodSync(victim, 0o600);
  const sock = join(dir, 'app.sock');
  const hook = attackerPreload(dir, sock, victim);
  const m = startMaster(['-m', '0', '-b', `unix:${sock},mode=666`, '--', 'sleep', '1000'], {
    dir,
    env: { NODE_OPTIONS: `--require ${hook}` },
  });
  await until('the master up or gone', () => m.exited ?? (/Master \d+ up/.test(m.stderr) ? true : null), 15_000);
  if (!m.exited) await m.stop();
  assert.equal(statSync(victim).mode & 0o777, 0o600, `the victim was chmodded through the swapped symlink (stderr:\n${m.stderr})`);
  assert.equal(existsSync(join(dir, 'chmod-by-path.log')), false, 'the socket mode was applied by path');
  assert.equal(m.exited?.code, 0, m.stderr);
});

test('1: the control socket (--socket-mode 0666) is not chmodded by path either', async () => {
  const dir = tempDir();
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'secret\n');
  chmodSync(victim, 0o600);
  const hook = attackerPreload(dir, join(dir, 'ctl.sock'), victim);
  const m = startMaster(['--socket-mode', '0666', '-m', '0', '--', 'sleep', '1000'], { dir, env: { NODE_OPTIONS: `--require ${hook}` } });
  await until('the master up or gone', () => m.exited ?? (/Master \d+ up/.test(m.stderr) ? true : null), 15_000);
  if (!m.exited) await m.stop();
  assert.equal(statSync(victim).mode & 0o777, 0o600, `the victim was chmodded through the swapped symlink (stderr:\n${m.stderr})`);
  assert.equal(existsSync(join(dir, 'chmod-by-path.log')), false, 'the socket mode was applied by path');
  assert.equal(m.exited?.code, 0, m.stderr);
});

test('1: the unix socket is created with exactly the mode asked for, whatever the umask', async () => {
  const dir = tempDir();
  const sock = join(dir, 'app.sock');
  const m = startMaster(['-m', '0', '-b', `unix:${sock},mode=0660`, '--', 'sleep', '1000'], { dir, prefix: ['sh', '-c', 'umask 077; exec "$@"', 'sh'] });
  await m.waitLog(/Master \d+ up/);
  const st = lstatSync(sock);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal((await m.stop()).code, 0);
  assert.equal(existsSync(sock), false);
});

test('1: -b unix: in a world-writable non-sticky directory is refused; group-writable is warned about', async () => {
  const dir = tempDir();
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const m = startMaster(['-m', '0', '-b', `unix:${join(open, 'app.sock')}`, '--', 'sleep', '1000'], { dir });
  await until('the master gone', () => m.exited, 15_000);
  assert.equal(m.exited?.code, 1, m.stderr);
  assert.match(m.stderr, /socket directory .*open is writable by every user \(mode 0777\) and not sticky.*refusing/);
  assert.equal(m.stderr.trim().split('\n').length, 1, m.stderr);
  assert.equal(existsSync(join(open, 'app.sock')), false);

  const grp = join(dir, 'grp');
  mkdirSync(grp);
  chmodSync(grp, 0o775);
  const g = startMaster(['-m', '0', '-b', `unix:${join(grp, 'app.sock')}`, '--', 'sleep', '1000'], { dir });
  await g.waitLog(/Master \d+ up/);
  assert.match(g.stderr, /WARN: -b unix:.*grp is writable by its group \(mode 0775/);
  assert.equal((await g.stop()).code, 0);

  const sticky = join(dir, 'sticky');
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  const s = startMaster(['-m', '0', '-b', `unix:${join(sticky, 'app.sock')}`, '--', 'sleep', '1000'], { dir });
  await s.waitLog(/Master \d+ up/);
  assert.doesNotMatch(s.stderr, /WARN/);
  assert.equal((await s.stop()).code, 0);
});

// ---- 2, 3. the dyno driver's HTTP connections obey the control server's limits ---------

/** A driver with one sleeping worker type (no web), its control socket at DIR/ctl.sock. */
async function sleepyDriver(): Promise<DriverProc> {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), 'worker: exec sleep 1000\n');
  const d = startDriver(['start'], { dir });
  await d.ready({ worker: 1 });
  return d;
}

function connectUnix(path: string, allowHalfOpen = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path, allowHalfOpen });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

test('2: 600 HTTP clients that never finish a request head, and 300 that hang up mid-request, do not lock the dyno control socket', async () => {
  const d = await sleepyDriver();
  const socks: Socket[] = [];
  const closed = new Set<Socket>();
  try {
    for (let i = 0; i < 900; i += 1) {
      const s = await connectUnix(d.sockPath);
      s.on('error', () => {});
      s.on('close', () => closed.add(s));
      s.write('GET /status HTTP/1.1\r\nHost: x\r\n');
      if (i % 3 === 0) s.end(); // hangs up mid-request
      socks.push(s);
    }
    // The ones that hung up are closed by the driver, long before any idle timeout.
    const hungUp = socks.filter((_, i) => i % 3 === 0);
    await until('the half-closed HTTP connections closed by the driver', () => hungUp.every((s) => closed.has(s)), 15_000);
    // Full of silent ones: the idlest makes room, for the ctl and for HTTP.
    const [st] = await d.ctl('status');
    assert.match(st!.message, /^worker\s+1\s+1/m);
    assert.equal((await hsupGet(d.sockPath, '/health')).body, 'OK');
    // Those silent for a second (never a connection just accepted, not read yet) make room.
    await d.waitLog(/Control connections at the limit \(512\): closing the one idle longest/);
  } finally {
    for (const s of socks) s.destroy();
  }
  assert.equal((await d.stop()).code, 0);
});

test('2: an HTTP request head over 16 KiB gets 413 and the connection closed; one request per connection', async () => {
  const d = await sleepyDriver();
  const big = await rawHttp(d.sockPath, `GET /health HTTP/1.1\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(big, /^HTTP\/1\.1 413 /);
  const body = await rawHttp(d.sockPath, `POST /control/stop HTTP/1.1\r\nContent-Length: 70000\r\n\r\n`);
  assert.match(body, /^HTTP\/1\.1 413 /);
  // Two pipelined requests: one answer, then the connection is closed.
  const two = await rawHttp(d.sockPath, 'GET /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n');
  assert.equal((two.match(/HTTP\/1\.1 200/g) ?? []).length, 1, two);
  assert.equal((await d.stop()).code, 0);
});

test('3: bytes sent after an HTTP request are not read: the driver neither buffers nor copies them', async () => {
  const d = await sleepyDriver();
  const rss0 = statusKb(d.pid, 'VmRSS') ?? 0;
  // Half-open allowed: it keeps sending after the driver's reply and end, as the attacker did.
  const s = await connectUnix(d.sockPath, true);
  let reply = '';
  let gone = false;
  s.on('data', (c) => (reply += c));
  s.on('error', () => (gone = true));
  s.on('close', () => (gone = true));
  s.write('GET /health HTTP/1.1\r\n\r\n');
  await until('the reply', () => /\r\n\r\nOK$/.test(reply));
  // Then up to 32 MiB more, in 64 KiB writes; each waits for the kernel to take it (2 s at most).
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let accepted = 0;
  const deadline = Date.now() + 20_000;
  while (!gone && accepted < 32 * 1024 * 1024 && Date.now() < deadline) {
    const flushed = s.write(chunk);
    if (!flushed) {
      const drained = await Promise.race([new Promise<boolean>((r) => s.once('drain', () => r(true))), sleep(2000).then(() => false)]);
      if (!drained) break;
    }
    accepted += chunk.length;
  }
  s.destroy();
  const rss1 = statusKb(d.pid, 'VmRSS') ?? 0;
  if (process.env.TEST_VERBOSE) console.log(`accepted ${accepted} gone ${gone} rss ${rss0} -> ${rss1}`);
  assert.ok(accepted < 8 * 1024 * 1024, `the driver took ${Math.round(accepted / 1024)} KiB sent after the request (RSS ${rss0} -> ${rss1} KiB)`);
  assert.equal((await d.stop()).code, 0);
});

/** Send `raw` on a fresh connection to the socket; resolves to everything read until it is closed. */
async function rawHttp(path: string, raw: string): Promise<string> {
  const s = await connectUnix(path);
  let got = '';
  s.on('data', (c) => (got += c));
  s.on('error', () => {});
  s.write(raw);
  await new Promise<void>((r) => s.once('close', () => r()));
  return got;
}

async function hsupGet(path: string, target: string): Promise<{ status: number; body: string }> {
  const raw = await rawHttp(path, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const i = raw.indexOf('\r\n\r\n');
  return { status: Number(raw.slice(9, 12)), body: raw.slice(i + 4) };
}

// ---- 11. the ctl refuses a socket another user owns ------------------------------------

const CTL = join(ROOT, 'bin', 'einhyrningsinsctl');

test("11: root's einhyrningsinsctl refuses a control socket owned by another user (a fake master behind a swapped symlink)", async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to run the fake master as another user');
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const evil = join(dir, 'evil');
  mkdirSync(evil);
  chownSync(evil, 65534, 65534);
  // The operator's path goes through a symlinked directory that now points at the attacker's.
  symlinkSync(evil, join(dir, 'run'));
  const src = `
    const net = require('node:net');
    const srv = net.createServer((c) => c.on('data', () => c.write(JSON.stringify({ message: 'fake master: pwned' }) + '\\n')));
    srv.listen(process.argv[1], () => process.stdout.write('listening\\n'));`;
  const fake = spawn(process.execPath, ['-e', src, join(evil, 'ctl.sock')], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((r) => fake.stdout.once('data', () => r()));
    const r = await runCli(['-d', join(dir, 'run', 'ctl.sock'), 'status'], { bin: CTL });
    assert.doesNotMatch(r.stdout, /pwned/);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^einhyrningsinsctl: refusing .*ctl\.sock: the socket belongs to uid 65534, neither root nor you \(uid 0\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  } finally {
    fake.kill('SIGKILL');
    await new Promise((r) => fake.once('exit', r));
  }
});

// ---- 4. a request line split around a reload's exec --------------------------------------

test('4: a request line that arrives in two pieces around a reload is answered, not "Could not parse command"', async () => {
  const m = startMaster(['-m', 'manual', '--', 'sleep', '1000']);
  await m.waitLog(/Master \d+ up/);
  const s = await connectUnix(m.sockPath);
  let got = '';
  s.on('data', (c) => (got += c));
  s.write('{"command":"sta');
  await sleep(200); // read by the image before
  const replies = await m.ctl('reload');
  assert.match(replies.at(-1)!.message, /^Reload done/);
  s.write('tus","id":"split"}\n');
  await until('the reply to the split line', () => (got.includes('\n') ? got : null));
  const reply = (decodeReply(got.split('\n')[0]!) as { reply: unknown }).reply as { message: string; requestId?: string };
  assert.doesNotMatch(reply.message, /Could not parse/);
  assert.equal(reply.requestId, 'split');
  assert.match(reply.message, /generation/i);
  s.destroy();
  assert.equal((await m.stop()).code, 0);
});

// ---- 5. the ctl reads replies of any size --------------------------------------------------

/** A fake master on `path` that answers every request line with `reply(id)` (a raw line). */
async function fakeMaster(path: string, reply: (id: unknown) => string): Promise<{ close: () => Promise<void> }> {
  const srv = createServer((c) => {
    let buf = '';
    c.on('error', () => {});
    c.on('data', (d) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        c.write(reply((JSON.parse(line) as { id?: unknown }).id));
      }
    });
  });
  await new Promise<void>((r) => srv.listen(path, r));
  return { close: () => new Promise<void>((r) => srv.close(() => r())) };
}

test('5: einhyrningsinsctl prints a 1 MiB reply (the state of hundreds of workers) instead of hanging', async () => {
  const dir = tempDir();
  const sock = join(dir, 'fake.sock');
  const big = 'w'.repeat(1024 * 1024);
  const fake = await fakeMaster(sock, (id) => JSON.stringify({ message: `start ${big} end`, request_id: id }) + '\n');
  try {
    const r = await runCli(['-d', sock, 'state'], { bin: CTL, timeoutMs: 20_000 });
    assert.equal(r.signal, null, 'the ctl hung (killed after 20 s)');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`start ${big} end`), `printed ${r.stdout.length} bytes`);
  } finally {
    await fake.close();
  }
});

test('5: a reply over the ctl bound (64 MiB) fails with one line, never a hang', async () => {
  const dir = tempDir();
  const sock = join(dir, 'fake.sock');
  const srv = createServer((c) => {
    c.on('error', () => {});
    c.once('data', () => {
      // 65 MiB of one line that never ends, written as the client reads it.
      let left = 65;
      const chunk = Buffer.alloc(1024 * 1024, 'x');
      const more = () => {
        while (left > 0) {
          left -= 1;
          if (!c.write(left === 64 ? Buffer.concat([Buffer.from('{"message":"'), chunk]) : chunk)) return void c.once('drain', more);
        }
      };
      more();
    });
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  try {
    const r = await runCli(['-d', sock, 'state'], { bin: CTL, timeoutMs: 30_000 });
    assert.equal(r.signal, null, 'the ctl hung (killed after 30 s)');
    assert.equal(r.code, 3);
    assert.equal(r.stderr, `einhyrningsinsctl: a reply from ${sock} is over 64 MiB; giving up\n`);
  } finally {
    srv.close();
    await new Promise<void>((r) => srv.once('close', () => r()));
  }
});

// ---- 6, 10. the .env reader ------------------------------------------------------------------

test('6: a .env of 20,000 lines after an unterminated double quote is read in linear time (the driver starts at once)', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), 'worker: exec sleep 1000\n');
  const lines = ['OPEN="never closed'];
  for (let i = 0; i < 20_000; i += 1) lines.push(`K${i}=value number ${i} with some text in it`);
  writeFileSync(join(dir, '.env'), lines.join('\n') + '\n');
  const d = startDriver(['start'], { dir });
  // Unfixed: 25 s of CPU before it even started; linear, it is up in well under a second.
  await d.ready({ worker: 1 }, 12_000);
  assert.match(d.stderr, /\.env:1: unterminated double quote in OPEN; taken literally to the end of the line/);
  assert.equal((await d.stop()).code, 0);
});

for (const [what, value, error] of [
  ['a NUL byte', 'before\0after', /\.env:2: the value of BAD contains a NUL byte, which no environment can hold; refusing the \.env file$/],
  ['a megabyte', 'x'.repeat(1024 * 1024), /\.env:2: BAD is 1048580 bytes long, over the 131071 an environment variable can have; refusing the \.env file$/],
] as const) {
  test(`10: ${what} in a .env value is refused when the file is read, naming FILE:LINE; nothing starts, no crash loop`, async () => {
    const dir = newDir();
    writeFileSync(join(dir, 'Procfile'), 'worker: exec sleep 1000\n');
    writeFileSync(join(dir, '.env'), `GOOD=1\nBAD=${value}\n`);
    const r = await runDyno(['start', '-d', join(dir, 'ctl.sock')], { cwd: dir, timeoutMs: 15_000 });
    assert.equal(r.signal, null, `still running after 15 s (crash loop?):\n${r.stderr.slice(-2000)}`);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, error);
    assert.equal(existsSync(join(dir, 'ctl.sock')), false);
  });
}

// ---- 7. a wall-clock step during a reload's exec is not an age ---------------------------

test('7: a wall-clock step of +1 h during the exec of a reload is not added to the ages (no false "did not ACK")', async () => {
  const dir = tempDir();
  // The new image sees the wall clock an hour ahead, as after a step (NTP, a VM resumed).
  const shift = join(dir, 'clock-step.cjs');
  writeFileSync(shift, 'const now = Date.now; Date.now = () => now() + 3600_000;\n');
  const m = startMaster(
    ['-n', '1', '-m', 'manual', '--ack-timeout', '600', `--reexec-as=env NODE_OPTIONS=--require=${shift} ${process.execPath} ${join(ROOT, 'bin', 'einhyrningsins')}`, '--', 'sleep', '1000'],
    { dir },
  );
  await until('a worker starting', async () => ((await m.workers()).length === 1 ? true : null));
  assert.match((await m.ctl('reload')).at(-1)!.message, /^Reload done/);
  await sleep(1500); // the ACK window is re-armed with what is left of it
  assert.doesNotMatch(m.stderr, /did not ACK within/);
  const ws = await m.workers();
  assert.equal(ws.length, 1);
  assert.equal(ws[0]!.state, 'starting', m.stderr);
  assert.equal((await m.stop()).code, 0);
});

// ---- 8. --with-state-fd with malformed content -------------------------------------------

/** A snapshot with every field a master writes (the fds in it are filled in by each case). */
function baseState(dir: string): Record<string, unknown> {
  return {
    format: 1,
    version: '0.0.0',
    wall: Date.now(),
    monotonic: 0,
    argv: ['-d', join(dir, 'ctl.sock'), '--', 'sleep', '1000'],
    startedAtWall: Date.now(),
    reloads: 1,
    sockets: [],
    control: { fd: 0, path: join(dir, 'ctl.sock'), ino: 1 },
    connections: [],
    lockfile: null,
    pidfile: null,
    verbosity: 1,
    core: serializedCore(),
  };
}

for (const [what, change, error] of [
  ['sockets not a list', (s: Record<string, unknown>) => (s.sockets = 5), /state\.sockets is 5, expected a list/],
  [
    'a closed fd',
    (s: Record<string, unknown>) => (s.sockets = [{ fd: 987, family: 4, text: '127.0.0.1:0', address: '127.0.0.1', port: 1, flags: [], unixFile: null }]),
    /fd 987 \(127\.0\.0\.1:0\) is not open/,
  ],
  ['core: {}', (s: Record<string, unknown>) => (s.core = {}), /state\.core\.format is undefined|state\.core\.format is .*expected one of 1/],
  [
    'a fetch memory with a bad hash',
    (s: Record<string, unknown>) => (s.fetch = { url: 'http://127.0.0.1:1/app', seenKey: null, refused: ['nothex'] }),
    /state\.fetch\.refused\[0\] is "nothex", expected a SHA-256 \(64 hex digits\)/,
  ],
  ['not JSON', null, /not JSON/],
] as const) {
  test(`8: --with-state-fd with malformed content (${what}): one line, exit 1, nothing left behind`, async () => {
    const dir = tempDir();
    const file = join(dir, 'state.json');
    const st = baseState(dir);
    if (change) change(st);
    writeFileSync(file, change ? JSON.stringify(st) : '{"format": 1, "sockets": [');
    const fd = openSync(file, 'r');
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'einhyrningsins'), '--with-state-fd', '3', '-d', join(dir, 'ctl.sock'), '--', 'sleep', '1000'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe', fd],
    });
    closeSync(fd);
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    const killer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    const [code] = await new Promise<[number | null]>((r) => p.once('exit', (c) => r([c])));
    clearTimeout(killer);
    assert.equal(code, 1, stderr);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, /^einhyrningsins: cannot read the reload state on fd 3: /);
    assert.match(lines[0]!, error);
    assert.equal(existsSync(join(dir, 'ctl.sock')), false);
  });
}

// ---- 9. dyno control dir: non-regular `new`, content never echoed -------------------------

test('9: a `new` that is a directory, then bad releases: each rejected with last_error; a symlink to a secret is refused unread', async () => {
  const dir = newDir();
  const ctl = join(dir, 'control');
  mkdirSync(ctl);
  writeRelease(ctl, { Version: 1, Processes: [{ Type: 'worker', Args: ['sleep', '1000'], Quantity: 1 }] });
  const d = startDriver(['start', '-c', ctl], { dir });
  await d.ready({ worker: 1 });
  const rejectedNow = async (why: RegExp) => {
    await until('new set aside', () => (!existsSync(join(ctl, 'new')) && existsSync(join(ctl, 'last_error')) && why.test(readFileSync(join(ctl, 'last_error'), 'utf8')) ? true : null), 10_000);
  };
  // A directory as `new`.
  mkdirSync(join(ctl, 'new'));
  await rejectedNow(/not a regular file/);
  // Then two bad releases in a row: each set aside, each reason written.
  for (const [text, why] of [
    ['{"Version": 2, "Processes": [', /invalid JSON: it ends too early/],
    [JSON.stringify({ Version: 2, Processes: [{ Type: 'worker', Quantity: 1 }] }), /Args \(worker\) must be a non-empty array/],
  ] as const) {
    writeRelease(ctl, null, text);
    await rejectedNow(why);
    assert.equal(readFileSync(join(ctl, 'rejected'), 'utf8'), text);
  }
  // A symlink to a file with a secret: refused without reading it; the secret is nowhere.
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'root:$6$supersecrethash:19000:0:99999:7:::\n');
  symlinkSync(secret, join(ctl, 'new'));
  await rejectedNow(/a symbolic link, not a regular file/);
  // Garbage that is not JSON: where it fails, not what it says.
  writeRelease(ctl, null, 'PASSWORD=hunter2 and more text\n');
  await rejectedNow(/invalid JSON/);
  assert.doesNotMatch(d.stderr + readFileSync(join(ctl, 'last_error'), 'utf8'), /supersecret|hunter2/);
  assert.equal((await d.state()).release?.version, 1);
  assert.equal((await d.stop()).code, 0);
});

// ---- 11. unread replies: bounded per client, memory returned once the clients go -------------

test('11: 40 clients that never read their replies: bounded while they stay, memory returned after they go', async () => {
  const m = startMaster(['-n', '4', '-m', '0', '--', 'sleep', '1000']);
  await m.ready(4);
  await sleep(3000); // past the start-up compaction
  const rss0 = statusKb(m.pid, 'VmRSS')!;
  const clients = await Promise.all(Array.from({ length: 40 }, () => connectUnix(m.sockPath)));
  const request = '{"command":"state"}\n'.repeat(1500);
  for (const c of clients) {
    c.on('error', () => {});
    c.pause(); // never read
    c.write(request);
  }
  let peak = 0;
  try {
    await until('every non-reading client dropped', () => (m.stderr.match(/dropping a client that does not read its replies/g) ?? []).length === clients.length, 60_000, 100);
    peak = statusKb(m.pid, 'VmRSS')!;
  } finally {
    for (const c of clients) c.destroy();
  }
  // The clients are gone: 2 s after the last one the master compacts (a full GC, malloc_trim).
  const [, n] = await m.waitLog(/control: (\d+) client\(s\) that had much output built or queued for them are gone; memory compacted \(RSS [\d.]+ -> [\d.]+ MiB\)/, 15_000);
  assert.equal(Number(n), clients.length);
  await sleep(500);
  const after = statusKb(m.pid, 'VmRSS')!;
  const line = `master RSS ${(rss0 / 1024).toFixed(1)} MiB before, ${(peak / 1024).toFixed(1)} with 40 non-reading clients, ${(after / 1024).toFixed(1)} after they went`;
  if (process.env.TEST_VERBOSE) console.error(line);
  assert.ok(peak - rss0 < 80 * 1024, line);
  // V8 keeps its grown heap committed (heapUsed is back to ~5 MB, heapTotal ~40 MB), so not
  // all of it comes back; what garbage and freed buffers held does (unfixed: 0-3 MiB of it,
  // fixed 4-14 MiB on this machine; not asserted: a shared machine's RSS is noisy).
  assert.ok(after <= peak, line);
  assert.match((await m.ctl('status'))[0]!.message, /workers: 4 up/);
  assert.equal((await m.stop()).code, 0);
});
