/**
 * The web type's listening socket: bound once by the driver (-b, or 0.0.0.0:$PORT),
 * moved when a release changes PORT, and the check that a web program can be reached
 * by the bind shim (a static executable cannot).
 */
import { readlinkSync } from 'node:fs';
import * as native from 'native-reuseport';
import { StartupError, listenOn, parseBindSpec, resolveBind, resolveProgram, staticExecutableWarning, type Cleanup, type Logger, type WorkerProcess } from '@einhyrningsins/master';
import type { PreparedRelease, ProcessDef } from './release.js';

/** The process type that gets the listening socket. */
export const WEB_TYPE = 'web';
const BACKLOG = 511;

export interface Listener {
  fd: number;
  family: 4 | 6;
  address: string;
  port: number;
}

export class WebSocketBinding {
  listener: Listener | null = null;
  /** Said once: the web processes get no socket. */
  warnedNoSocket = false;
  private readonly warnedStatic = new Set<string>();

  constructor(
    /** -b as written; null: 0.0.0.0:$PORT when PORT is set. */
    private readonly bindText: string | null,
    private readonly env: NodeJS.ProcessEnv,
    private readonly startNumber: number,
    private readonly log: Logger,
  ) {}

  async bind(webPossible: boolean, port: string | undefined, cleanup: Cleanup): Promise<void> {
    if (!webPossible) {
      if (this.bindText) this.log.warn(`-b ${this.bindText}: no web process type is run; not binding it`);
      return;
    }
    const text = this.bindText ?? (port !== undefined && port !== '' ? `0.0.0.0:${port},r` : null);
    if (text === null) {
      this.log.warn('No -b and no PORT: the web processes get no listening socket (EINHORN_FD_COUNT=0)');
      this.warnedNoSocket = true;
      return;
    }
    const what = this.bindText ? `-b ${text}` : `PORT=${port}`;
    let bind;
    try {
      bind = await resolveBind(parseBindSpec(text), null);
    } catch (err) {
      throw new StartupError(this.bindText ? (err as Error).message : `${what}: ${(err as Error).message}`);
    }
    const fd = listenOn(bind, { backlog: BACKLOG, v6Only: null, what });
    cleanup.add(() => {
      if (this.listener) native.close(this.listener.fd);
      this.listener = null;
    });
    this.listener = { fd, family: bind.family, address: bind.address, port: native.getsockname(fd).port };
  }

  /**
   * A new release's PORT (.env, Env) differs from the port the web socket is bound to
   * (and no -b): bind the new one for the processes started from now on; the old
   * processes keep theirs until they exit. Returns the new listener when it moved.
   */
  async rebind(next: PreparedRelease): Promise<Listener | null> {
    if (this.bindText || !this.listener) return null;
    const port = next.env.PORT ?? this.env.PORT;
    if (port === undefined || port === '' || port === String(this.listener.port)) return null;
    let bind;
    try {
      bind = await resolveBind(parseBindSpec(`0.0.0.0:${port},r`), null);
    } catch (err) {
      throw new Error(`PORT=${port}: ${(err as Error).message}`);
    }
    const fd = listenOn(bind, { backlog: BACKLOG, v6Only: null, what: `PORT=${port}` });
    const old = this.listener;
    this.listener = { fd, family: bind.family, address: bind.address, port: native.getsockname(fd).port };
    native.close(old.fd);
    this.log.info(`PORT changed from ${old.port} to ${this.listener.port}: new web processes listen on ${bind.address}:${this.listener.port}`);
    return this.listener;
  }

  /** The sockets a process type's children get. */
  listenersFor(type: string): Array<{ fd: number; family: 4 | 6; address: string; port: number; text: string }> {
    const l = this.listener;
    return type === WEB_TYPE && l ? [{ fd: l.fd, family: l.family, address: l.address, port: l.port, text: `${l.address}:${l.port}` }] : [];
  }

  /**
   * A web process whose program is a static executable never loads the bind
   * shim (LD_PRELOAD needs the dynamic loader): say so once per program.
   */
  private checkStatic(name: string, pid: number | null, exe: string): void {
    if (this.warnedStatic.has(exe)) return;
    const warning = staticExecutableWarning(`${name}${pid === null ? '' : ` (pid ${pid})`}`, exe, 'EINHORN_FD_0 (fd 3)');
    if (warning === null) return;
    this.warnedStatic.add(exe);
    this.log.warn(warning);
  }

  /** The program a web command runs (the first word of `sh -c 'exec CMD'`, after VAR=value words), checked before it starts. */
  checkCommand(p: ProcessDef, rel: PreparedRelease): void {
    if (p.type !== WEB_TYPE || !this.listener) return;
    let word = p.args[0] as string;
    if (p.args.length === 3 && /(^|\/)(ba)?sh$/.test(word) && p.args[1] === '-c') {
      const words = (p.args[2] as string).trim().split(/\s+/);
      if (words[0] === 'exec') words.shift();
      while (words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0] as string)) words.shift();
      if (!words.length || /["'$`\\]/.test(words[0] as string)) return;
      word = words[0] as string;
    }
    try {
      const env = { ...this.env, ...rel.env };
      this.checkStatic(`${p.type}.${this.startNumber}`, null, resolveProgram(word, env.PATH, rel.cwd));
    } catch {
      /* not found: the start will say so */
    }
  }

  /** A web process just spawned: look at what it runs once the shell has exec'd the program (and again later, for slow wrappers). */
  watchSpawned(name: string, child: WorkerProcess): void {
    const pid = child.pid;
    if (!this.listener) return;
    for (const ms of [300, 1500]) {
      const t = setTimeout(() => {
        try {
          this.checkStatic(name, pid, readlinkSync(`/proc/${pid}/exe`));
        } catch {
          /* gone */
        }
      }, ms);
      t.unref();
      child.once('exit', () => clearTimeout(t));
    }
  }
}
