/**
 * --http ADDR:PORT: the driver's HTTP API (the same answers as on the control socket) on
 * a TCP address, for minisv's users, only with a bearer token (--http-token-file). A
 * request without the token gets 401 and nothing is done. The same limits as a control
 * connection: one request per connection, 16 KiB head, 64 KiB body, the idle timeout,
 * closed after the reply; at most MAX_HTTP_CONNECTIONS open (its own pool, so that
 * strangers on the network cannot evict operators from the control socket), past which
 * the one idle longest is closed, or the new one refused.
 */
import { Server, Socket, createServer } from 'node:net';
import * as native from 'native-reuseport';
import {
  ControlConnection,
  DEFAULT_IDLE_TIMEOUT_MS,
  StartupError,
  listenOn,
  parseBindSpec,
  resolveBind,
  serveHttpOnly,
  type Cleanup,
  type HttpHandler,
  type HttpReply,
  type HttpRequest,
  type Logger,
} from '@einhyrningsins/master';
import { bearerMatches } from './token.js';

export const MAX_HTTP_CONNECTIONS = 128;
/** Failed attempts are logged once, then counted, at most once a minute. */
const UNAUTHORIZED_LOG_EVERY_MS = 60_000;

const unauthorized: HttpReply = {
  status: 401,
  type: 'application/json',
  body: JSON.stringify({ error: 'unauthorized: this API needs the header Authorization: Bearer TOKEN (the token of --http-token-file)' }) + '\n',
  headers: { 'WWW-Authenticate': 'Bearer realm="einhyrningsins-dyno"' },
};

/** The token gate in front of the API (pure but for the log). */
export function withToken(api: HttpHandler, tokenDigest: Buffer, onRefused: (req: HttpRequest) => void): HttpHandler {
  return (req) => {
    if (!bearerMatches(req.headers.get('authorization'), tokenDigest)) {
      onRefused(req);
      return unauthorized;
    }
    if (!/^[A-Z]{1,16}$/.test(req.method) || !req.path.startsWith('/')) {
      return { status: 400, type: 'application/json', body: JSON.stringify({ error: 'not an HTTP request this API understands' }) + '\n' };
    }
    return api(req);
  };
}

export class HttpTcpServer {
  private readonly server: Server;
  private readonly conns = new Map<Socket, ControlConnection>();
  private refused = 0;
  private lastRefusalLog = -Infinity;

  private constructor(
    readonly fd: number,
    readonly address: string,
    readonly port: number,
    private readonly log: Logger,
    private readonly handler: HttpHandler,
    private readonly idleTimeoutMs: number,
  ) {
    this.server = createServer({ allowHalfOpen: true });
    this.server.on('connection', (s) => this.accept(s));
    this.server.on('error', (err) => log.error(`http: ${err.message}`));
  }

  /** Bind ADDR:PORT (or take the fd a reload's old image bound) and serve `api` behind the token. */
  static async open(
    where: { text: string } | { fd: number },
    api: HttpHandler,
    tokenDigest: Buffer,
    log: Logger,
    cleanup: Cleanup,
    idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS,
  ): Promise<HttpTcpServer> {
    let fd: number;
    if ('fd' in where) {
      fd = where.fd;
      if (!native.fdInfo(fd).listening) throw new StartupError(`reload: fd ${fd} (the --http socket) is not a listening socket any more`);
      native.setCloexec(fd, true);
    } else {
      let bind;
      try {
        bind = await resolveBind(parseBindSpec(where.text), null);
      } catch (err) {
        throw new StartupError(`--http ${where.text}: ${(err as Error).message.replace(/^-b [^:]*:?[^:]*: /, '')}`);
      }
      fd = listenOn(bind, { backlog: 511, v6Only: null, what: `--http ${where.text}` });
    }
    const name = native.getsockname(fd);
    let srv: HttpTcpServer | null = null;
    const refusedLog = (req: HttpRequest) => srv?.refusedOne(req);
    srv = new HttpTcpServer(fd, name.address ?? '', name.port ?? 0, log, withToken(api, tokenDigest, refusedLog), idleTimeoutMs);
    const s = srv;
    cleanup.add(() => s.close());
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen({ fd }, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  get where(): string {
    return this.address.includes(':') ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }

  private refusedOne(req: HttpRequest): void {
    this.refused += 1;
    const now = Date.now();
    if (now - this.lastRefusalLog < UNAUTHORIZED_LOG_EVERY_MS) return;
    this.lastRefusalLog = now;
    this.log.warn(`http: refused ${this.refused} request${this.refused === 1 ? '' : 's'} without the right bearer token (last: ${req.method} ${req.path.slice(0, 80)})`);
    this.refused = 0;
  }

  private accept(socket: Socket): void {
    if (this.conns.size >= MAX_HTTP_CONNECTIONS && !this.evictIdlest()) {
      this.log.warn(`http: refusing a connection: already ${this.conns.size} open, none idle`);
      socket.destroy();
      return;
    }
    const conn = new ControlConnection(socket, null);
    this.conns.set(socket, conn);
    serveHttpOnly(socket, conn, this.log, this.handler, () => this.conns.delete(socket), this.idleTimeoutMs);
  }

  private evictIdlest(): boolean {
    let victim: [Socket, ControlConnection] | null = null;
    for (const e of this.conns) if (e[1].idle && (!victim || e[1].lastActive < victim[1].lastActive)) victim = e;
    if (!victim) return false;
    this.log.warn(`http: connections at the limit (${MAX_HTTP_CONNECTIONS}): closing the one idle longest`);
    victim[1].destroy();
    this.conns.delete(victim[0]);
    return true;
  }

  get connections(): number {
    return this.conns.size;
  }

  close(): void {
    this.server.close();
    for (const c of this.conns.values()) c.destroy();
    this.conns.clear();
  }
}
