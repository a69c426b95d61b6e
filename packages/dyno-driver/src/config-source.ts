/**
 * The third release source (beside the Procfile and hsup's control directory): a
 * supervisord-style config file (config/). Each [program:x] is one process type, one
 * group of the runtime: its numprocs processes are the group's workers. Read at start
 * (a config error: one line FILE:LINE, exit 2) and again on `upgrade`/SIGHUP (an error
 * then: the running programs are untouched). The programs' `socket=`s are bound here,
 * with the master's -b code, once per distinct socket, and shared by the program's
 * processes (what makes a rolling restart lose no connection).
 */
import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import * as native from 'native-reuseport';
import {
  StartupError,
  checkHandoff,
  listenOn,
  listenUnixBind,
  parseBindSpec,
  releaser,
  resolveBind,
  type Cleanup,
  type HandedSocket,
  type Logger,
  type SharedListener,
} from '@einhyrningsins/master';
import type { Warn } from './app-source.js';
import { ConfigError, readConfig, where, type ConfigModel, type ProgramConfig, type SocketSpec } from './config/index.js';
import { UsageError } from './errors.js';
import type { PreparedRelease } from './release.js';
import type { FirstLook, ReleaseSource, Rejection } from './releases.js';
import { programQuantity } from './program-launch.js';

const BACKLOG = 511;

/** What a reload carries of a config source. */
export interface ConfigSnapshot {
  model: ConfigModel | null;
  sockets: Array<{ text: string; listener: SharedListener; ino: number | null }>;
}

/** The config as a release: one process type per program, in the config's start order (priority, name). */
export function releaseFromConfig(model: ConfigModel, version: number, file: string): PreparedRelease {
  return {
    version,
    releaseArgs: null,
    env: {},
    slug: '',
    stack: '',
    processes: model.programs.map((p) => ({ type: p.name, args: p.processes[0]?.argv ?? [], quantity: programQuantity(p), program: p })),
    cwd: dirname(file),
    slugKey: null,
  };
}

export class ConfigSource implements ReleaseSource {
  readonly versioned = false;
  rejected: Rejection | null = null;
  /** The model last read (warnings are said once start-up succeeded). */
  model: ConfigModel | null = null;
  /** Bound sockets by their socket= text, each with what closes it (once) and, for a unix one, its file's inode. */
  private readonly sockets = new Map<string, { listener: SharedListener; release: () => void; ino: number | null }>();
  private cleanup: Cleanup | null = null;

