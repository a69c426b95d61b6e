/**
 * Serving one control connection: request lines (einhorn's framing or JSON, each line
 * bounded) to the handler, or, when its first bytes are an HTTP request line, its one
 * HTTP request to the HTTP handler (the dyno driver's hsup API), under the same rules.
 */
import type { Socket } from 'node:net';
import { LineSplitter, parseRequest, type Request } from '@einhyrningsins/protocol';
import { monotonicMs } from './clock.js';
import { probe, probeStart } from './loop-probe.js';
import type { ControlConnection } from './control-connection.js';
import { HttpRequestReader, encodeHttpReply, type HttpReply, type HttpRequest } from './http-request.js';
import type { Logger } from './log.js';

/** Longest request line accepted, in bytes (real requests are under 200; parsing stays well under 0.1 s). */
export const MAX_LINE_BYTES = 16 * 1024;
export type RequestHandler = (conn: ControlConnection, req: Request) => void;

/**
 * Answers the one HTTP request of a connection whose first bytes are an HTTP request line
 * (`GET /`, `POST /`, ...) rather than an einhorn request. The connection stays the control
 * server's: the same idle timeout, eviction when full and per-client limits (head and body
 * size, one request, closed after the reply) as einhorn connections; see http-request.ts.
 */
export type HttpHandler = (req: HttpRequest) => HttpReply | Promise<HttpReply>;
export type { HttpReply, HttpRequest };

/** The first bytes of an HTTP/1.x request: a method and a space then `/`. */
const HTTP_START = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) \//;
const HTTP_PREFIX = /^[A-Z]{0,7}( \/?)?$/;

export function serve(
  socket: Socket,
  conn: ControlConnection,
  log: Logger,
  handle: RequestHandler,
  done: () => void,
  idleTimeoutMs: number,
  http?: HttpHandler,
  carried?: Buffer,
): void {
  const splitter = new LineSplitter({ maxLineLength: MAX_LINE_BYTES });
  let head: Buffer | null = http ? Buffer.alloc(0) : null;
  conn.unparsed = () => (head !== null ? Buffer.from(head) : splitter.pendingBytes());
  conn.onOverflow = (queued) =>
    log.warn(`control: dropping a client that does not read its replies (${Math.round(queued / 1024)} KiB queued; ${conn.describePeer()})`);
  if (idleTimeoutMs > 0) {
    socket.setTimeout(idleTimeoutMs);
    socket.on('timeout', () => {
      // Quiet for that long: close it unless a reply is still owed (an upgrade's stream).
      if (conn.idle) {
        log.debug(`control: closing a connection idle for ${idleTimeoutMs / 1000}s (${conn.describePeer()})`);
        conn.destroy();
      }
    });
  }
  const onData = (data: Buffer) => {
    conn.lastActive = monotonicMs();
    let chunk = data;
    if (head !== null && http) {
      // Until the first bytes tell: an HTTP request, or einhorn lines.
      head = Buffer.concat([head, data]);
      const text = head.subarray(0, 9).toString('latin1');
      if (HTTP_START.test(text)) {
        socket.off('data', onData);
        serveHttp(socket, conn, head, http, log);
        return;
      }
      if (HTTP_PREFIX.test(text) && head.length < 9 && !head.includes(10)) return;
      chunk = head;
      head = null;
    }
    for (const item of splitter.push(chunk)) {
      if (conn.closed) return;
      conn.expectReply();
      if ('error' in item) {
        log.warn(`control: dropped a request line of more than ${MAX_LINE_BYTES} bytes`);
        conn.send({ message: `Request too long (limit ${MAX_LINE_BYTES} bytes)`, error: true });
        continue;
      }
      const parsed = parseRequest(item.line);
      if (!parsed.ok) {
        log.warn(`control: bad request from ${conn.describePeer()}: ${parsed.detail ?? parsed.error}`);
        conn.send({ message: parsed.error, error: true });
        continue;
      }
      const t0 = probeStart();
      try {
        handle(conn, parsed.request);
        probe?.task(`request:${parsed.request.command}`, t0);
      } catch (err) {
        log.error(`control: error while processing '${parsed.request.command}': ${(err as Error).stack ?? err}`);
        conn.send(
          { message: `Error while processing command "${parsed.request.command}": ${(err as Error).message}`, error: true },
          parsed.request.id,
        );
      }
    }
  };
  socket.on('data', onData);
  // A reload's new image: first the bytes of a line the image before had read only in part.
  // (next tick: after the adoption is complete, before any byte read from the socket now).
  if (carried && carried.length > 0) process.nextTick(() => !conn.closed && onData(carried));
  socket.on('end', () => {
    // Half-closed by the client: finish our replies (also those still to come), then close.
    if (!conn.closed) conn.peerEnd();
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') log.debug(`control connection: ${err.message}`);
  });
  socket.on('close', () => {
    conn.closed = true;
    done();
  });
}

