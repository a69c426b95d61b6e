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
  fetchTargetOf,
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
import { isMinisvConfig, readMinisvConfig, type MinisvConfig } from './minisv/json-config.js';

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
    readonly env: NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {}

  describe(): string {
    return `config ${this.file}`;
  }

  /** minisv.json's own settings (logs, logreopen, http) when the file is minisv's JSON. */
  minisv: MinisvConfig | null = null;
  /** Programs added online (`POST /NAME`): kept across `update` and SIGHUP until deleted. */
  private readonly online = new Map<string, ProgramConfig>();

  private read(): ConfigModel {
    let model: ConfigModel;
    if (isMinisvConfig(this.file)) {
      const m = readMinisvConfig(this.file, this.cwd);
      this.minisv = m;
      model = m.model;
    } else model = readConfig(this.file, { cwd: this.cwd, env: this.env });
    return this.withOnline(model);
  }

  /** The file's programs and those added online (a name the file now defines is the file's again). */
  private withOnline(model: ConfigModel): ConfigModel {
    if (this.online.size === 0) return model;
    const names = new Set(model.programs.map((p) => p.name));
    for (const n of [...this.online.keys()]) {
      if (!names.has(n)) continue;
      this.log.warn(`${this.file} now defines ${n}, which was added through the HTTP API: the file's definition counts from now on`);
      this.online.delete(n);
    }
    const extra = [...this.online.values()];
    return {
      ...model,
      programs: [...model.programs, ...extra],
      groups: [...model.groups, ...extra.map((p) => ({ name: p.name, priority: p.priority, programs: [p.name], explicit: false, loc: p.loc }))],
    };
  }

  /** Whether `name` was added online. */
  isOnline(name: string): boolean {
    return this.online.has(name);
  }

  /** `POST /NAME`: the running set plus `p` (its socket bound first), as a release to apply. */
  async add(p: ProgramConfig, current: PreparedRelease | null): Promise<PreparedRelease> {
    const model = this.model as ConfigModel;
    const next: ConfigModel = {
      ...model,
      programs: [...model.programs, p],
      groups: [...model.groups, { name: p.name, priority: p.priority, programs: [p.name], explicit: false, loc: p.loc }],
    };
    // A task's fetch: its executable, checked as a config file's (not another fetching program's).
    this.checkFetch(next);
    if (this.cleanup) await this.bindSockets({ ...next, programs: [p] }, this.cleanup);
    this.online.set(p.name, p);
    this.model = next;
    return releaseFromConfig(next, (current?.version ?? 0) + 1, this.file);
  }

  /** `DELETE /NAME`: the running set without it (a program of the file comes back at `update`). */
  remove(name: string, current: PreparedRelease | null): PreparedRelease {
    const model = this.model as ConfigModel;
    this.online.delete(name);
    const group = model.programs.find((p) => p.name === name)?.group;
    const next: ConfigModel = {
      ...model,
      programs: model.programs.filter((p) => p.name !== name),
      groups: model.groups.map((g) => (g.name === group ? { ...g, programs: g.programs.filter((n) => n !== name) } : g)).filter((g) => g.programs.length > 0),
    };
    this.model = next;
    return releaseFromConfig(next, (current?.version ?? 0) + 1, this.file);
  }

  /** The file read now, checked, without changing anything (`reread`). */
  peek(): ConfigModel {
    const model = this.read();
    this.checkUsers(model);
    this.checkFetch(model);
    return model;
  }

  /**
   * fetch=: the executable each program's fetcher replaces (found as a spawn finds it, in
   * the program's PATH and directory), writable where it is, and not another fetching
   * program's. A problem is one line at the fetch= key.
   */
  checkFetch(model: ConfigModel): Map<string, string> {
    const targets = new Map<string, string>();
    const owner = new Map<string, string>();
    for (const p of model.programs) {
      const x = p.processes[0];
      if (!x?.fetch || !p.fetchLoc) continue;
      const at = `${where(p.fetchLoc)}: [program:${p.name}] fetch`;
      const got = fetchTargetOf(x.argv[0] as string, { ...this.env, ...x.environment }, x.directory ?? dirname(this.file));
      if ('problem' in got) throw new UsageError(`${at}: ${got.problem}`);
      const other = owner.get(got.target);
      if (other !== undefined) throw new UsageError(`${at}: ${got.target} is already replaced by the fetch= of [program:${other}]; one fetcher per executable`);
      owner.set(got.target, p.name);
      targets.set(p.name, got.target);
    }
    return targets;
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
    this.checkFetch(model);
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
    this.checkFetch(model);
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

  /** What else stops when the driver stops taking releases (the programs' fetch= and watch=). */
  private readonly closers: Array<() => void> = [];

  onClose(f: () => void): void {
    this.closers.push(f);
  }

  close(): void {
    // (the sockets are closed by the driver's cleanup)
    for (const f of this.closers.splice(0)) f();
  }
}
