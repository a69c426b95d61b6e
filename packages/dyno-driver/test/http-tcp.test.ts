/**
 * The --http listener's limits (as a control connection's): the idle timeout, one request
 * per connection, the head cap, its own connection pool with the idlest evicted, and the
 * token checked before anything is answered. On 127.0.0.1, a dynamic port, a short idle
 * timeout (the driver's is 60 s); waits for events, not for fixed times.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { Cleanup, Logger, type HttpRequest } from '@einhyrningsins/master';
import { HttpTcpServer, MAX_HTTP_CONNECTIONS } from '../src/minisv/http-tcp.js';

const TOKEN = 'k3Q9x0Zr7LmN2pV5sT8wY1bC4dF6gH0j';

async function open(idleMs: number) {
  const seen: HttpRequest[] = [];
  const logs: string[] = [];
  const log = new Logger(1, process.pid, (l) => logs.push(l), 'TEST');
  const cleanup = new Cleanup();
  const srv = await HttpTcpServer.open(
    { text: '127.0.0.1:0' },
    (req) => {
      seen.push(req);
      return { status: 200, body: 'done\n' };
    },
    createHash('sha256').update(TOKEN).digest(),
    log,
    cleanup,
    idleMs,
  );
  return { srv, seen, logs, cleanup };
}

/** Connect, send `data`, resolve with everything read until the server closes. */
function exchange(port: number, data: string | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    if (data !== null) s.write(data);
  });
}

test('--http listener: the token before anything; one request per connection; head cap; idle connections closed', async () => {
  const { srv, seen, cleanup } = await open(300);
  try {
    const port = srv.port;
    assert.ok(port > 0);
    const noToken = await exchange(port, 'GET /x/kill HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.match(noToken, /^HTTP\/1\.1 401 Unauthorized\r\n/);
    assert.match(noToken, /\r\nWWW-Authenticate: Bearer realm="einhyrningsins-dyno"\r\n/);
    assert.equal(seen.length, 0, 'nothing reached the API');
    const ok = await exchange(port, `GET / HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\nGET /second HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    assert.match(ok, /^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n\r\ndone\n$/);
    assert.deepEqual(seen.map((r) => r.path), ['/'], 'one request per connection: the second one is not read');
    const huge = await exchange(port, `GET / HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 413 /);
    // Not HTTP at all: it reads as a request line without the token: 401, nothing done.
    assert.match(await exchange(port, '{"command":"die"}\r\n\r\n'), /^HTTP\/1\.1 401 /);
    // Silent, then half a request: closed by the idle timeout with nothing sent.
    assert.equal(await exchange(port, null), '');
    assert.equal(await exchange(port, 'GET / HTTP/1.1\r\nAuthoriz'), '');
    assert.equal(seen.length, 1);
  } finally {
    cleanup.run();
  }
});

test('--http listener: its own pool of connections; at the limit the one idle longest is closed for a new one', async () => {
  const { srv, seen, logs, cleanup } = await open(60_000);
  const socks: Socket[] = [];
  try {
    const closed: number[] = [];
    for (let i = 0; i < MAX_HTTP_CONNECTIONS; i++) {
      const s = connect(srv.port, '127.0.0.1');
      s.on('close', () => closed.push(i));
      s.on('error', () => undefined);
      socks.push(s);
      await new Promise<void>((r) => s.once('connect', () => r()));
    }
    // Wait until the server holds them all.
    for (let i = 0; i < 200 && srv.connections < MAX_HTTP_CONNECTIONS; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.connections, MAX_HTTP_CONNECTIONS);
    const reply = await exchange(srv.port, `GET / HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 200 /);
    for (let i = 0; i < 200 && closed.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(closed, [0], 'the oldest idle connection made room');
    assert.equal(seen.length, 1);
    assert.ok(logs.some((l) => /connections at the limit \(128\): closing the one idle longest/.test(l)));
  } finally {
    for (const s of socks) s.destroy();
    cleanup.run();
  }
});
