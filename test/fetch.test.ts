/**
 * --fetch, black-box: the real master polls a real loopback HTTP server (node:http) or a
 * file, installs new releases of its program and rolls them out; bad releases and failed
 * fetches never replace anything.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { arch } from 'node:process';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { alive, cleanupAll, startMaster, tempDir, until } from './harness.js';

const servers = new Set<http.Server>();
afterEach(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  servers.clear();
  assert.deepEqual(await cleanupAll(), []);
});

/** A release: records "VERSION PID" in $OUT, then serves (sleeps); `crash` exits 1 at once instead. */
function release(version: string, crash = false): Buffer {
  return Buffer.from(`#!/bin/sh\necho "${version} $$" >> "$OUT"\n${crash ? 'exit 1' : 'exec sleep 600'}\n`);
}

function versions(out: string): string[] {
  try {
    return readFileSync(out, 'utf8').trim().split('\n').map((l) => l.split(' ')[0] as string);
  } catch {
    return [];
  }
}

type Mode = 'ok' | 'error500' | 'truncate';

/** A loopback release server: HEAD and GET of any path serve `body` with an ETag (its hash). */
async function releaseServer(body: Buffer) {
  const st = { body, mode: 'ok' as Mode, heads: 0, gets: 0, etagSalt: '' };
  const server = http.createServer((req, res) => {
    if (req.method === 'HEAD') st.heads += 1;
    else st.gets += 1;
    if (st.mode === 'error500') {
      res.writeHead(500).end('no');
      return;
    }
    const etag = `"${st.etagSalt}${createHash('sha256').update(st.body).digest('hex').slice(0, 16)}"`;
    res.writeHead(200, { etag, 'content-length': st.body.length, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') return res.end();
    if (st.mode === 'truncate') {
      // Half of it, then the connection goes away.
      res.write(st.body.subarray(0, st.body.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(st.body);
  });
  servers.add(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/releases/app`;
  return { st, url };
}

/** An ELF header for another machine than this one. */
function foreignElf(): Buffer {
  const b = Buffer.alloc(128);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // 64-bit
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(arch === 'arm64' ? 62 : 183, 18); // x86-64 on arm64, AArch64 elsewhere
  return b;
}

const tempFiles = (dir: string) => readdirSync(dir).filter((n) => n.includes('.fetch.'));

test('--fetch over HTTP: the same release is left alone, a new one installed and rolled out, a failing one put back and not retried', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  writeFileSync(app, release('v1'), { mode: 0o755 });
  const { st, url } = await releaseServer(release('v1'));
  const m = startMaster(['--fetch', url, '--fetch-interval', '0.1', '-m', '0.2', '-r', '1', '-s', '0.1', '--', app], {
    dir,
    env: { OUT: out },
  });
  const [w1] = await m.ready(1);
  // The first poll downloads once (the program's hash decides: the same); then HEAD only.
  await until('several polls', () => st.heads >= 5);
  assert.equal(st.gets, 1, 'one download, then HEAD requests only');
  assert.deepEqual(versions(out), ['v1']);

  // v2 appears: installed, the old program kept, rolled out.
  st.body = release('v2');
  await m.waitLog(/--fetch: installed release sha256 [0-9a-f]{12} \(\d+ bytes\) from \S+ as \S+app \(the previous one kept as \S+app\.previous\); upgrading/);
  await m.waitLog(/upgrade done/);
  await until('the v2 worker', () => versions(out).at(-1) === 'v2');
  await until('the v1 worker to exit', () => !alive(w1!.pid));
  assert.deepEqual(readFileSync(app), release('v2'));
  assert.deepEqual(readFileSync(`${app}.previous`), release('v1'));
  const [w2] = await m.ready(1);

  // v3 crashes at start: the upgrade fails, v2 goes back on disk, v3 is not fetched again.
  st.body = release('v3', true);
  await m.waitLog(/release sha256 [0-9a-f]{12} failed its upgrade \(.*\); \S+app is the previous release again/, 20_000);
  assert.deepEqual(readFileSync(app), release('v2'), 'the previous program is back');
  const gets = st.gets;
  const heads = st.heads;
  await until('more polls', () => st.heads >= heads + 5);
  assert.equal(st.gets, gets, 'the failed release is not downloaded again');
  const [still] = await m.ready(1);
  assert.equal(still!.pid, w2!.pid, 'the v2 worker kept serving');

  // v4: a new release is tried again.
  st.body = release('v4');
  await until('the v4 worker', () => versions(out).at(-1) === 'v4', 20_000);
  await m.ready(1);
  assert.deepEqual(readFileSync(app), release('v4'));
  assert.deepEqual(tempFiles(dir), []);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--fetch: a 500, a cut-off download, a foreign ELF and a release too large replace nothing; the next good one is installed', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  writeFileSync(app, release('v1'), { mode: 0o755 });
  const { st, url } = await releaseServer(release('v1'));
  st.mode = 'error500';
  const m = startMaster(
    ['--fetch', url, '--fetch-interval', '0.1', '--fetch-max-size', '1K', '-m', '0.2', '--', app],
    { dir, env: { OUT: out } },
  );
  await m.ready(1);
  await m.waitLog(/WARN: --fetch: HEAD \S+ HTTP 500 Internal Server Error; retrying in 0\.2s/);

  st.mode = 'truncate';
  st.body = release('v2-cut');
  await m.waitLog(/WARN: --fetch: GET \S+: cut off after \d+ bytes .*; retrying in/);

  st.mode = 'ok';
  st.body = foreignElf();
  await m.waitLog(/WARN: --fetch \S+: not installing release sha256 [0-9a-f]{12} \(128 bytes\): it is an ELF executable for (AArch64 183|x86-64 62); this machine is/);

  st.body = Buffer.concat([release('v2-big'), Buffer.alloc(2048, 0x23)]);
  await m.waitLog(/WARN: --fetch \S+: not installing it: too large: \d+ bytes, more than the limit of 1024 \(--fetch-max-size\)/);
  assert.deepEqual(readFileSync(app), release('v1'), 'nothing replaced the program');
  assert.deepEqual(versions(out), ['v1']);
  assert.deepEqual(tempFiles(dir), []);

  st.body = release('v2');
  await until('the v2 worker', () => versions(out).at(-1) === 'v2', 20_000);
  await m.ready(1);
  assert.equal(m.exited, null);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--fetch file://: a release copied into place is installed and rolled out', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  const src = join(dir, 'incoming');
  writeFileSync(app, release('v1'), { mode: 0o755 });
  writeFileSync(src, release('v1'));
  const m = startMaster(['--fetch', `file://${src}`, '--fetch-interval', '0.1', '-m', '0.2', '--', app], { dir, env: { OUT: out } });
  const [w1] = await m.ready(1);
  writeFileSync(`${src}.tmp`, release('v2'));
  renameSync(`${src}.tmp`, src);
  await until('the v2 worker', () => versions(out).at(-1) === 'v2', 20_000);
  await until('the v1 worker to exit', () => !alive(w1!.pid));
  assert.deepEqual(readFileSync(app), release('v2'));
  assert.deepEqual(readFileSync(`${app}.previous`), release('v1'));
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--fetch: an unreachable server is a warning, retried with backoff, never fatal', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  writeFileSync(app, release('v1'), { mode: 0o755 });
  // A port that was just free: nothing listens there.
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const m = startMaster(['-v', '--fetch', `http://127.0.0.1:${port}/app`, '--fetch-interval', '0.1', '-m', '0.2', '--', app], {
    dir,
    env: { OUT: join(dir, 'out') },
  });
  await m.ready(1);
  await m.waitLog(/WARN: --fetch: HEAD \S+ failed: .*ECONNREFUSED.*; retrying in 0\.2s/);
  // Repeated as is: not warned again (a debug line), and the waits double.
  await m.waitLog(/DEBUG: --fetch: HEAD \S+ failed: .*; retrying in 0\.8s/);
  const waits = [...m.stderr.matchAll(/--fetch: HEAD \S+ failed: .*; retrying in ([\d.]+)s/g)].map((x) => Number(x[1]));
  assert.deepEqual(waits.slice(0, 3), [0.2, 0.4, 0.8]);
  assert.equal(m.stderr.match(/WARN: --fetch: HEAD/g)?.length, 1, m.stderr);
  assert.equal(m.exited, null);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--fetch over HTTPS: an untrusted certificate is a warning; trusted (NODE_EXTRA_CA_CERTS), the release is installed', async () => {
  const dir = tempDir();
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
  let body = release('v2');
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    res.writeHead(200, { etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`, 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  servers.add(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/app`;

  const untrusted = tempDir();
  writeFileSync(join(untrusted, 'app'), release('v1'), { mode: 0o755 });
  const m1 = startMaster(['--fetch', url, '--fetch-interval', '0.1', '-m', '0.2', '--', join(untrusted, 'app')], {
    dir: untrusted,
    env: { OUT: join(untrusted, 'out') },
  });
  await m1.ready(1);
  await m1.waitLog(/WARN: --fetch: HEAD \S+ failed: .*(self.signed|SELF_SIGNED).*; retrying in/i);
  assert.deepEqual(readFileSync(join(untrusted, 'app')), release('v1'));
  assert.deepEqual(await m1.stop(), { code: 0, signal: null });

  const app = join(dir, 'app');
  const out = join(dir, 'out');
  writeFileSync(app, release('v1'), { mode: 0o755 });
  const m2 = startMaster(['--fetch', url, '--fetch-interval', '0.1', '-m', '0.2', '--', app], {
    dir,
    env: { OUT: out, NODE_EXTRA_CA_CERTS: cert },
  });
  await until('the v2 worker', () => versions(out).at(-1) === 'v2', 20_000);
  await m2.ready(1);
  body = release('v3');
  await until('the v3 worker', () => versions(out).at(-1) === 'v3', 20_000);
  await m2.ready(1);
  assert.deepEqual(await m2.stop(), { code: 0, signal: null });
});

test('--fetch: a release whose worker misses its ACK fails the upgrade; the previous program is put back', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  // Manual ACK mode: a release ACKs (a JSON line on the control socket, sent by python3) or, "silent", never does.
  const ack = `python3 -c 'import json, os, socket; s = socket.socket(socket.AF_UNIX); s.connect(os.environ["EINHORN_SOCK_PATH"]); ` +
    `s.sendall((json.dumps({"command": "worker:ack", "pid": os.getppid()}) + "\\n").encode()); s.recv(4096)'\n`;
  const acking = (version: string, silent = false) =>
    Buffer.from(`#!/bin/sh\necho "${version} $$" >> "$OUT"\n${silent ? '' : ack}exec sleep 600\n`);
  writeFileSync(app, acking('v1'), { mode: 0o755 });
  const { st, url } = await releaseServer(acking('v1'));
  const m = startMaster(['--fetch', url, '--fetch-interval', '0.1', '-m', 'manual', '--ack-timeout', '3', '-r', '1', '-s', '0.1', '-t', '2', '--', app], {
    dir,
    env: { OUT: out },
  });
  const [w1] = await m.ready(1);
  st.body = acking('v2', true);
  await m.waitLog(/did not ACK within 3s/, 20_000);
  await m.waitLog(/release sha256 [0-9a-f]{12} failed its upgrade \(Upgrade to generation \d+ failed: .*did not ack.*\); \S+app is the previous release again/, 20_000);
  assert.deepEqual(readFileSync(app), acking('v1'));
  const [still] = await m.ready(1);
  assert.equal(still!.pid, w1!.pid);
  assert.deepEqual(tempFiles(dir), []);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});

test('--fetch: a release that failed its upgrade is not fetched or installed again after a reload (the memory is in the reload snapshot)', async () => {
  const dir = tempDir();
  const app = join(dir, 'app');
  const out = join(dir, 'out');
  writeFileSync(app, release('v1'), { mode: 0o755 });
  const { st, url } = await releaseServer(release('v2', true));
  const m = startMaster(['--fetch', url, '--fetch-interval', '0.1', '-m', '0.2', '-r', '1', '-s', '0.1', '--', app], {
    dir,
    env: { OUT: out },
  });
  await m.waitLog(/release sha256 [0-9a-f]{12} failed its upgrade \(.*\); \S+app is the previous release again/, 20_000);
  assert.deepEqual(readFileSync(app), release('v1'));
  const [w1] = await m.ready(1);
  const installs = () => (m.stderr.match(/--fetch: installed release [^\n]*; upgrading\n/g) ?? []).length;
  assert.equal(installs(), 1);

  for (let i = 1; i <= 2; i++) {
    const replies = await m.ctl('reload');
    assert.match(replies.at(-1)!.message, new RegExp(`^Reload done: .*\\(reload ${i}\\), 1 worker adopted$`), JSON.stringify(replies));
    const gets = st.gets;
    const heads = st.heads;
    // The new image polls: HEAD only (the content last seen), never the failed release again.
    await until('polls of the new image', () => st.heads >= heads + 5);
    assert.equal(st.gets, gets, `reload ${i}: the failed release is not downloaded again`);
  }
  assert.equal(installs(), 1, 'the failed release is not installed again');
  assert.deepEqual(readFileSync(app), release('v1'));
  const [still] = await m.ready(1);
  assert.equal(still!.pid, w1!.pid, 'the v1 worker kept serving');

  // The same bad bytes under another key (the server changes its validators): downloaded, recognized by their hash, refused.
  const gets = st.gets;
    st.etagSalt = 'x';
  await until('the download of the renamed content', () => st.gets > gets);
  await m.waitLog(/--fetch \S+: still release sha256 [0-9a-f]{12}, which failed before; waiting for another/);
  assert.equal(installs(), 1);

  // A good release after the reloads: installed.
  st.body = release('v3');
  await until('the v3 worker', () => versions(out).at(-1) === 'v3', 20_000);
  assert.equal(installs(), 2);
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
});
