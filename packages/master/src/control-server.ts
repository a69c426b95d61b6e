import { lstatSync, statSync, chmodSync, unlinkSync } from 'node:fs';
import { Socket, createConnection, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { LineSplitter, encodeReply, parseRequest, type Request } from '@einhyrningsins/protocol';
import { StartupError } from './errors.js';
import { checkSocketDir } from './socket-dir.js';
import type { Logger } from './log.js';

/** Longest request line accepted, in bytes (real requests are under 200; parsing stays well under 0.1 s). */
export const MAX_LINE_BYTES = 16 * 1024;
/** Most control connections open at once; more are refused. */
export const MAX_CONNECTIONS = 512;
/** A client that does not read its replies is dropped past this much queued output. */
const MAX_PENDING_OUTPUT = 4 * 1024 * 1024;
/** sun_path is 108 bytes on Linux, NUL included. */
const MAX_UNIX_PATH = 107;

export interface ReplyFields {
  message: string;
  wait?: boolean;
  [extra: string]: unknown;
}

/** One client of the control socket. */
export class ControlConnection {
  private static nextId = 1;
  readonly id = ControlConnection.nextId++;
  closed = false;
  /** Requests read whose final reply (one without `wait`) has not been sent yet. */
  private owed = 0;
  /** The client half-closed: close once every owed reply is sent. */
  private peerEnded = false;

  constructor(private readonly socket: Socket) {}

  /** The connection's fd (for the hand-over across a reload), or null once closed. */
  get fd(): number | null {
    const fd = (this.socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
    return this.closed || typeof fd !== 'number' || fd < 0 ? null : fd;
  }

  /** Everything written has reached the kernel. */
  get flushed(): boolean {
    return this.socket.writableLength === 0;
  }

  /** A request line was read: it is owed one final reply. */
  expectReply(): void {
    this.owed += 1;
  }

  /** The client will send nothing more: finish the replies still owed (an upgrade's stream), then close. */
  peerEnd(): void {
    this.peerEnded = true;
    if (this.owed === 0) this.end();
  }

  /** Send one reply line; `requestId` is echoed when the request had an id. */
  send(reply: ReplyFields, requestId?: string | number): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    if (this.socket.writableLength > MAX_PENDING_OUTPUT) {
      this.socket.destroy();
      this.closed = true;
      return;
    }
    const out: Parameters<typeof encodeReply>[0] = { ...reply };
    if (requestId !== undefined) out.requestId = requestId;
    this.socket.write(encodeReply(out));
    if (reply.wait !== true) {
      this.owed = Math.max(0, this.owed - 1);
      if (this.peerEnded && this.owed === 0) this.end();
    }
  }

  /** Finish writing, then close (einhorn closes after worker:ack / worker:ping). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
  }
}

export type RequestHandler = (conn: ControlConnection, req: Request) => void;

/**
 * A connection whose first bytes are an HTTP request line (`GET /`, `POST /`,
 * ...) rather than an einhorn request; gets the socket and the bytes read so far.
 */
export type HttpHandler = (socket: Socket, head: Buffer) => void;

/** The first bytes of an HTTP/1.x request: a method and a space then `/`. */
const HTTP_START = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) \//;
const HTTP_PREFIX = /^[A-Z]{0,7}( \/?)?$/;

/**
 * Make `path` free for a new control socket: refuse when a live master
 * answers there or when it is not a socket; remove a stale socket file.
 */
async function claimPath(path: string, log: Logger): Promise<void> {
  const dir = dirname(path);
  let dst;
  try {
    dst = statSync(dir);
  } catch {
    throw new StartupError(`control socket directory does not exist: ${dir}`);
  }
  if (!dst.isDirectory()) throw new StartupError(`control socket directory is not a directory: ${dir}`);
  // Another user who can write to the directory could replace the socket: refuse unless the
  // sticky bit protects it (as on /tmp), and unless the directory is ours or root's.
  const uid = process.getuid?.() ?? 0;
  if (dst.uid !== uid && dst.uid !== 0) {
    throw new StartupError(`control socket directory ${dir} belongs to another user (uid ${dst.uid}); refusing`);
  }
  checkSocketDir(dir, dst, (m) => log.warn(m));
  if (Buffer.byteLength(path) > MAX_UNIX_PATH) {
    throw new StartupError(`control socket path is too long (${Buffer.byteLength(path)} bytes, at most ${MAX_UNIX_PATH}): ${path}`);
  }
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new StartupError(`${path} exists and is not a socket; refusing to replace it (pass -d to use another path)`);
  }
  const live = await new Promise<boolean | Error>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', (err: NodeJS.ErrnoException) => {
      c.destroy();
      resolve(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? false : err);
    });
  });
  if (live === true) {
    throw new StartupError(`another master is listening on the control socket ${path}; pass -d to use another path`);
  }
  if (live instanceof Error) throw new StartupError(`cannot check the control socket ${path}: ${live.message}`);
  log.info(`Removing stale control socket ${path}`);
  try {
    unlinkSync(path);
  } catch (err) {
    throw new StartupError(`cannot remove stale control socket ${path}: ${(err as Error).message}`);
  }
}