/**
 * A connection that may carry nothing but one HTTP request (the dyno driver's --http
 * TCP listener): the same reader, limits and idle timeout as an HTTP request on the
 * control socket; `http` decides (it checks the token).
 */
export function serveHttpOnly(socket: Socket, conn: ControlConnection, log: Logger, http: HttpHandler, done: () => void, idleTimeoutMs: number): void {
  if (idleTimeoutMs > 0) {
    socket.setTimeout(idleTimeoutMs);
    socket.on('timeout', () => {
      if (conn.idle) {
        log.debug(`http: closing a connection idle for ${idleTimeoutMs / 1000}s`);
        conn.destroy();
      }
    });
  }
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') log.debug(`http connection: ${err.message}`);
  });
  socket.on('close', () => {
    conn.closed = true;
    done();
  });
  serveHttp(socket, conn, Buffer.alloc(0), http, log);
}

/**
 * The HTTP request of a control connection: read under the shared limits, answered once,
 * and then nothing more is read (what a client sends after its request stays in the
 * kernel, bounded by the socket buffer, not in our memory). The connection stays counted,
 * idle (evictable) and under the idle timeout while its request is incomplete; a client
 * that hangs up before finishing it is closed at once.
 */
function serveHttp(socket: Socket, conn: ControlConnection, first: Buffer, http: HttpHandler, log: Logger): void {
  const reader = new HttpRequestReader();
  let answered = false;
  const answer = (reply: HttpReply) => {
    answered = true;
    socket.off('data', onData);
    socket.pause();
    conn.closed = true;
    if (socket.destroyed) return;
    // One request per connection: the reply, then close (the peer reads it after our close).
    socket.end(encodeHttpReply(reply));
    socket.once('finish', () => socket.destroy());
  };
  const onData = (data: Buffer) => {
    conn.lastActive = monotonicMs();
    const got = reader.push(data);
    if (got === null || answered) return;
    if ('error' in got) {
      log.warn(`control: refused an HTTP request from ${conn.describePeer()}: ${got.error.status} ${got.error.body.trim()}`);
      return answer(got.error);
    }
    const failed = (err: unknown): HttpReply => {
      log.error(`control: error while answering HTTP ${got.request.method} ${got.request.path}: ${(err as Error).stack ?? err}`);
      return { status: 500, body: `${(err as Error).message}\n` };
    };
    // Complete: owed its reply (not idle, not evicted) until it is answered.
    conn.expectReply();
    socket.off('data', onData);
    socket.pause();
    let reply: HttpReply | Promise<HttpReply>;
    try {
      reply = http(got.request);
    } catch (err) {
      reply = failed(err);
    }
    if (reply instanceof Promise) reply.then(answer, (err) => answer(failed(err)));
    else answer(reply);
  };
  socket.on('data', onData);
  socket.on('end', () => {
    // Hung up before its request was complete: it cannot be answered.
    if (!answered) conn.destroy();
  });
  onData(first);
}
