import { lstatSync, realpathSync, unlinkSync, type Stats } from 'node:fs';
import { Socket, createConnection, createServer, type Server } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { LineSplitter, encodeReply, parseRequest, type Request } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import { StartupError } from './errors.js';
import { checkSocketDir } from './socket-dir.js';
import { HttpRequestReader, encodeHttpReply, type HttpReply, type HttpRequest } from './http-request.js';
import type { Logger } from './log.js';
import { monotonicMs } from './clock.js';
import { MemoryKeeper } from './memory.js';

/** Longest request line accepted, in bytes (real requests are under 200; parsing stays well under 0.1 s). */
export const MAX_LINE_BYTES = 16 * 1024;
/** Most control connections open at once; past it the one idle longest is closed, or (none idle) the new one refused. */
export const MAX_CONNECTIONS = 512;
/**
 * A client that does not read its replies is dropped when this much output is already
 * queued for it (one reply of any size is always written to an empty queue).
 */
export const MAX_PENDING_OUTPUT = 256 * 1024;
/** A connection that was sent more than this leaves enough behind to compact after it closes. */
const HEAVY_CLIENT_BYTES = 1024 * 1024;
/** ... and this long after the last of them closed, the memory they left is compacted. */
const COMPACT_AFTER_HEAVY_MS = 2000;
/** Default idle timeout of a control connection (nothing sent, no reply owed). */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** How often the socket file and its directory are checked (a deleted socket is recreated). */
const WATCH_EVERY_MS = 1000;
/** sun_path is 108 bytes on Linux, NUL included. */
const MAX_UNIX_PATH = 107;

export interface ReplyFields {
  message: string;
  wait?: boolean;
  [extra: string]: unknown;
}

/** One client of the control socket. */
/** Who is at the other end of a control connection, as the kernel says (SO_PEERCRED at connect). */
export interface Peer {
  pid: number;
  uid: number;
  /** The peer's process group when it connected; -1 if it was already gone. */
  pgid: number;
}

export class ControlConnection {
  private static nextId = 1;
  readonly id = ControlConnection.nextId++;
  closed = false;
  /** Requests read whose final reply (one without `wait`) has not been sent yet. */
  private owed = 0;
  /** The client half-closed: close once every owed reply is sent. */
  private peerEnded = false;
  /** When it last sent or was sent anything (monotonicMs()). */
  lastActive = monotonicMs();
  /** Called (bytes queued) when it is dropped for not reading its replies. */
  onOverflow: ((queued: number) => void) | null = null;
  /** It was dropped for not reading its replies. */
  overflowed = false;
  /** The bytes read but not parsed yet (an unfinished request line), for a reload's snapshot. */
  unparsed: () => Buffer = () => Buffer.alloc(0);

  /**
   * `peer`: the connecting process (null if unknown). `boundPid`: for a socketpair handed to
   * one child (-g), that child's pid: the only pid this connection may ack or ping for.
   */
  constructor(
    private readonly socket: Socket,
    readonly peer: Peer | null,
    readonly boundPid: number | null = null,
  ) {}

  /** The connection's fd (for the hand-over across a reload), or null once closed. */
  get fd(): number | null {
    const fd = (this.socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
    return this.closed || typeof fd !== 'number' || fd < 0 ? null : fd;
  }

  /** Everything written has reached the kernel. */
  get flushed(): boolean {
    return this.socket.writableLength === 0;
  }

  /** Nothing owed and not a child's own -g connection: may be closed when idle or to make room. */
  get idle(): boolean {
    return this.owed === 0 && this.boundPid === null;
  }

  /**
   * May this connection send worker:ack / worker:ping for `pid`? Only from that process
   * itself or one in its process group (einhorn's clients connect from the worker; a shell
   * worker's `socat` is in its group), or on the -g connection handed to that child.
   */
  mayActFor(pid: number): boolean {
    if (this.boundPid !== null) return pid === this.boundPid;
    if (!this.peer) return false;
    if (this.peer.pid === pid) return true;
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 0x7fffffff) return false;
    const pgid = native.getpgid(pid);
    return pgid > 0 && this.peer.pgid === pgid;
  }

  /** Who the peer is, for log lines. */
  describePeer(): string {
    if (this.boundPid !== null) return `the -g connection of pid ${this.boundPid}`;
    return this.peer ? `pid ${this.peer.pid} (uid ${this.peer.uid}, process group ${this.peer.pgid})` : 'an unknown peer';
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
      // It does not read: what it is owed would only pile up here.
      this.overflowed = true;
      this.onOverflow?.(this.socket.writableLength);
      this.socket.destroy();
      this.closed = true;
      return;
    }
    this.lastActive = monotonicMs();
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