export class ControlServer {
  private unlinked = false;

  private constructor(
    readonly path: string,
    private readonly server: Server,
    private readonly conns: Set<Socket>,
    private readonly ino: number,
    private readonly log: Logger,
    private readonly handle: RequestHandler,
  ) {}

  /**
   * Serve a connection that did not come through accept(): the master's end of a
   * socketpair whose other end a child got as EINHORN_SOCK_FD (einhorn's -g).
   */
  adopt(fd: number): ControlConnection {
    const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    this.conns.add(socket);
    return serve(socket, this.log, this.handle, () => this.conns.delete(socket));
  }

  /**
   * Take over the listening control socket of the image before a reload (its fd
   * was inherited across the exec; the file on disk never went away).
   */
  static async fromFd(fd: number, path: string, ino: number, log: Logger, handle: RequestHandler): Promise<ControlServer> {
    const server = createServer({ allowHalfOpen: true });
    const conns = new Set<Socket>();
    ControlServer.accept(server, conns, log, handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new StartupError(`cannot take over the control socket ${path} (fd ${fd}): ${err.message}`)));
      server.listen({ fd }, () => resolve());
    });
    server.on('error', (err) => log.error(`control socket: ${err.message}`));
    return new ControlServer(path, server, conns, ino, log, handle);
  }

  /** The listening fd and the socket file's inode, for the next image. */
  get listenFd(): number {
    return (this.server as unknown as { _handle: { fd: number } })._handle.fd;
  }

  get inode(): number {
    return this.ino;
  }

  /** Every open connection (for the hand-over across a reload). */
  openConnections(): ControlConnection[] {
    const out: ControlConnection[] = [];
    for (const s of this.conns) {
      const c = CONNECTIONS.get(s);
      if (c && !c.closed && !s.destroyed) out.push(c);
    }
    return out;
  }

  private static accept(server: Server, conns: Set<Socket>, log: Logger, handle: RequestHandler, http?: HttpHandler): void {
    server.on('connection', (socket) => {
      if (conns.size >= MAX_CONNECTIONS) {
        log.warn(`Refusing a control connection: already ${conns.size} open`);
        socket.destroy();
        return;
      }
      conns.add(socket);
      serve(socket, log, handle, () => conns.delete(socket), http);
    });
  }

  /** `http`: also serve HTTP requests on the same socket, told apart by their first bytes (the dyno driver's hsup API). */
  static async open(path: string, mode: number, log: Logger, handle: RequestHandler, http?: HttpHandler): Promise<ControlServer> {
    await claimPath(path, log);
    const server = createServer({ allowHalfOpen: true });
    const conns = new Set<Socket>();
    ControlServer.accept(server, conns, log, handle, http);
    await new Promise<void>((resolve, reject) => {
      const old = process.umask(0o177);
      server.once('error', (err: NodeJS.ErrnoException) => {
        process.umask(old);
        reject(new StartupError(`cannot create control socket ${path}: ${err.message}`));
      });
      server.listen(path, () => resolve());
      process.umask(old);
    });
    server.on('error', (err) => log.error(`control socket: ${err.message}`));
    try {
      chmodSync(path, mode);
    } catch (err) {
      server.close();
      throw new StartupError(`cannot set the mode of ${path}: ${(err as Error).message}`);
    }
    return new ControlServer(path, server, conns, lstatSync(path).ino, log, handle);
  }

  get connections(): number {
    let n = 0;
    for (const c of this.conns) if (!c.destroyed) n += 1;
    return n;
  }

  /** Stop listening, drop every client, remove the socket file (only if it is still ours). */
  close(): void {
    this.server.close();
    for (const c of this.conns) c.destroy();
    this.unlink();
  }

  unlink(): void {
    if (this.unlinked) return;
    this.unlinked = true;
    try {
      if (lstatSync(this.path).ino === this.ino) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

const CONNECTIONS = new WeakMap<Socket, ControlConnection>();

function serve(socket: Socket, log: Logger, handle: RequestHandler, done: () => void, http?: HttpHandler): ControlConnection {
  const conn = new ControlConnection(socket);
  CONNECTIONS.set(socket, conn);
  const splitter = new LineSplitter({ maxLineLength: MAX_LINE_BYTES });
  let head: Buffer | null = http ? Buffer.alloc(0) : null;
  const onData = (data: Buffer) => {
    let chunk = data;
    if (head !== null && http) {
      // Until the first bytes tell: an HTTP request, or einhorn lines.
      head = Buffer.concat([head, data]);
      const text = head.subarray(0, 9).toString('latin1');
      if (HTTP_START.test(text)) {
        socket.off('data', onData);
        conn.closed = true;
        http(socket, head);
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
        log.debug(`control: bad request: ${parsed.error}`);
        conn.send({ message: parsed.error, error: true });
        continue;
      }
      try {
        handle(conn, parsed.request);
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
  return conn;
}
