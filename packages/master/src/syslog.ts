import { existsSync, lstatSync } from 'node:fs';
import { hostname } from 'node:os';
import * as native from 'native-reuseport';
import * as syslogClient from 'syslog-client';
import type { LogLevel } from '@einhyrningsins/core';
import { StartupError } from './errors.js';
import { isoTime } from './clock.js';

/** Where --syslog / --syslog-socket / --syslog-to send warnings and errors. */
export type SyslogTarget =
  | { kind: 'local'; path: string }
  | { kind: 'remote'; transport: 'udp' | 'tcp'; host: string; port: number };

export function parseSyslogUrl(url: string): SyslogTarget {
  const m = /^(udp|tcp):\/\/(\[[0-9a-fA-F:]+\]|[^:/\s]+):(\d{1,5})\/?$/.exec(url);
  if (!m || Number(m[3]) > 65535) {
    throw new StartupError(`--syslog-to ${url}: expected udp://HOST:PORT or tcp://HOST:PORT`);
  }
  return { kind: 'remote', transport: m[1] as 'udp' | 'tcp', host: (m[2] as string).replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

const SEVERITY: Readonly<Record<LogLevel, number>> = { error: 3, warn: 4, info: 6, debug: 7 };
const DAEMON = 3;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A line as libc's syslog(3) writes it to /dev/log: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`. */
export function formatLocal(level: LogLevel, tag: string, pid: number, message: string, now = new Date()): string {
  const pri = DAEMON * 8 + SEVERITY[level];
  const p2 = (n: number) => String(n).padStart(2, '0');
  const ts = `${MONTHS[now.getMonth()]} ${String(now.getDate()).padStart(2, ' ')} ${p2(now.getHours())}:${p2(now.getMinutes())}:${p2(now.getSeconds())}`;
  return `<${pri}>${ts} ${tag}[${pid}]: ${message.replace(/\n/g, ' ')}`;
}

/**
 * Sends warnings and errors to syslog: a unix datagram socket (the local
 * daemon's /dev/log, through the addon: Node has no unix datagram sockets) and/or a remote collector over
 * UDP or TCP (through syslog-client). Send failures are reported once on
 * stderr and never stop the master.
 */
export class SyslogSink {
  private readonly local: { path: string } | null = null;
  private readonly remote: syslogClient.Client | null = null;
  private complained = false;

  constructor(
    targets: readonly SyslogTarget[],
    private readonly tag: string,
    private readonly pid: number,
    private readonly stderr: (line: string) => void = (l) => process.stderr.write(l),
  ) {
    for (const t of targets) {
      if (t.kind === 'local') {
        if (!existsSync(t.path) || !lstatSync(t.path).isSocket()) {
          throw new StartupError(`--syslog: no syslog socket at ${t.path} (is a syslog daemon running? see --syslog-socket)`);
        }
        this.local = { path: t.path };
      } else {
        const client = syslogClient.createClient(t.host, {
          transport: t.transport === 'tcp' ? syslogClient.Transport.Tcp : syslogClient.Transport.Udp,
          port: t.port,
          facility: syslogClient.Facility.Daemon,
          syslogHostname: hostname(),
          appName: tag,
          rfc3164: true,
          tcpTimeout: 2000,
        });
        client.on('error', (err) => this.complain(err));
        this.remote = client;
      }
    }
  }

  write(level: LogLevel, message: string): void {
    if (level !== 'warn' && level !== 'error') return;
    if (this.local) {
      try {
        // Non-blocking: when the daemon's queue is full the line is dropped (EAGAIN), never the master.
        native.sendDatagram(this.local.path, formatLocal(level, this.tag, this.pid, message));
      } catch (err) {
        this.complain(err as Error);
      }
    }
    if (this.remote) {
      const severity = level === 'error' ? syslogClient.Severity.Error : syslogClient.Severity.Warning;
      this.remote.log(`[${this.pid}] ${message}`, { severity }, (err) => err && this.complain(err));
    }
  }

  close(): void {
    try {
      this.remote?.close();
    } catch {
      /* closed */
    }
  }

  private complain(err: Error): void {
    if (this.complained) return;
    this.complained = true;
    this.stderr(`${isoTime()} [MASTER ${this.pid}] ERROR: syslog: ${err.message} (further syslog errors are not shown)\n`);
  }
}
