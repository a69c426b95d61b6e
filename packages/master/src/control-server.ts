import { lstatSync, realpathSync, unlinkSync, watch as watchDir, type FSWatcher, type Stats } from 'node:fs';
import { Socket, createConnection, createServer, type Server } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { ControlConnection, peerOf } from './control-connection.js';
import { serve, type HttpHandler, type RequestHandler } from './control-serve.js';

export { ControlConnection, MAX_PENDING_OUTPUT, type Peer, type ReplyFields } from './control-connection.js';
export { MAX_LINE_BYTES, serveHttpOnly, type HttpHandler, type HttpReply, type HttpRequest, type RequestHandler } from './control-serve.js';
import * as native from 'native-reuseport';
import { StartupError } from './errors.js';
import { checkSocketDir } from './socket-dir.js';
import type { Logger } from './log.js';
import { MemoryKeeper } from './memory.js';

/** Most control connections open at once; past it the one idle longest is closed, or (none idle) the new one refused. */
export const MAX_CONNECTIONS = 512;
/**
 * The control socket's listen backlog (the kernel caps it at net.core.somaxconn, 4096 by
 * default): 1,000 workers ACK within a second of each other, and a connection past the
 * backlog is refused at once (EAGAIN on a unix socket), not queued: with 511, a busy
 * master's workers lost half their ACKs.
 */
const CONTROL_BACKLOG = 4096;
/**
 * Connections taken per accept event beyond the one the event loop took: libuv accepts one
 * connection per turn of the loop, so while the loop is busy (spawning 1,000 workers, which
 * then all ACK at once) ACKs waited in the backlog for seconds, one per turn (ACK round
 * trips at 1,000 workers: up to 3 s, now under the ehlo's). Bounded, so that one turn stays short.
 */
const ACCEPT_BURST = 64;
/** A connection that was sent more than this leaves enough behind to compact after it closes. */
const HEAVY_CLIENT_BYTES = 1024 * 1024;
/** ... and this long after the last of them closed, the memory they left is compacted. */
const COMPACT_AFTER_HEAVY_MS = 2000;
/** Default idle timeout of a control connection (nothing sent, no reply owed). */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** How often the socket file and its directory are checked (a deleted socket is recreated). */
const WATCH_EVERY_MS = 1000;
/** With inotify on the directory: the poll that catches what inotify cannot (the directory itself replaced). */
const WATCH_BACKSTOP_MS = 30_000;
/** sun_path is 108 bytes on Linux, NUL included. */
const MAX_UNIX_PATH = 107;

export interface ControlServerOptions {
  /** Close a connection that sent nothing and is owed nothing for this long; 0: never. */
  idleTimeoutMs?: number;
  /** Also serve HTTP requests on the same socket, told apart by their first bytes (the dyno driver's hsup API). */
  http?: HttpHandler;
}



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
    fd = native.listenUnix({ path, backlog: CONTROL_BACKLOG, nonBlock: true });
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
      // Node listens again on the fd it is given, with its own 511 unless told (for an fd,
      // only the positional backlog counts).
      server.listen({ fd }, CONTROL_BACKLOG, () => {
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
  /** inotify on the socket's directory: a deleted or replaced socket file is seen at once, without polling. */
  private dirWatcher: FSWatcher | null = null;
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
      cs.server.listen({ fd }, CONTROL_BACKLOG, () => {
        cs.server.off('error', onError);
        resolve();
      });
    });
    cs.ino = ino;
    cs.server.on('error', (err) => log.error(`control socket: ${err.message}`));
    cs.startWatch();
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
    cs.startWatch();
    return cs;
  }

  get connections(): number {
    let n = 0;
    for (const c of this.conns.keys()) if (!c.destroyed) n += 1;
    return n;
  }

  /**
   * Watch the socket file: its directory's inotify events for that name (nothing wakes the
   * master while nothing happens there), and a slow poll as the backstop (a directory
   * replaced or moved away, or no inotify); every second without inotify.
   */
  private startWatch(): void {
    try {
      const name = basename(this.path);
      this.dirWatcher = watchDir(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.check();
      });
      this.dirWatcher.on('error', () => {
        this.dirWatcher?.close();
        this.dirWatcher = null;
        this.check();
      });
    } catch {
      this.dirWatcher = null;
    }
    this.watch = setInterval(() => this.check(), this.dirWatcher ? WATCH_BACKSTOP_MS : WATCH_EVERY_MS);
    this.watch.unref();
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
    this.dirWatcher?.close();
    this.dirWatcher = null;
    try {
      if (lstatSync(this.path).ino === this.ino) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  private newServer(): Server {
    const server = createServer({ allowHalfOpen: true });
    server.on('connection', (socket) => {
      this.accept(socket);
      this.acceptBurst(server);
    });
    return server;
  }

  /** The rest of a burst of connections waiting in the backlog, now rather than one per turn. */
  private acceptBurst(server: Server): void {
    const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return;
    for (let i = 0; i < ACCEPT_BURST; i++) {
      const c = native.acceptPending(fd);
      if (c === null) return;
      let socket: Socket;
      try {
        socket = new Socket({ fd: c, readable: true, writable: true, allowHalfOpen: true });
      } catch (err) {
        native.close(c);
        this.log.warn(`control socket: could not serve an accepted connection: ${(err as Error).message}`);
        return;
      }
      this.accept(socket);
    }
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
