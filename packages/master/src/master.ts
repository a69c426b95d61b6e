import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { setPriority } from 'node:os';
import { resolve, dirname, basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { CoreConfig, CoreSnapshot, Event } from '@einhyrningsins/core';
import { defaultSocketPath, type Request } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import { parseBindSpec, resolveBind, type ResolvedBind } from './bind-spec.js';
import { dispatch, type CommandContext } from './commands.js';
import { ControlServer, type ControlConnection } from './control-server.js';
import { StartupError } from './errors.js';
import { Logger } from './log.js';
import type { Options } from './options.js';
import { resolveProgram } from './program.js';
import { WorkerGroup } from './worker-group.js';
import { Reaper } from './reaper.js';
import { MemoryKeeper } from './memory.js';
import { Cleanup } from './cleanup.js';
import { listenOn } from './listen.js';
import type { SyslogTarget } from './syslog.js';
import { einhornStateYaml, stateObject, statusText, type MasterFacts } from './state-view.js';
import { VERSION } from './version.js';

const { O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fsConstants;

interface BoundSocket {
  bind: ResolvedBind;
  fd: number;
  port: number;
}

interface Route {
  conn: ControlConnection;
  requestId: string | number | undefined;
  /** einhorn streams progress only to requests that carry an id. */
  streaming: boolean;
  sent: number;
}

function coreConfig(o: Options): Partial<CoreConfig> {
  return {
    number: o.number,
    ackMode:
      o.ackMode.kind === 'manual'
        ? { kind: 'manual', deadlineMs: o.ackTimeoutSec * 1000 }
        : { kind: 'timer', ms: o.ackMode.seconds * 1000 },
    minReadyMs: o.minReadySec * 1000,
    retries: o.retries ?? Infinity,
    upgradeRetries: o.retries ?? 3,
    respawnDelayMs: o.seconds * 1000,
    signalTimeoutMs: o.signalTimeoutSec > 0 ? o.signalTimeoutSec * 1000 : null,
    maxUnacked: o.maxUnacked ?? Infinity,
    maxUpgradeAdditional: o.maxUpgradeAdditional ?? Infinity,
  };
}

export class Master {
  private group: WorkerGroup | undefined;
  private readonly log: Logger;
  private readonly routes = new Map<number, Route>();
  private nextRoute = 1;
  private server: ControlServer | null = null;
  private sockets: BoundSocket[] = [];
  private readonly cleanup = new Cleanup();
  private readonly t0 = performance.now();
  private readonly wall0 = Date.now();
  /** The control socket's path, its directory resolved once the socket exists. */
  private socketPath: string;
  private readonly cwd = process.cwd();
  private exiting = false;
  private reaper: Reaper | null = null;
  private readonly commandContext: CommandContext;

  constructor(private readonly opts: Options) {
    this.log = new Logger(opts.verbosity, process.pid);
    this.socketPath = resolve(opts.socketPath ?? defaultSocketPath(opts.commandName));
    const log = this.log;
    this.commandContext = {
      feed: (ev) => this.feed(ev),
      route: (conn, req) => {
        const id = this.nextRoute++;
        this.routes.set(id, { conn, requestId: req.id, streaming: req.id !== undefined, sent: 0 });
        return id;
      },
      stateYaml: () => einhornStateYaml(this.snapshot(), this.facts()),
      statusText: () => statusText(this.snapshot(), this.facts()),
      stateObject: () => stateObject(this.snapshot(), this.facts()),
      masterPid: process.pid,
      version: VERSION,
      commandName: opts.commandName,
      get verbosity() {
        return log.verbosity;
      },
      setVerbosity: (v) => {
        log.verbosity = v;
      },
      log: (level, message) => log.log(level, message),
    };
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  /** Start-up: every step that can fail runs before the first child starts. */
  async start(): Promise<void> {
    try {
      if (this.opts.syslog || this.opts.syslogTo) {
        // Loaded only when asked for: its native addon and client cost start-up time.
        const { SyslogSink, parseSyslogUrl } = await import('./syslog.js');
        const targets: SyslogTarget[] = [];
        if (this.opts.syslog) targets.push({ kind: 'local', path: this.opts.syslogSocket });
        if (this.opts.syslogTo) targets.push(parseSyslogUrl(this.opts.syslogTo));
        const sink = new SyslogSink(targets, this.opts.commandName ? `einhyrningsins-${this.opts.commandName}` : 'einhyrningsins', process.pid);
        this.log.sink = (level, message) => sink.write(level, message);
        this.cleanup.add(() => {
          this.log.sink = null;
          sink.close();
        });
      }
      if (this.opts.niceMaster !== null) {
        try {
          setPriority(this.opts.niceMaster);
        } catch (err) {
          throw new StartupError(`--nice: cannot set the master's niceness to ${this.opts.niceMaster}: ${(err as Error).message}`);
        }
      }
      if (this.opts.lockfile) this.takeLock(resolve(this.opts.lockfile));
      resolveProgram(this.opts.program as string, process.env.PATH, this.cwd);
      await this.bindAll();
      // The control socket last but one: a failure above never touches a socket file.
      this.server = await ControlServer.open(this.socketPath, this.opts.socketMode, this.log, (c, r) => this.onRequest(c, r), {
        idleTimeoutMs: this.opts.controlIdleTimeoutSec * 1000,
      });
      const server = this.server;
      // Children get the resolved path: a symlink in it swapped later cannot redirect their acks.
      this.socketPath = server.path;
      this.cleanup.add(() => server.close());
      if (this.opts.pidfile) this.writePidfile(resolve(this.opts.pidfile));
    } catch (err) {
      this.cleanup.run();
      throw err;
    }
    const memory = new MemoryKeeper();
    this.cleanup.add(() => memory.stop());
    this.group = new WorkerGroup({
      name: null,
      core: coreConfig(this.opts),
      launch: {
        program: this.opts.program as string,
        args: this.opts.programArgs,
        env: process.env,
        dropEnv: this.opts.dropEnv,
        cwd: this.cwd,
      },
      listeners: this.sockets.map((s) => ({ fd: s.fd, family: s.bind.family })),
      socketPath: this.socketPath,
      killChildrenOnExit: this.opts.killChildrenOnExit,
      niceWorker: this.opts.niceWorker,
      ...(this.opts.commandSocketAsFd ? { adoptControlFd: (fd: number, pid: number) => this.server?.adopt(fd, pid) } : {}),
      log: this.log,
      onReply: (to, message, wait, ok) => this.reply(to, message, wait, ok),
      onExit: (code) => this.exit(code),
      onWorkerExit: () => memory.poke(),
      now: () => this.now(),
    });
    this.installSignals();
    this.installLastResort();
    this.startReaper();
    const binds = this.sockets.map((s) => `${s.bind.family === 6 ? `[${s.bind.address}]` : s.bind.address}:${s.port}`);
    this.log.info(
      `Master ${process.pid} up: control socket ${this.socketPath}` + (binds.length ? `, listening on ${binds.join(', ')}` : ''),
    );
    this.feed({ type: 'start' });
  }

  // ---- start-up steps -------------------------------------------------------

  private takeLock(path: string): void {
    let fd: number;
    try {
      // Never through a symlink (a dangling one would make us create the file it names), never
      // blocking on a FIFO; an existing regular file left by an earlier master is reused.
      fd = openSync(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ELOOP') throw new StartupError(`lockfile ${path} is a symbolic link; refusing to follow it`);
      throw new StartupError(`cannot open lockfile ${path}: ${e.message}`);
    }
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new StartupError(`lockfile ${path} is not a regular file; refusing`);
    }
    let got: boolean;
    try {
      got = native.flock(fd);
    } catch (err) {
      closeSync(fd);
      throw new StartupError(`cannot lock ${path}: ${(err as Error).message}`);
    }
    if (!got) {
      closeSync(fd);
      throw new StartupError(`lockfile ${path} is held by another master`);
    }
    this.cleanup.add(() => {
      try {
        unlinkSync(path);
      } finally {
        closeSync(fd);
      }
    });
  }

  private async bindAll(): Promise<void> {
    const only = this.opts.ipv4Only ? 4 : this.opts.ipv6Only ? 6 : null;
    const specs = this.opts.binds.map((b) => parseBindSpec(b));
    for (const spec of specs) {
      const bind = await resolveBind(spec, only);
      const fd = listenOn(bind, { backlog: this.opts.backlog, v6Only: this.opts.ipv6Only ? true : null, what: `-b ${spec.text}` });
      this.cleanup.add(() => native.close(fd));
      this.sockets.push({ bind, fd, port: native.getsockname(fd).port });
    }
  }

  private writePidfile(path: string): void {
    // A fresh file under an unpredictable name, created exclusively: a symlink or file planted
    // at the temporary name is never followed or written (rename then replaces `path` itself,
    // never what a symlink there points to).
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        /* nothing written */
      }
      throw new StartupError(`cannot write pidfile ${path}: ${(err as Error).message}`);
    }
    this.cleanup.add(() => {
      if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
    });
  }

  /**
   * What workers leave behind is reparented to us as a subreaper (default) or as PID 1 (a
   * container's entrypoint, where every orphan of the container is ours): reap it all.
   */
  private startReaper(): void {
    if (!this.opts.subreaper && process.pid !== 1) return;
    const group = this.group as WorkerGroup;
    const reaper = new Reaper({
      isWorker: (pid) => group.hasPid(pid),
      workers: () => group.pids(),
      signalTimeoutMs: this.opts.signalTimeoutSec > 0 ? this.opts.signalTimeoutSec * 1000 : null,
      log: this.log,
    });
    try {
      reaper.start(this.opts.subreaper);
    } catch (err) {
      this.log.warn(`cannot become a child subreaper: ${(err as Error).message}`);
      reaper.start(false);
    }
    this.reaper = reaper;
    this.cleanup.add(() => reaper.stop());
  }

  private installSignals(): void {
    const on = (sig: NodeJS.Signals, fn: () => void) => process.on(sig, fn);
    on('SIGHUP', () => {
      this.log.info('Got SIGHUP: upgrading');
      this.feed({ type: 'upgrade', mode: 'smooth' });
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR2'] as const) {
      on(sig, () => {
        this.log.info(`Got ${sig}: stopping the workers gracefully`);
        this.feed({ type: 'shutdown', signal: 'SIGUSR2' });
      });
    }
    on('SIGTTIN', () => this.feed({ type: 'inc' }));
    on('SIGTTOU', () => this.feed({ type: 'dec' }));
    on('SIGUSR1', () => this.feed({ type: 'signal', signals: ['SIGUSR1'] }));
  }

  // ---- control socket ---------------------------------------------------------

  feed(event: Event): void {
    this.group?.feed(event);
  }

  /**
   * A bug must not leave files behind: log it, remove the control socket, pidfile and
   * lockfile, and exit 70. The children are left running, as after a SIGKILL of the
   * master (with -k they get SIGUSR2 from the kernel).
   */
  private installLastResort(): void {
    const fatal = (err: unknown) => {
      try {
        this.log.error(`internal error, exiting: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      } catch {
        /* logging is best effort here */
      }
      this.group?.stopTimers();
      this.server?.unlink();
      this.cleanup.run();
      process.exit(70);
    };
    process.on('uncaughtException', fatal);
    process.on('unhandledRejection', fatal);
  }

  private snapshot(): CoreSnapshot {
    return (this.group as WorkerGroup).snapshot();
  }

  private onRequest(conn: ControlConnection, req: Request): void {
    if (!this.group) {
      conn.send({ message: 'The master is still starting up; try again.', error: true }, req.id);
      return;
    }
    dispatch(this.commandContext, conn, req);
  }

  private reply(to: number, message: string, wait: boolean, ok: boolean): void {
    const route = this.routes.get(to);
    if (!route) return;
    if (!wait) this.routes.delete(to);
    if (route.conn.closed) {
      this.routes.delete(to);
      return;
    }
    // Clients without a request id get exactly one reply (einhorn's old protocol).
    const fields: { message: string; wait?: boolean; error?: boolean } = { message };
    if (!ok) fields.error = true;
    if (!route.streaming) {
      if (route.sent === 0) route.conn.send(fields);
      route.sent += 1;
      return;
    }
    route.sent += 1;
    if (wait) fields.wait = true;
    route.conn.send(fields, route.requestId);
  }

  private facts(): MasterFacts {
    const o = this.opts;
    return {
      masterPid: process.pid,
      version: VERSION,
      commandName: o.commandName,
      socketPath: this.socketPath,
      pidfile: o.pidfile ? resolve(o.pidfile) : null,
      lockfile: o.lockfile ? resolve(o.lockfile) : null,
      program: [o.program as string, ...o.programArgs],
      binds: this.sockets.map((s) => ({
        text: s.bind.text,
        address: s.bind.address,
        port: s.port,
        flags: [s.bind.reuseAddr ? 'r' : '', s.bind.nonBlock ? 'n' : '', s.bind.reusePort ? 'p' : ''].filter(Boolean),
      })),
      backlog: o.backlog,
      verbosity: this.log.verbosity,
      ackMode: o.ackMode.kind === 'manual' ? { kind: 'manual', timeoutSec: o.ackTimeoutSec } : o.ackMode,
      killChildrenOnExit: o.killChildrenOnExit,
      startedAtWall: this.wall0,
      wall: (t) => this.wall0 + t,
      now: this.now(),
    };
  }

  // ---- exit -------------------------------------------------------------------

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    this.server?.unlink();
    const finish = () => {
      this.cleanup.run();
      process.exitCode = code;
      // Let pending replies flush; never hang on a stray handle.
      setTimeout(() => process.exit(code), 500).unref();
    };
    // What the workers left behind goes before the master does (it would outlive it).
    const timeout = this.opts.signalTimeoutSec > 0 ? this.opts.signalTimeoutSec * 1000 : 30_000;
    if (this.reaper) this.reaper.drain(timeout).then(finish, finish);
    else finish();
  }
}
