/**
 * The worker library: sockets from the environment, the worker checks, ACK
 * and ping on a real unix socket (by path and by an inherited fd), and the
 * graceful drain of an HTTP server under keep-alive load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkerError, ack, childIndex, ensureWorker, gracefulDrain, isWorker, ping, sockets } from '../src/worker.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The compiled worker module (this file runs from dist/test/). */
const WORKER_JS = join(here, '..', 'src', 'worker.js');

/** An environment in which this process is a worker of its parent. */
function workerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { EINHORN_MASTER_PID: String(process.ppid), ...extra };
}

async function until<T>(what: string, fn: () => T, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('sockets() reads EINHORN_FD_COUNT / EINHORN_FD_<n> in order', () => {
  assert.deepEqual(sockets({ EINHORN_FD_COUNT: '2', EINHORN_FD_0: '3', EINHORN_FD_1: '4' }), [3, 4]);
  assert.deepEqual(sockets({ EINHORN_FD_COUNT: '1', EINHORN_FD_0: '7', EINHORN_FDS: '9 10' }), [7], 'FD_COUNT wins');
  assert.deepEqual(sockets({ EINHORN_FD_COUNT: '0' }), []);
  assert.deepEqual(sockets({}), []);
});

test("sockets() falls back to einhorn's legacy EINHORN_FDS", () => {
  assert.deepEqual(sockets({ EINHORN_FDS: '3 4  5' }), [3, 4, 5]);
  assert.deepEqual(sockets({ EINHORN_FDS: ' 6 ' }), [6]);
  assert.deepEqual(sockets({ EINHORN_FDS: '' }), []);
});

test('sockets() rejects bad values with a WorkerError', () => {
  const bad: NodeJS.ProcessEnv[] = [
    { EINHORN_FD_COUNT: 'two' },
    { EINHORN_FD_COUNT: '-1' },
    { EINHORN_FD_COUNT: '1.5', EINHORN_FD_0: '3' },
    { EINHORN_FD_COUNT: '' },
    { EINHORN_FD_COUNT: '2', EINHORN_FD_0: '3' },
    { EINHORN_FD_COUNT: '1', EINHORN_FD_0: 'three' },
    { EINHORN_FD_COUNT: '1', EINHORN_FD_0: '-3' },
    { EINHORN_FD_COUNT: '1', EINHORN_FD_0: '' },
    { EINHORN_FDS: '3 four' },
    { EINHORN_FDS: '3,4' },
    { EINHORN_FDS: '-3' },
  ];
  for (const env of bad) {
    assert.throws(() => sockets(env), WorkerError, JSON.stringify(env));
  }
  assert.throws(() => sockets({ EINHORN_FD_COUNT: '2', EINHORN_FD_0: '3' }), /EINHORN_FD_1/);
});

test('isWorker / ensureWorker compare EINHORN_MASTER_PID with the parent pid, with einhorn\'s messages', () => {
  assert.equal(isWorker(workerEnv()), true);
  assert.doesNotThrow(() => ensureWorker(workerEnv()));

  assert.equal(isWorker({}), false);
  assert.throws(() => ensureWorker({}), (err: Error) => {
    assert.ok(err instanceof WorkerError);
    assert.match(err.message, /^No EINHORN_MASTER_PID environment variable set\. Are you running your process under /);
    return true;
  });

  const other = String(process.ppid + 1);
  assert.equal(isWorker({ EINHORN_MASTER_PID: other }), false);
  assert.throws(() => ensureWorker({ EINHORN_MASTER_PID: other }), (err: Error) => {
    assert.ok(err instanceof WorkerError);
    assert.equal(
      err.message.split('. ')[0],
      `EINHORN_MASTER_PID environment variable is "${other}", but my parent's pid is ${process.ppid}`,
    );
    assert.match(err.message, /This probably means that I am a subprocess of a worker, but am not one myself\.$/);
    return true;
  });
});

test('childIndex() is EINHORN_CHILD_INDEX as a number, or null', () => {
  assert.equal(childIndex({ EINHORN_CHILD_INDEX: '3' }), 3);
  assert.equal(childIndex({ EINHORN_CHILD_INDEX: 'x' }), null);
  assert.equal(childIndex({}), null);
});

/** A unix server that records, per connection, everything received until EOF. */
async function recorder(): Promise<{ path: string; server: Server; received: string[]; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ctl-worker-test-'));
  const path = join(dir, 'ctl.sock');
  const received: string[] = [];
  const open = new Set<Socket>();
  const server = createServer((s) => {
    open.add(s);
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => {
      received.push(data);
      s.end();
    });
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    server,
    received,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('ack() by path sends exactly {"command":"worker:ack","pid":N} and a newline, then closes', async () => {
  const rec = await recorder();
  try {
    await ack({ env: workerEnv({ EINHORN_SOCK_PATH: rec.path }) });
    await until('the ACK to arrive', () => rec.received.length === 1);
    assert.equal(rec.received[0], `{"command":"worker:ack","pid":${process.pid}}\n`);

    await ack({ path: rec.path, pid: 4242, env: workerEnv() });
    await until('the second ACK', () => rec.received.length === 2);
    assert.equal(rec.received[1], '{"command":"worker:ack","pid":4242}\n');

    await ping('req-7', { env: workerEnv({ EINHORN_SOCK_PATH: rec.path }) });
    await until('the ping', () => rec.received.length === 3);
    assert.equal(rec.received[2], `{"command":"worker:ping","pid":${process.pid},"request_id":"req-7"}\n`);
  } finally {
    await rec.close();
  }
});

test('ack() on an inherited, already connected control fd (EINHORN_SOCK_FD, einhorn -g)', { timeout: 30_000 }, async () => {
  const rec = await recorder();
  const conn = createConnection(rec.path);
  try {
    await new Promise<void>((r, j) => {
      conn.once('connect', () => r());
      conn.once('error', j);
    });
    // The child gets the connected socket as fd 3 and this process as its "master".
    const script = `import(${JSON.stringify(WORKER_JS)}).then((w) => w.ack()).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], {
      stdio: ['ignore', 'ignore', 'pipe', conn],
      env: { ...process.env, EINHORN_MASTER_PID: String(process.pid), EINHORN_SOCK_FD: '3', EINHORN_SOCK_PATH: '' },
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    let exited: { code: number | null } | null = null;
    child.once('close', (code) => (exited = { code }));
    const { code } = await until('the fd-ACK child to exit', () => exited, 20_000);
    assert.equal(code, 0, stderr);
    conn.end(); // our copy of the socket: now the server sees EOF
    await until('the ACK over the inherited fd', () => rec.received.length === 1);
    assert.equal(rec.received[0], `{"command":"worker:ack","pid":${child.pid}}\n`);
  } finally {
    conn.destroy();
    await rec.close();
  }
});

test('ack() fails with a WorkerError outside a master, without a socket, or when the master is gone', async () => {
  await assert.rejects(ack({ env: {} }), (e: Error) => e instanceof WorkerError && /No EINHORN_MASTER_PID/.test(e.message));
  await assert.rejects(ack({ env: workerEnv() }), (e: Error) => e instanceof WorkerError && /EINHORN_SOCK_PATH/.test(e.message));
  const dir = mkdtempSync(join(tmpdir(), 'ctl-worker-test-'));
  try {
    await assert.rejects(
      ack({ env: workerEnv({ EINHORN_SOCK_PATH: join(dir, 'gone.sock') }) }),
      (e: Error) => e instanceof WorkerError && /cannot reach the master/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gracefulDrain: under keep-alive load, drain() loses no request, answers with Connection: close, stops accepting', { timeout: 60_000 }, async () => {
  const server = http.createServer((_req, res) => {
    // Answer a little later, so some requests are in flight when the drain starts.
    setTimeout(() => res.end('ok\n'), Math.floor(Math.random() * 4));
  });
  let drained = 0;
  const serverConns = new Set<Socket>();
  server.on('connection', (s) => serverConns.add(s));
  const drainer = gracefulDrain(server, { signal: null, onDrained: () => (drained += 1) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  const clients = 20;
  const stats = { ok: 0, failed: [] as string[], beforeDrain: 0, closeReplies: 0, perClient: new Array<number>(clients).fill(0) };
  // Each client stops when told Connection: close; this only bounds a broken drain.
  const safetyDeadline = Date.now() + 30_000;

  const get = (agent: http.Agent) =>
    new Promise<{ status: number; connection: string; body: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: String(res.headers.connection ?? ''), body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    });

  const client = async (i: number) => {
    // One keep-alive connection per client, requests one after the other.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (;;) {
        if (Date.now() > safetyDeadline) {
          stats.failed.push(`client ${i} was never told Connection: close`);
          break;
        }
        try {
          const r = await get(agent);
          if (r.status !== 200 || r.body !== 'ok\n') stats.failed.push(`status ${r.status} body ${JSON.stringify(r.body)}`);
          else stats.ok += 1;
          stats.perClient[i] = (stats.perClient[i] ?? 0) + 1;
          if (!drainer.draining) stats.beforeDrain += 1;
          if (r.connection.toLowerCase() === 'close') {
            stats.closeReplies += 1;
            break; // the server said so: this client is done
          }
        } catch (err) {
          stats.failed.push(`${(err as Error).message} (${drainer.draining ? 'after' : 'before'} the drain)`);
          break;
        }
      }
    } finally {
      agent.destroy();
    }
  };

  const started = Date.now();
  const load = Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  // Drain in the middle of the load: after ~0.75 s of it, once every client has been served a few times.
  await until('every client to be served', () => Date.now() - started >= 750 && stats.perClient.every((n) => n >= 3), 20_000);
  drainer.drain();
  drainer.drain(); // idempotent
  await load;

  assert.deepEqual(stats.failed, [], 'no failed request');
  assert.ok(stats.beforeDrain >= clients * 3);
  assert.ok(stats.ok > stats.beforeDrain, 'requests were answered during the drain');
  assert.equal(stats.closeReplies, clients, 'every client was told Connection: close');
  assert.ok(stats.ok > serverConns.size, `keep-alive was used (${stats.ok} requests on ${serverConns.size} connections)`);
  await until('onDrained', () => drained === 1);
  assert.equal(drainer.connections, 0);
  assert.equal(server.listening, false, 'the server stopped accepting');
  const refused = await new Promise<string>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  assert.equal(refused, 'ECONNREFUSED');
  assert.equal(drained, 1, 'onDrained is called once');
});

test('gracefulDrain: an idle keep-alive connection is closed after idleGraceMs; drain with none open finishes at once', async () => {
  const server = http.createServer((_req, res) => res.end('ok'));
  let drained = false;
  const drainer = gracefulDrain(server, { signal: null, idleGraceMs: 100, onDrained: () => (drained = true) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      }).on('error', reject);
    });
    assert.equal(drainer.connections, 1);
    drainer.drain();
    await until('the idle connection to be closed', () => drainer.connections === 0 && drained);
  } finally {
    agent.destroy();
  }

  const empty = http.createServer();
  let done = false;
  const d2 = gracefulDrain(empty, { signal: null, onDrained: () => (done = true) });
  await new Promise<void>((r) => empty.listen(0, '127.0.0.1', r));
  d2.drain();
  await until('drain of an idle server', () => done);
  assert.equal(empty.listening, false);
});