  constructor(
    readonly file: string,
    private readonly cwd: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {}

  describe(): string {
    return `config ${this.file}`;
  }

  private read(): ConfigModel {
    return readConfig(this.file, { cwd: this.cwd, env: this.env });
  }

  /** The file read now, checked, without changing anything (`reread`). */
  peek(): ConfigModel {
    const model = this.read();
    this.checkUsers(model);
    return model;
  }

  firstLook(warn: Warn): FirstLook {
    let model: ConfigModel;
    try {
      model = this.read();
    } catch (err) {
      // A config error is a usage error: one line FILE:LINE, exit 2.
      if (err instanceof ConfigError) throw new UsageError(err.message);
      throw err;
    }
    this.checkUsers(model);
    this.model = model;
    for (const w of model.warnings) warn(`${where(w.loc)}: ${w.message}`);
    return { initial: releaseFromConfig(model, 1, this.file), webPossible: false, port: undefined };
  }

  /** user=: another user than the driver's own needs root (the launcher's setgid/setuid); otherwise one line. */
  private checkUsers(model: ConfigModel): void {
    const uid = process.getuid?.() ?? 0;
    if (uid === 0) return;
    for (const p of model.programs) {
      const x = p.processes[0];
      if (x?.user && x.user.uid !== uid) {
        throw new UsageError(`${where(p.loc)}: [program:${p.name}] user=${x.user.name}: the driver must run as root to run a program as another user (it runs as uid ${uid})`);
      }
    }
  }

  /** Bind every program's socket= not bound yet (at start, and for a config read again); a failure names the program. */
  async bindSockets(model: ConfigModel, cleanup: Cleanup): Promise<void> {
    this.cleanup = cleanup;
    for (const p of model.programs) {
      const spec = p.processes[0]?.socket ?? null;
      if (!spec) continue;
      const listener = this.sockets.get(spec.text)?.listener ?? (await this.bind(p, spec, cleanup));
      try {
        checkHandoff(p.processes[0]?.handoff ?? [], this.handed([listener]));
      } catch (err) {
        throw new StartupError(`${where(p.loc)}: [program:${p.name}] handoff: ${(err as Error).message}`);
      }
    }
  }

  private async bind(p: ProgramConfig, spec: SocketSpec, cleanup: Cleanup): Promise<SharedListener> {
    const what = `socket ${spec.text} of [program:${p.name}] (${where(p.loc)})`;
    if (spec.kind === 'unix') {
      let bound;
      try {
        bound = await listenUnixBind({ text: spec.text, path: spec.path, mode: spec.mode, nonBlock: spec.nonBlock }, BACKLOG, (m) => this.log.warn(m));
      } catch (err) {
        throw new StartupError(`${what}: ${(err as Error).message}`);
      }
      let ino: number | null = null;
      try {
        ino = lstatSync(spec.path).ino;
      } catch {
        /* checked by listenUnixBind just now */
      }
      return this.keep(spec.text, { fd: bound.fd, family: 'unix', address: spec.path, port: 0, text: spec.text }, bound.release, cleanup, ino);
    }
    let bind;
    try {
      bind = await resolveBind(parseBindSpec(spec.text.slice('tcp://'.length)), null);
    } catch (err) {
      throw new StartupError(`${what}: ${(err as Error).message}`);
    }
    const fd = listenOn(bind, { backlog: BACKLOG, v6Only: null, what });
    return this.keep(spec.text, { fd, family: bind.family, address: bind.address, port: native.getsockname(fd).port, text: `${bind.address}:${bind.port}` }, () => native.close(fd), cleanup);
  }

  /** A socket bound: kept by its socket= text; closed once, by closeUnused or at exit, whichever comes first. */
  private keep(text: string, listener: SharedListener, release: () => void, cleanup: Cleanup, ino: number | null = null): SharedListener {
    this.sockets.set(text, { listener, release, ino });
    cleanup.add(() => this.closeSocket(text));
    return listener;
  }

  private closeSocket(text: string): boolean {
    const s = this.sockets.get(text);
    if (!s) return false;
    this.sockets.delete(text);
    s.release();
    return true;
  }

  /**
   * Close every socket no program uses any more (`used`: the socket= texts of the running
   * config's programs and of every group still running processes): a removed or changed
   * program's socket goes once its last process is gone, its unix socket file with it.
   */
  closeUnused(used: ReadonlySet<string>): string[] {
    const closed: string[] = [];
    for (const text of [...this.sockets.keys()]) {
      if (used.has(text)) continue;
      if (this.closeSocket(text)) closed.push(text);
    }
    return closed;
  }

  private handed(listeners: readonly SharedListener[]): HandedSocket[] {
    return listeners.map((s, i) => ({ childFd: 3 + i, family: s.family, address: s.address ?? '', port: s.port ?? 0, text: s.text ?? '' }));
  }

  /** The sockets a program's processes get (fd 3). */
  listenersFor(p: ProgramConfig | undefined): SharedListener[] {
    const spec = p?.processes[0]?.socket;
    const l = spec ? this.sockets.get(spec.text)?.listener : undefined;
    return l ? [l] : [];
  }

  hasSockets(): boolean {
    return this.sockets.size > 0;
  }

  async readAgain(current: PreparedRelease | null, _running: boolean, warn: Warn): Promise<PreparedRelease> {
    const model = this.read();
    const next = await this.install(model, current);
    for (const w of model.warnings) warn(`${where(w.loc)}: ${w.message}`);
    return next;
  }

  /**
   * `model` becomes the running config (update, add, remove): its users checked, its new
   * sockets bound (a failure changes nothing), and the release that runs it.
   */
  async install(model: ConfigModel, current: PreparedRelease | null): Promise<PreparedRelease> {
    this.checkUsers(model);
    if (this.cleanup) await this.bindSockets(model, this.cleanup);
    this.model = model;
    return releaseFromConfig(model, (current?.version ?? 0) + 1, this.file);
  }

  /** The running config and its bound sockets, for the next image of a reload. */
  snapshot(): ConfigSnapshot {
    return {
      model: this.model,
      sockets: [...this.sockets].map(([text, s]) => ({ text, listener: s.listener, ino: s.ino })),
    };
  }

  /** The fds a reload carries. */
  static fds(snap: ConfigSnapshot): number[] {
    return snap.sockets.map((s) => s.listener.fd);
  }

  /**
   * The new image: the old one's running config and sockets (each checked to be a listening
   * socket still), closed at exit (a unix socket's file only if it is still ours).
   */
  adopt(snap: ConfigSnapshot, cleanup: Cleanup): void {
    this.cleanup = cleanup;
    this.model = snap.model;
    for (const s of snap.sockets) {
      const fd = s.listener.fd;
      if (!native.fdInfo(fd).listening) throw new StartupError(`reload: fd ${fd} (socket ${s.text}) is not a listening socket any more`);
      native.setCloexec(fd, true);
      const release = s.listener.family === 'unix' && s.ino !== null ? releaser(fd, s.listener.address ?? '', s.ino) : () => native.close(fd);
      this.keep(s.text, s.listener, release, cleanup, s.ino);
    }
  }

  watch(): void {
    /* nothing arrives by itself: `upgrade` and SIGHUP read the file again */
  }

  close(): void {
    /* the sockets are closed by the driver's cleanup */
  }
}
