import { lstatSync, realpathSync, unlinkSync, watch as watchDir, type FSWatcher, type Stats } from 'node:fs';
import { Socket, createServer, type Server } from 'node:net';
import { basename, dirname } from 'node:path';
import { ControlConnection, peerOf } from './control-connection.js';
import { serve, type HttpHandler, type RequestHandler } from './control-serve.js';

export { ControlConnection, MAX_PENDING_OUTPUT, type Peer, type ReplyFields } from './control-connection.js';
export { MAX_LINE_BYTES, serveHttpOnly, type HttpHandler, type HttpReply, type HttpRequest, type RequestHandler } from './control-serve.js';
import * as native from 'native-reuseport';
import { StartupError } from './errors.js';
import type { Logger } from './log.js';
import { MemoryKeeper } from './memory.js';
import { CONTROL_BACKLOG, claimPath, listenAt, resolveSocketPath, sameDir } from './control-socket-file.js';
import { HARD_MAX_CONNECTIONS, MAX_CONNECTIONS, trim } from './connection-limit.js';
import { monotonicMs } from './clock.js';
import { probe, probeStart } from './loop-probe.js';

export { resolveSocketPath };

export { MAX_CONNECTIONS } from './connection-limit.js';
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

export interface ControlServerOptions {
  /** Close a connection that sent nothing and is owed nothing for this long; 0: never. */
  idleTimeoutMs?: number;
  /** Also serve HTTP requests on the same socket, told apart by their first bytes (the dyno driver's hsup API). */
  http?: HttpHandler;
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
  private trimTimer: NodeJS.Timeout | null = null;
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
    if (this.trimTimer) clearTimeout(this.trimTimer);
    this.trimTimer = null;
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
      const t0 = probeStart();
      this.accept(socket);
      this.acceptBurst(server);
      probe?.task('accept', t0);
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
    if (this.conns.size >= HARD_MAX_CONNECTIONS && !this.trimTo(HARD_MAX_CONNECTIONS - 1)) {
      this.log.warn(`Refusing a control connection: already ${this.conns.size} open, none idle for long`);
      socket.destroy();
      return;
    }
    this.serveClient(socket);
    if (this.conns.size > MAX_CONNECTIONS) this.trimTo(MAX_CONNECTIONS);
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

  /**
   * Over `max`: close the connections idle longest (only those idle a while: see
   * connection-limit.ts), and look again when more may be closed. True when at or under `max`.
   */
  private trimTo(max: number): boolean {
    const t = trim(this.conns.values(), this.conns.size, monotonicMs(), max);
    if (t.evict.length > 0) {
      const victims = new Set(t.evict);
      for (const victim of victims) {
        this.log.warn(`Control connections at the limit (${MAX_CONNECTIONS}): closing the one idle longest, from ${victim.describePeer()}`);
        victim.destroy();
      }
      // One pass for all of them (a pass per victim was O(n^2) when a burst is trimmed).
      for (const [sock, c] of this.conns) if (victims.has(c)) this.conns.delete(sock);
    }
    if (t.againInMs !== null && !this.trimTimer && !this.closing) {
      this.trimTimer = setTimeout(() => {
        this.trimTimer = null;
        if (this.conns.size > MAX_CONNECTIONS) this.trimTo(MAX_CONNECTIONS);
      }, t.againInMs);
      this.trimTimer.unref();
    }
    return this.conns.size <= max;
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
