/**
 * systemd: socket activation (LISTEN_FDS, checked as sd_listen_fds(3) does) and
 * sd_notify(3) on NOTIFY_SOCKET (READY, RELOADING, STOPPING, STATUS, WATCHDOG,
 * MAINPID). Without those variables everything here is a no-op.
 */
import * as native from 'native-reuseport';
import { StartupError } from './errors.js';
import type { Logger } from './log.js';

/** What systemd hands a service and the children must not see. */
export const SYSTEMD_VARS = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'];

export interface ActivatedSocket {
  fd: number;
  name: string;
}

/**
 * The listening sockets systemd passed (fds 3, 4, ...), or none. LISTEN_* are
 * removed from `env` either way (sd_listen_fds with unset_environment), so that a
 * reload does not take them again.
 */
export function listenFds(env: NodeJS.ProcessEnv, log: Logger): ActivatedSocket[] {
  const count = env.LISTEN_FDS;
  const pid = env.LISTEN_PID;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (count === undefined) return [];
  if (pid === undefined || !/^\d+$/.test(pid) || Number(pid) !== process.pid) {
    log.debug(`LISTEN_PID is ${pid ?? 'unset'}, not this master (${process.pid}): ignoring LISTEN_FDS=${count}`);
    return [];
  }
  if (!/^\d+$/.test(count) || Number(count) > 64) throw new StartupError(`LISTEN_FDS is not a small number: '${count}'`);
  const out: ActivatedSocket[] = [];
  for (let i = 0; i < Number(count); i++) {
    const fd = 3 + i;
    let info;
    try {
      info = native.fdInfo(fd);
    } catch {
      throw new StartupError(`systemd passed LISTEN_FDS=${count}, but fd ${fd} is not open`);
    }
    if (!info.listening) throw new StartupError(`fd ${fd} from systemd (${names[i] || 'unnamed'}) is not a listening socket`);
    native.setCloexec(fd, true);
    out.push({ fd, name: names[i] || `fd${fd}` });
  }
  return out;
}

export class Notifier {
  private readonly path: string | null;
  private watchdog: NodeJS.Timeout | null = null;
  private lastStatus = '';

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {
    const p = env.NOTIFY_SOCKET;
    this.path = p && (p.startsWith('/') || p.startsWith('@')) ? p : null;
    if (p && !this.path) log.warn(`NOTIFY_SOCKET '${p}' is neither a path nor an abstract socket: not notifying`);
    const usec = Number(env.WATCHDOG_USEC);
    const wpid = env.WATCHDOG_PID;
    if (this.path && usec > 0 && (wpid === undefined || Number(wpid) === process.pid)) {
      const every = Math.max(1, Math.floor(usec / 2000));
      this.watchdog = setInterval(() => this.send('WATCHDOG=1'), every);
      this.watchdog.unref();
    }
  }

  get enabled(): boolean {
    return this.path !== null;
  }

  send(...lines: string[]): void {
    if (!this.path) return;
    try {
      native.sendDatagram(this.path, lines.join('\n') + '\n');
    } catch (err) {
      this.log.debug(`sd_notify ${lines.join(' ')}: ${(err as Error).message}`);
    }
  }

  /** STATUS=, only when it changed. */
  status(text: string): void {
    if (text === this.lastStatus) return;
    this.lastStatus = text;
    this.send(`STATUS=${text}`);
  }

  ready(status: string): void {
    this.lastStatus = status;
    this.send('READY=1', `STATUS=${status}`, `MAINPID=${process.pid}`);
  }

  reloading(status: string): void {
    this.lastStatus = status;
    this.send('RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, `STATUS=${status}`);
  }

  stopping(): void {
    this.send('STOPPING=1', 'STATUS=stopping');
  }

  close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }
}