  /** Close at once (idle timeout, eviction). */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** SO_PEERCRED of an accepted unix socket, and the peer's process group right then. */
function peerOf(socket: Socket): Peer | null {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    const cred = native.peerCred(fd);
    return { pid: cred.pid, uid: cred.uid, pgid: cred.pid > 0 ? native.getpgid(cred.pid) : -1 };
  } catch {
    return null;
  }
}

export interface ControlServerOptions {
  /** Close a connection that sent nothing and is owed nothing for this long; 0: never. */
  idleTimeoutMs?: number;
  /** Also serve HTTP requests on the same socket, told apart by their first bytes (the dyno driver's hsup API). */
  http?: HttpHandler;
}

/**
 * Answers the one HTTP request of a connection whose first bytes are an HTTP request line
 * (`GET /`, `POST /`, ...) rather than an einhorn request. The connection stays the control
 * server's: the same idle timeout, eviction when full and per-client limits (head and body
 * size, one request, closed after the reply) as einhorn connections; see http-request.ts.
 */
export type HttpHandler = (req: HttpRequest) => HttpReply;
export type { HttpReply, HttpRequest };

/** The first bytes of an HTTP/1.x request: a method and a space then `/`. */
const HTTP_START = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) \//;
const HTTP_PREFIX = /^[A-Z]{0,7}( \/?)?$/;

export type RequestHandler = (conn: ControlConnection, req: Request) => void;

/**
 * The control socket's path with its directory resolved (symlinks followed once, now):
 * what is bound, passed to children in EINHORN_SOCK_PATH and checked later.
 */
export function resolveSocketPath(path: string): string {
  const dir = dirname(path);
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    throw new StartupError(`control socket directory does not exist: ${dir}`);
  }
  return join(real, basename(path));
}

