/**
 * The worker side of einhorn's protocol, for Node children of einhyrningsins
 * (or of einhorn): find the inherited sockets, ACK, and drain gracefully.
 *
 * ```js
 * import http from 'node:http';
 * import { sockets, ack, gracefulDrain } from 'einhyrningsins/worker';
 * const server = http.createServer(handler);
 * gracefulDrain(server);                       // SIGUSR2: finish, close, exit
 * server.listen({ fd: sockets()[0] }, () => ack());
 * ```
 */
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, Socket, createConnection } from 'node:net';

export class WorkerError extends Error {
  override name = 'WorkerError';
}

type Env = NodeJS.ProcessEnv;

/** True when this process is a direct child of an einhorn-compatible master. */
export function isWorker(env: Env = process.env): boolean {
  return env.EINHORN_MASTER_PID !== undefined && env.EINHORN_MASTER_PID === String(process.ppid);
}

/** Throws a WorkerError saying why this process is not a worker (einhorn's messages). */
export function ensureWorker(env: Env = process.env): void {
  const master = env.EINHORN_MASTER_PID;
  if (master === undefined) {
    throw new WorkerError('No EINHORN_MASTER_PID environment variable set. Are you running your process under einhyrningsins or einhorn?');
  }
  if (master !== String(process.ppid)) {
    throw new WorkerError(
      `EINHORN_MASTER_PID environment variable is "${master}", but my parent's pid is ${process.ppid}. ` +
        'This probably means that I am a subprocess of a worker, but am not one myself.',
    );
  }
}

/** EINHORN_CHILD_INDEX as a number, or null. */
export function childIndex(env: Env = process.env): number | null {
  const v = env.EINHORN_CHILD_INDEX;
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}

/**
 * The inherited listening fds, in -b order, ready for `server.listen({ fd })`.
 * Reads EINHORN_FD_COUNT / EINHORN_FD_<n>, or einhorn's legacy EINHORN_FDS.
 */
export function sockets(env: Env = process.env): number[] {
  const count = env.EINHORN_FD_COUNT;
  if (count !== undefined) {
    if (!/^\d+$/.test(count)) throw new WorkerError(`EINHORN_FD_COUNT is not a number: "${count}"`);
    const fds: number[] = [];
    for (let n = 0; n < Number(count); n++) {
      const v = env[`EINHORN_FD_${n}`];
      if (v === undefined || !/^\d+$/.test(v)) throw new WorkerError(`No valid EINHORN_FD_${n} provided in environment`);
      fds.push(Number(v));
    }
    return fds;
  }
  const legacy = env.EINHORN_FDS;
  if (legacy === undefined || legacy.trim() === '') return [];
  const words = legacy.trim().split(/\s+/);
  if (words.some((w) => !/^\d+$/.test(w))) throw new WorkerError(`EINHORN_FDS is not a list of fd numbers: "${legacy}"`);
  return words.map(Number);
}

export interface AckOptions {
  /** Control socket path (default EINHORN_SOCK_PATH). */
  path?: string;
  /** An already-connected control socket fd (default EINHORN_SOCK_FD, einhorn's -g). */
  fd?: number;
  /** The pid to ACK (default this process). */
  pid?: number;
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number;
  env?: Env;
}

/**
 * Tell the master this worker is ready: `{"command":"worker:ack","pid":PID}`.
 * Resolves once the line is written. Rejects with a WorkerError when this is
 * not a worker or the master cannot be reached.
 */
export async function ack(opts: AckOptions = {}): Promise<void> {
  const env = opts.env ?? process.env;
  ensureWorker(env);
  await sendLine(JSON.stringify({ command: 'worker:ack', pid: opts.pid ?? process.pid }) + '\n', opts, env);
}

/** Record a ping (visible in `state`), einhorn's worker:ping. */
export async function ping(requestId: string, opts: AckOptions = {}): Promise<void> {
  const env = opts.env ?? process.env;
  ensureWorker(env);
  await sendLine(JSON.stringify({ command: 'worker:ping', pid: opts.pid ?? process.pid, request_id: requestId }) + '\n', opts, env);
}

