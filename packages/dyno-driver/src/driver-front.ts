/**
 * The driver's HTTP API on TCP (--http ADDR:PORT, or minisv.json's "http"), only with a
 * bearer token (--http-token-file): decided and checked before anything is bound (a
 * usage error otherwise: one line, exit 2), opened once the control socket is, carried
 * across a reload by its fd. Also minisv's `logreopen` timer and HUP meaning.
 */
import type { Cleanup, HttpHandler, Logger } from '@einhyrningsins/master';
import { UsageError } from './errors.js';
import type { DriverConfig } from './driver-config.js';
import type { MinisvConfig } from './minisv/json-config.js';
import type { HttpTcpServer } from './minisv/http-tcp.js';
import { where as locText } from './config/index.js';

export class HttpFront {
  server: HttpTcpServer | null = null;
  private token: Buffer | null = null;
  private address: string | null = null;

  constructor(
    private readonly cfg: Pick<DriverConfig, 'http' | 'httpTokenFile'>,
    private readonly log: Logger,
  ) {}

  /** Where to serve and the token, checked before anything is bound; a problem is a usage error. */
  async check(minisv: MinisvConfig | null): Promise<void> {
    const fromConfig = minisv?.http ?? null;
    const configText = fromConfig ? `${fromConfig.address.includes(':') ? `[${fromConfig.address}]` : fromConfig.address}:${fromConfig.port}` : null;
    if (this.cfg.http === null && fromConfig && this.cfg.httpTokenFile === null) {
      throw new UsageError(
        `${locText(fromConfig.loc)}: "http" asks for minisv's API on TCP (${configText}): that needs --http-token-file FILE (a bearer token every request must carry); ` +
          'without one, remove "http" and use the control socket (curl --unix-socket)',
      );
    }
    if (this.cfg.http && fromConfig) this.log.warn(`--http ${this.cfg.http.text} is used; the config's "http" (${configText}) is not`);
    this.address = this.cfg.http?.text ?? configText;
    if (this.cfg.httpTokenFile !== null && this.address === null) {
      throw new UsageError('--http-token-file is given but there is nothing to serve on TCP: add --http ADDR:PORT');
    }
    if (this.address === null) return;
    const { readTokenFile } = await import('./minisv/token.js');
    this.token = readTokenFile(this.cfg.httpTokenFile as string);
  }

  /** Serve `api` on TCP (a fresh socket, or `fd` taken over from a reload's old image). */
  async open(api: HttpHandler, cleanup: Cleanup, fd?: number): Promise<void> {
    if (this.address === null && fd === undefined) return;
    if (this.token === null) {
      // A reload's new image: the token file is read again (the command line is the same).
      const { readTokenFile } = await import('./minisv/token.js');
      this.token = readTokenFile(this.cfg.httpTokenFile as string);
    }
    // Loaded only with --http (at start-up, as every chunk the driver uses): it and the token's
    // check bring node:crypto in (+0.6 MB of RSS), for nothing without a TCP listener.
    const { HttpTcpServer } = await import('./minisv/http-tcp.js');
    this.server = await HttpTcpServer.open(fd !== undefined ? { fd } : { text: this.address as string }, api, this.token, this.log, cleanup);
    const a = this.server.address;
    if (fd === undefined && !(a.startsWith('127.') || a === '::1' || a === '::ffff:127.0.0.1')) {
      this.log.warn(`--http ${this.server.where} is not a loopback address and is served without TLS: the token and the replies cross the network in clear; put a TLS proxy in front`);
    }
  }

  /** For the start-up line. */
  describe(): string {
    return this.server ? `; HTTP API on ${this.server.where} (bearer token)` : '';
  }
}