/** The directory's identity, to notice it being replaced (a swapped symlink, a rename). */
function sameDir(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Make `path` (directory already resolved) free for a new control socket: refuse when a
 * live master answers there or when it is not a socket; remove a stale socket file.
 * Returns the directory's stat, to check later that it is still the same directory.
 */
async function claimPath(path: string, log: Logger): Promise<Stats> {
  const dir = dirname(path);
  let dst: Stats;
  try {
    dst = lstatSync(dir);
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
    return dst;
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
  return dst;
}

/**
 * Listen on `path` with mode `mode`; resolves to the socket file's inode. The socket is
 * bound by the addon and handed to Node as an fd: a pipe server Node bound itself unlinks
 * its path when closed (libuv), which would remove whatever is at the path by then (a
 * recreated socket, another master's).
 */
async function listenAt(server: Server, path: string, mode: number): Promise<number> {
  // Created with its mode (the umask set for the bind), never chmodded by path: a chmod()
  // after bind() would follow a symlink renamed over the new socket in between.
  const old = process.umask(~mode & 0o777);
  let fd: number;
  try {
    fd = native.listenUnix({ path, backlog: 511, nonBlock: true });
  } finally {
    process.umask(old);
  }
  try {
    const st = lstatSync(path);
    if (!st.isSocket() || st.uid !== (process.getuid?.() ?? 0)) throw new Error(`${path} was replaced by another file while it was bound`);
    const ino = st.ino;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(err);
      server.once('error', onError);
      server.listen({ fd }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    return ino;
  } catch (err) {
    try {
      unlinkSync(path);
    } catch {
      /* not there */
    }
    native.close(fd);
    throw err;
  }
}

/**
 * The control socket: accepts connections (authenticating who connects, closing idle ones,
 * making room for acks and operators when full), and keeps its socket file there: a deleted
 * one is recreated, a replaced one is reported.
 */
export class ControlServer {
  private unlinked = false;
  private closing = false;
  private server: Server;
  private ino: number;
  private watch: NodeJS.Timeout | null = null;
  private warnedMissingDir = false;
  private warnedReplaced = false;
  private readonly conns = new Map<Socket, ControlConnection>();
  /** Gives memory back once clients that had much output built or queued for them are gone. */
  private readonly memory = new MemoryKeeper();
  private compactTimer: NodeJS.Timeout | null = null;
  private heavyGone = 0;
  private readonly idleTimeoutMs: number;
  private readonly http: HttpHandler | undefined;

  private constructor(
    readonly path: string,
    private readonly mode: number,
    private readonly dirStat: Stats,
    private readonly log: Logger,
    private readonly handle: RequestHandler,
    opts: ControlServerOptions,
  ) {
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.http = opts.http;
    this.server = this.newServer();
    this.ino = 0;
  }

  /**
   * Serve a connection that did not come through accept(): the master's end of a
   * socketpair whose other end child `pid` got as EINHORN_SOCK_FD (einhorn's -g).
   */
  adopt(fd: number, pid: number | null = null, carried?: Buffer): ControlConnection {
    const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    const conn = new ControlConnection(socket, null, pid ?? -1);
    this.conns.set(socket, conn);
    serve(socket, conn, this.log, this.handle, () => this.gone(socket), 0, undefined, carried);
    return conn;
  }

  /**
   * Serve a connection accepted by the image before a reload (its fd was inherited):
   * the peer as the kernel says, or the child it was bound to (-g).
   */
  adoptConnection(fd: number, boundPid: number | null, carried?: Buffer): ControlConnection {
    if (boundPid !== null) return this.adopt(fd, boundPid, carried);
    return this.serveClient(new Socket({ fd, readable: true, writable: true, allowHalfOpen: true }), carried);
  }

  /**
   * Take over the listening control socket of the image before a reload: its fd was
   * inherited across the exec, and the file on disk (inode `ino`) never went away.
   */
  static async fromFd(fd: number, path: string, ino: number, mode: number, log: Logger, handle: RequestHandler, opts: ControlServerOptions = {}): Promise<ControlServer> {
    let dirStat: Stats;
    try {
      dirStat = lstatSync(dirname(path));
    } catch (err) {
      throw new StartupError(`control socket directory ${dirname(path)} is gone: ${(err as Error).message}`);
    }
    const cs = new ControlServer(path, mode, dirStat, log, handle, opts);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new StartupError(`cannot take over the control socket ${path} (fd ${fd}): ${err.message}`));
      cs.server.once('error', onError);
      cs.server.listen({ fd }, () => {
        cs.server.off('error', onError);
        resolve();
      });
    });
    cs.ino = ino;
    cs.server.on('error', (err) => log.error(`control socket: ${err.message}`));
    cs.watch = setInterval(() => cs.check(), WATCH_EVERY_MS);
    cs.watch.unref();
    return cs;
  }

  /** The listening fd, for the next image of a reload. */
  get listenFd(): number {
    return (this.server as unknown as { _handle: { fd: number } })._handle.fd;
  }

  /** The socket file's inode (ours as long as it is the same). */
  get inode(): number {
    return this.ino;
  }

  /** Every open connection (for the hand-over across a reload). */
  openConnections(): ControlConnection[] {
    const out: ControlConnection[] = [];
    for (const [s, c] of this.conns) if (!c.closed && !s.destroyed) out.push(c);
    return out;
  }

  /**
   * Open the control socket at `path`; its directory is resolved first (see
   * {@link resolveSocketPath}), and `server.path` is where it really is.
   */
  static async open(path: string, mode: number, log: Logger, handle: RequestHandler, opts: ControlServerOptions = {}): Promise<ControlServer> {
    const real = resolveSocketPath(path);
    const dirStat = await claimPath(real, log);
    const cs = new ControlServer(real, mode, dirStat, log, handle, opts);
    try {
      cs.ino = await listenAt(cs.server, real, mode);
    } catch (err) {
      cs.server.close();
      throw new StartupError(`cannot create control socket ${real}: ${(err as Error).message}`);
    }
    // Refuse a path that changed under us (the directory swapped for another while we bound).
    if (!cs.dirUnchanged()) {
      cs.server.close();
      throw new StartupError(`control socket directory ${dirname(real)} changed while the socket was created; refusing`);
    }
    cs.server.on('error', (err) => log.error(`control socket: ${err.message}`));
    cs.watch = setInterval(() => cs.check(), WATCH_EVERY_MS);
    cs.watch.unref();
    return cs;
  }

  get connections(): number {
    let n = 0;
    for (const c of this.conns.keys()) if (!c.destroyed) n += 1;
    return n;
  }

  /** Stop listening, drop every client, remove the socket file (only if it is still ours). */
  close(): void {
    this.closing = true;
    if (this.compactTimer) clearTimeout(this.compactTimer);
    this.compactTimer = null;
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    this.server.close();
    for (const c of this.conns.keys()) c.destroy();
    this.unlink();
  }

  unlink(): void {
    if (this.unlinked) return;
    this.unlinked = true;
    this.closing = true;
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    try {
      if (lstatSync(this.path).ino === this.ino) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  private newServer(): Server {
    const server = createServer({ allowHalfOpen: true });
    server.on('connection', (socket) => this.accept(socket));
    return server;
  }

  private accept(socket: Socket): void {
    if (this.conns.size >= MAX_CONNECTIONS && !this.evictIdlest()) {
      this.log.warn(`Refusing a control connection: already ${this.conns.size} open, none idle`);
      socket.destroy();
      return;
    }
    this.serveClient(socket);
  }

  /** An operator's or a worker's connection: its peer as the kernel says, the idle timeout, HTTP if asked. */
  private serveClient(socket: Socket, carried?: Buffer): ControlConnection {
    const conn = new ControlConnection(socket, peerOf(socket));
    this.conns.set(socket, conn);
    serve(socket, conn, this.log, this.handle, () => this.gone(socket), this.idleTimeoutMs, this.http, carried);
    return conn;
  }

  /**
   * A connection closed. One that was sent much, or dropped with replies queued, left
   * garbage and freed buffers behind: compact soon (a full GC and malloc_trim, see
   * MemoryKeeper), so that the master's RSS goes back down once such clients are gone.
   */
  private gone(socket: Socket): void {
    const conn = this.conns.get(socket);
    this.conns.delete(socket);
    if (!(socket.bytesWritten > HEAVY_CLIENT_BYTES || conn?.overflowed)) return;
    // 2 s after the last of them (a burst of closes compacts once, when it is over).
    this.heavyGone += 1;
    if (this.compactTimer) clearTimeout(this.compactTimer);
    this.compactTimer = setTimeout(() => {
      this.compactTimer = null;
      const before = process.memoryUsage.rss();
      this.memory.compact();
      const mib = (n: number) => (n / (1024 * 1024)).toFixed(1);
      this.log.info(
        `control: ${this.heavyGone} client(s) that had much output built or queued for them are gone; memory compacted (RSS ${mib(before)} -> ${mib(process.memoryUsage.rss())} MiB)`,
      );
      this.heavyGone = 0;
    }, COMPACT_AFTER_HEAVY_MS);
    this.compactTimer.unref();
  }

  /** Full: close the connection idle the longest (acks and operators must get through). */
  private evictIdlest(): boolean {
    let victim: ControlConnection | null = null;
    for (const c of this.conns.values()) {
      if (c.idle && (!victim || c.lastActive < victim.lastActive)) victim = c;
    }
    if (!victim) return false;
    this.log.warn(`Control connections at the limit (${MAX_CONNECTIONS}): closing the one idle longest, from ${victim.describePeer()}`);
    victim.destroy();
    for (const [sock, c] of this.conns) if (c === victim) this.conns.delete(sock);
    return true;
  }

  private dirUnchanged(): boolean {
    const dir = dirname(this.path);
    try {
      return realpathSync(dir) === dir && sameDir(lstatSync(dir), this.dirStat);
    } catch {
      return false;
    }
  }

  /**
   * Once a second: is the socket file still ours? Deleted: bind a new one at the same path
   * (clients, ctl and new workers' acks need it; a second master could take it otherwise).
   * Replaced by something else, or the directory replaced: warn, and leave it alone.
   */
  private check(): void {
    if (this.closing) return;
    if (!this.dirUnchanged()) {
      if (!this.warnedMissingDir) this.log.warn(`control socket directory ${dirname(this.path)} was removed or replaced; not recreating the socket there`);
      this.warnedMissingDir = true;
      return;
    }
    this.warnedMissingDir = false;
    let st: Stats | null = null;
    try {
      st = lstatSync(this.path);
    } catch {
      st = null;
    }
    if (st && st.ino === this.ino) {
      this.warnedReplaced = false;
      return;
    }
    if (st) {
      if (!this.warnedReplaced) this.log.warn(`control socket ${this.path} was replaced by another file; not serving there until it is removed`);
      this.warnedReplaced = true;
      return;
    }
    this.recreate();
  }

  private recreate(): void {
    const old = this.server;
    const fresh = this.newServer();
    this.closing = true; // no second check while this one binds
    listenAt(fresh, this.path, this.mode).then(
      (ino) => {
        this.closing = this.unlinked;
        if (this.unlinked) {
          fresh.close();
          return;
        }
        this.server = fresh;
        this.ino = ino;
        fresh.on('error', (err) => this.log.error(`control socket: ${err.message}`));
        old.close(); // its name is gone; accepted connections stay open
        this.log.warn(`control socket ${this.path} was deleted; created it again`);
      },
      (err: Error) => {
        this.closing = this.unlinked;
        fresh.close();
        this.log.warn(`control socket ${this.path} was deleted and cannot be created again: ${err.message}`);
      },
    );
  }
}

function serve(
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
    let reply: HttpReply;
    try {
      reply = http(got.request);
    } catch (err) {
      log.error(`control: error while answering HTTP ${got.request.method} ${got.request.path}: ${(err as Error).stack ?? err}`);
      reply = { status: 500, body: `${(err as Error).message}\n` };
    }
    answer(reply);
  };
  socket.on('data', onData);
  socket.on('end', () => {
    // Hung up before its request was complete: it cannot be answered.
    if (!answered) conn.destroy();
  });
  onData(first);
}