async function sendLine(line: string, opts: AckOptions, env: Env): Promise<void> {
  const fdText = opts.fd !== undefined ? String(opts.fd) : env.EINHORN_SOCK_FD;
  const timeoutMs = opts.timeoutMs ?? 5000;
  let sock: Socket;
  if (fdText !== undefined && /^\d+$/.test(fdText) && opts.path === undefined) {
    sock = new Socket({ fd: Number(fdText), readable: false, writable: true });
  } else {
    const path = opts.path ?? env.EINHORN_SOCK_PATH;
    if (!path) throw new WorkerError('No EINHORN_SOCK_PATH provided in environment');
    sock = createConnection(path);
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new WorkerError(`ACK timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(new WorkerError(`cannot reach the master: ${err.message}`));
    });
    sock.end(line, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export interface DrainOptions {
  /** The signal that starts the drain (default SIGUSR2); null: call drain() yourself. */
  signal?: NodeJS.Signals | null;
  /** An idle keep-alive connection is closed after this long without a new request (default 1000 ms). */
  idleGraceMs?: number;
  /** Exit anyway after this long (default 30000 ms). */
  hardExitMs?: number;
  /** Called when every connection is closed; default: process.exit(0). */
  onDrained?: () => void;
}

export interface Drainer {
  /** Start draining (idempotent). */
  drain(): void;
  readonly draining: boolean;
  /** Open connections right now. */
  readonly connections: number;
}

/**
 * Graceful drain for a Node HTTP server: stop accepting, answer every
 * in-flight and next request with `Connection: close`, close keep-alive
 * connections that stay idle for `idleGraceMs`, and finish (exit) once none
 * is left. A plain `server.close()` drops requests that are already on the
 * wire of an idle keep-alive connection; this does not.
 */
export function gracefulDrain(server: HttpServer, opts: DrainOptions = {}): Drainer {
  const idleGraceMs = opts.idleGraceMs ?? 1000;
  const hardExitMs = opts.hardExitMs ?? 30_000;
  const onDrained = opts.onDrained ?? (() => process.exit(0));
  // Steady state costs one Set entry per connection and nothing per request: requests are
  // looked at only once the drain has begun (a socket's current response is Node's
  // `socket._httpMessage`, set from the moment a request is parsed until its response ends).
  const conns = new Set<Socket>();
  const idle = new Map<Socket, NodeJS.Timeout>();
  let draining = false;
  let finished = false;

  const busy = (sock: Socket) => (sock as Socket & { _httpMessage?: ServerResponse | null })._httpMessage != null;
  const maybeDone = () => {
    if (draining && !finished && conns.size === 0) {
      finished = true;
      onDrained();
    }
  };
  const clearIdle = (sock: Socket) => {
    const t = idle.get(sock);
    if (t) clearTimeout(t);
    idle.delete(sock);
  };
  /** Close the connection if it stays without a request for idleGraceMs. */
  const armIdle = (sock: Socket) => {
    if (idle.has(sock) || sock.destroyed) return;
    const t = setTimeout(() => {
      idle.delete(sock);
      if (busy(sock)) return; // a request arrived: its response carries Connection: close
      sock.destroy();
    }, idleGraceMs);
    t.unref();
    idle.set(sock, t);
  };
  const closeAfter = (sock: Socket, res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('Connection', 'close');
    res.once('finish', () => armIdle(sock));
  };

  server.on('connection', (sock: Socket) => {
    conns.add(sock);
    sock.once('close', () => {
      clearIdle(sock);
      conns.delete(sock);
      maybeDone();
    });
    if (draining) armIdle(sock);
  });
  // Installed at drain time, before the application's handler, so that even a synchronous
  // response carries Connection: close.
  const onRequestWhileDraining = (req: IncomingMessage, res: ServerResponse) => {
    clearIdle(req.socket);
    closeAfter(req.socket, res);
  };

  const drainer: Drainer = {
    drain() {
      if (draining) return;
      draining = true;
      // Stop accepting, without http.Server#close's sweep of "idle" sockets.
      NetServer.prototype.close.call(server);
      server.prependListener('request', onRequestWhileDraining);
      for (const sock of conns) {
        const res = (sock as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
        if (res) closeAfter(sock, res);
        else armIdle(sock);
      }
      setTimeout(() => {
        if (!finished) {
          finished = true;
          for (const sock of conns) sock.destroy();
          onDrained();
        }
      }, hardExitMs).unref();
      // Keep the process alive until drained even if nothing else does.
      const keep = setInterval(() => {
        if (finished) clearInterval(keep);
      }, 100);
      maybeDone();
    },
    get draining() {
      return draining;
    },
    get connections() {
      return conns.size;
    },
  };
  if (opts.signal !== null) process.on(opts.signal ?? 'SIGUSR2', () => drainer.drain());
  return drainer;
}
