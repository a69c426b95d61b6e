import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { setPriority } from 'node:os';
import { resolve, dirname, basename, join } from 'node:path';
import { monotonicMs } from './clock.js';
import type { CoreConfig, CoreSnapshot, Event } from '@einhyrningsins/core';
import { defaultSocketPath, type Request } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import { parseBindSpec, resolveBind } from './bind-spec.js';
import { isUnixBind, listenUnixBind, parseUnixBind, releaser } from './unix-bind.js';
import { Notifier, SYSTEMD_VARS, listenFds } from './systemd.js';
import { dispatch, type CommandContext } from './commands.js';
import { ControlServer, type ControlConnection } from './control-server.js';
import { StartupError } from './errors.js';
import { Logger } from './log.js';
import { UsageError, rubyOnlyWarning, type Options } from './options.js';
import { setUpHandoff } from './handoff-setup.js';
import { watchReusePort } from './reuseport-watch.js';
import { stopSignalWarning } from './known-servers.js';
import { checkInterpreter, resolveProgram } from './program.js';
import { WorkerGroup } from './worker-group.js';
import { ExitWithChild } from './exit-with-child.js';
import { Releases, fetchTarget } from './releases.js';
import { Reaper } from './reaper.js';
import { MemoryKeeper } from './memory.js';
import type { ChildProcess } from 'node:child_process';
import { prefixOutput } from './output-prefix.js';
import { SlotHistory } from './slot-history.js';
import { ProcStats } from './proc-stats.js';
import { Cleanup } from './cleanup.js';
import { listenOn } from './listen.js';
import type { SyslogTarget } from './syslog.js';
import { einhornStateYaml, stateObject, statusText, type MasterFacts } from './state-view.js';
import { VERSION } from './version.js';
import { STATE_FD_OPTION, execGapMs, readState, upgradeCheck, writeState, type BoundSocket, type ReloadState } from './reload.js';

const { O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fsConstants;

function socketLabel(s: BoundSocket): string {
  if (s.family === 'unix') return `unix:${s.address}`;
  return `${s.family === 6 ? `[${s.address}]` : s.address}:${s.port}`;
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
    drainSignal: o.stopSignal,
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
  private readonly t0 = monotonicMs();
  /** Date.now() at this image's clock origin (t0): core times are relative to it. */
  private readonly wall0 = Date.now();
  /** When the first image of this master started (uptime survives reloads). */
  private startedAtWall = this.wall0;
  /** Reloads so far (einhorn's state `generation`). */
  private reloads = 0;
  private reloading = false;
  private lock: { fd: number; path: string } | null = null;
  private notifier: Notifier | null = null;
  private readySent = false;
  private reloadingSent = false;
  private stoppingSent = false;
  /** The control socket's path, its directory resolved once the socket exists. */
  private socketPath: string;
  private readonly cwd = process.cwd();
  private exiting = false;
  /** Events (from signals) that arrive before the group exists; null once it runs. */
  private pending: Event[] | null = [];
  private reaper: Reaper | null = null;
  private readonly commandContext: CommandContext;
  private readonly procStats = new ProcStats();
  /** --watch and --fetch: upgrades that the program's releases trigger. */
  private releases: Releases | null = null;

  constructor(
    private readonly opts: Options,
    /** The command line this image was started with (re-used by reload). */
    private readonly argv: readonly string[] = [],
    /** Set when this image is the new one of a reload: the snapshot of the old one. */
    private readonly stateFd: number | null = null,
  ) {
    this.log = new Logger(opts.verbosity, process.pid);
    this.socketPath = resolve(opts.socketPath ?? defaultSocketPath(opts.commandName));
    const log = this.log;
    this.commandContext = {
      feed: (ev) => this.feed(ev),
      reload: (conn, req, then) => void this.reload(conn, req, then),
      // einhorn's upgrade with --reexec-as: the master first (not with --prefix-output, which cannot reload).
      upgradeReexecs: opts.reexecAs !== null && !opts.prefixOutput,
      route: (conn, req) => {
        const id = this.nextRoute++;
        this.routes.set(id, { conn, requestId: req.id, streaming: req.id !== undefined, sent: 0 });
        return id;
      },
      stateYaml: () => einhornStateYaml(this.snapshot(), this.facts()),
      statusText: () => statusText(this.snapshot(), this.facts()),
      stateObject: () => stateObject(this.snapshot(), this.facts()),
      masterPid: process.pid,
      stopSignal: opts.stopSignal,
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
    return monotonicMs() - this.t0;
  }

  /** Start-up: every step that can fail runs before the first child starts. */
  async start(): Promise<void> {
    let restored: ReloadState | null = null;
    // Signals first: a TERM that arrives while the sockets are being set up must not
    // kill the master with Node's default action and leave the socket file behind.
    // Until the group exists, events wait in `pending` (see feed()).
    this.installSignals();
    // Once per master, not again in the image a reload starts.
    const rubyOnly = this.stateFd === null ? rubyOnlyWarning(this.opts) : null;
    if (rubyOnly) this.log.warn(rubyOnly);
    const stopSignal = this.stateFd === null ? stopSignalWarning(this.opts.program, this.opts.programArgs, this.opts.stopSignal) : null;
    if (stopSignal) this.log.warn(stopSignal);
    const notifier = new Notifier(process.env, this.log);
    this.notifier = notifier;
    this.cleanup.add(() => notifier.close());
    try {
      native.ensureNative();
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
      if (this.stateFd !== null) {
        restored = await this.takeOver(this.stateFd);
      } else {
        Master.check(this.opts);
        if (this.opts.lockfile) this.takeLock(resolve(this.opts.lockfile));
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
      }
    } catch (err) {
      this.cleanup.run();
      throw err;
    }
    let handoff: Record<string, string> | null;
    try {
      const o = this.opts;
      handoff = setUpHandoff({ names: o.handoff, sockets: this.sockets, env: process.env, program: o.program, cwd: this.cwd, log: this.log, warn: !restored });
    } catch (err) {
      this.cleanup.run();
      throw err;
    }
    const memory = new MemoryKeeper();
    this.cleanup.add(() => memory.stop());
    const exitWithChild = this.opts.exitWithChild
      ? new ExitWithChild({ snapshot: () => this.snapshot(), feed: (ev) => this.feed(ev), stopSignal: this.opts.stopSignal, log: this.log })
      : null;
    this.group = new WorkerGroup({
      name: null,
      core: coreConfig(this.opts),
      launch: {
        program: this.opts.program as string,
        args: this.opts.programArgs,
        env: process.env,
        // What systemd told the master is not for the children.
        dropEnv: [...this.opts.dropEnv, ...SYSTEMD_VARS],
        cwd: this.cwd,
        ...(handoff ? { extraEnv: () => handoff } : {}),
      },
      listeners: this.sockets.map((s) => ({ fd: s.fd, family: s.family })),
      socketPath: this.socketPath,
      killChildrenOnExit: this.opts.killChildrenOnExit,
      niceWorker: this.opts.niceWorker,
      upgradeNice: this.opts.upgradeNice,
      ...(this.opts.prefixOutput
        ? { output: (child: ChildProcess, slot: number) => prefixOutput(child, slot, { name: this.opts.commandName, time: this.opts.prefixOutput === 'time' }) }
        : {}),
      ...(this.opts.commandSocketAsFd ? { adoptControlFd: (fd: number, pid: number) => this.server?.adopt(fd, pid) } : {}),
      log: this.log,
      onReply: (to, message, wait, ok) => this.reply(to, message, wait, ok),
      onExit: (code) => this.exit(exitWithChild ? exitWithChild.exitCode(code) : code),
      ...(exitWithChild ? { onChildExit: (pid: number, _slot: number, code: number | null, signal: string | null) => exitWithChild.childExited(pid, code, signal) } : {}),
      onWorkerExit: () => memory.poke(),
      now: () => this.now(),
      onChange: () => {
        this.notify();
        this.releases?.changed();
      },
    });
    if (Releases.wanted(this.opts)) {
      const releases = new Releases(this.opts, {
        group: { feed: (ev) => this.feed(ev), snapshot: () => this.snapshot() },
        log: this.log,
        now: () => this.now(),
        env: process.env,
        cwd: this.cwd,
      });
      this.releases = releases;
      this.cleanup.add(() => releases.stop());
      releases.start();
    }
    this.installLastResort();
    this.startReaper();
    const stopWatch = watchReusePort(this.sockets, this.log);
    this.cleanup.add(stopWatch);
    const binds = this.sockets.map(socketLabel);
    if (restored) {
      this.resumeFrom(restored);
      return;
    }
    this.log.always(
      `Master ${process.pid} up: control socket ${this.socketPath}` + (binds.length ? `, listening on ${binds.join(', ')}` : ''),
    );
    const pending = this.pending ?? [];
    this.pending = null;
    const stop = pending.find((ev) => ev.type === 'shutdown');
    if (stop) {
      // Stopped before anything ran: start nothing, leave nothing.
      this.log.info('Stopping: a stop signal arrived during start-up');
      this.feed(stop);
      return;
    }
    this.feed({ type: 'start' });
    for (const ev of pending) this.feed(ev);
  }

  /** What must hold before anything is bound (also the whole of --upgrade-check). */
  static check(opts: Options): void {
    native.ensureNative();
    native.assertLauncher();
    if (opts.program !== null) {
      try {
        resolveProgram(opts.program, process.env.PATH, process.cwd());
      } catch (err) {
        if (opts.bareAckModeThenProgram === opts.program && !opts.program.includes('/')) {
          throw new UsageError(
            `-m ${opts.program}: unknown ack mode (expected manual or a number of seconds; ` +
              `to run a program named ${opts.program} after a bare -m, write -m -- ${opts.program})`,
          );
        }
        throw err;
      }
      checkInterpreter(opts.program, process.env.PATH, process.cwd());
    }
    if (opts.program !== null && opts.fetch !== null) fetchTarget(opts, process.env, process.cwd());
    if (opts.reexecAs) {
      try {
        resolveProgram(opts.reexecAs[0] as string, process.env.PATH, process.cwd());
      } catch (err) {
        throw new StartupError(`--reexec-as: ${(err as Error).message}`);
      }
    }
  }

  // ---- reload: re-execute the master in place ---------------------------------

  /** The command the master re-executes as: --reexec-as, else this node and this program. */
  private reexecCommand(): { path: string; words: string[] } {
    if (this.opts.reexecAs) {
      const words = this.opts.reexecAs;
      return { path: resolveProgram(words[0] as string, process.env.PATH, this.cwd), words };
    }
    const words = [process.execPath, ...process.execArgv, process.argv[1] as string];
    return { path: process.execPath, words };
  }

  private async reload(conn: ControlConnection, req: Request, then?: 'upgrade'): Promise<void> {
    const refuse = (why: string) => {
      this.log.warn(`Not reloading: ${why}`);
      conn.send({ message: `Not reloading: ${why}`, error: true }, req.id);
    };
    const snap = this.snapshot();
    if (this.exiting || snap.shuttingDown) return refuse('the master is stopping');
    if (this.reloading) return refuse('a reload is already in progress');
    // The children write into pipes this image reads; they would not survive the exec.
    if (this.opts.prefixOutput) return refuse("--prefix-output pipes the children's output through this process; use upgrade (or restart without --prefix-output)");
    if (snap.upgrade) return refuse(`an upgrade is in progress (generation ${snap.upgrade.generation}); reload when it is done`);
    this.reloading = true;
    const streaming = req.id !== undefined;
    const progress = (message: string) => {
      this.log.info(message);
      if (streaming) conn.send({ message, wait: true }, req.id);
    };
    let cmd: { path: string; words: string[] };
    try {
      cmd = this.reexecCommand();
    } catch (err) {
      this.reloading = false;
      return refuse(`--reexec-as: ${(err as Error).message}`);
    }
    progress(`Reloading einhyrningsins master ${process.pid}: checking the new code (${cmd.words.join(' ')} --upgrade-check)`);
    const failed = await upgradeCheck(cmd.path, cmd.words, this.argv, process.env);
    if (failed !== null) {
      this.reloading = false;
      this.log.error(`Reload aborted, the master keeps running: ${failed}`);
      conn.send({ message: `Reload aborted, the master keeps running: ${failed}`, error: true }, req.id);
      return;
    }
    if (this.exiting || this.snapshot().shuttingDown || this.snapshot().upgrade) {
      this.reloading = false;
      return refuse('the master started stopping or upgrading during the check');
    }
    progress('Upgrade check passed; re-executing the master');
    await this.flushConnections();
    let stateFd = -1;
    const inherited: number[] = [];
    try {
      const conns = this.server ? this.server.openConnections() : [];
      const state: ReloadState = {
        format: 1,
        version: VERSION,
        wall: Date.now(),
        monotonic: monotonicMs(),
        argv: [...this.argv],
        startedAtWall: this.startedAtWall,
        reloads: this.reloads + 1,
        sockets: this.sockets,
        control: { fd: (this.server as ControlServer).listenFd, path: this.socketPath, ino: (this.server as ControlServer).inode },
        connections: conns
          .filter((c) => c.fd !== null)
          .map((c) => ({
            fd: c.fd as number,
            boundPid: c.boundPid,
            unparsed: c.unparsed().toString('base64'),
            requester: c === conn,
            requestId: c === conn ? (req.id ?? null) : null,
            streaming: c === conn && streaming,
          })),
        lockfile: this.lock,
        pidfile: this.opts.pidfile ? resolve(this.opts.pidfile) : null,
        verbosity: this.log.verbosity,
        core: (this.group as WorkerGroup).serialize(),
        slots: (this.group as WorkerGroup).history.toJSON(),
        ...(then ? { then } : {}),
      };
      stateFd = writeState(state);
      // stdio too: Node marks 0, 1 and 2 close-on-exec, and the new image must log where this one did.
      for (const fd of [0, 1, 2, stateFd, state.control.fd, ...state.sockets.map((x) => x.fd), ...state.connections.map((c) => c.fd)]) {
        native.setCloexec(fd, false);
        inherited.push(fd);
      }
      if (this.lock) {
        native.setCloexec(this.lock.fd, false);
        inherited.push(this.lock.fd);
      }
      this.notifier?.reloading(`reloading the master (reload ${this.reloads + 1})`);
      const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
      native.execve(cmd.path, [...cmd.words, STATE_FD_OPTION, String(stateFd), ...this.argv], env);
    } catch (err) {
      // Still the old image: put everything back as it was and carry on.
      for (const fd of inherited) {
        try {
          native.setCloexec(fd, true);
        } catch {
          /* closed meanwhile */
        }
      }
      if (stateFd >= 0) closeSync(stateFd);
      this.reloading = false;
      this.readySent = false;
      this.notify();
      this.log.error(`Could not reload, the master keeps running: ${(err as Error).message}`);
      conn.send({ message: `Could not reload, the master keeps running: ${(err as Error).message}`, error: true }, req.id);
    }
  }

  /** Wait (at most 1 s) until every reply written has reached the kernel: nothing queued is lost in the exec. */
  private async flushConnections(): Promise<void> {
    const end = Date.now() + 1000;
    while (Date.now() < end && this.server && this.server.openConnections().some((c) => !c.flushed)) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The new image of a reload: take over the old one's fds and files instead of creating them. */
  private async takeOver(fd: number): Promise<ReloadState> {
    let state: ReloadState;
    try {
      state = readState(fd);
    } catch (err) {
      throw new StartupError(`cannot read the reload state on fd ${fd}: ${(err as Error).message}`);
    }
    for (const x of state.sockets) {
      const info = native.fdInfo(x.fd);
      if (!info.listening) throw new StartupError(`reload: fd ${x.fd} (${x.text}) is not a listening socket any more`);
      native.setCloexec(x.fd, true);
      this.cleanup.add(x.unixFile ? releaser(x.fd, x.unixFile.path, x.unixFile.ino) : () => native.close(x.fd));
      this.sockets.push(x);
    }
    if (state.lockfile) {
      native.setCloexec(state.lockfile.fd, true);
      this.holdLock(state.lockfile.fd, state.lockfile.path);
    }
    native.setCloexec(state.control.fd, true);
    this.server = await ControlServer.fromFd(
      state.control.fd,
      state.control.path,
      state.control.ino,
      this.opts.socketMode,
      this.log,
      (c, r) => this.onRequest(c, r),
      { idleTimeoutMs: this.opts.controlIdleTimeoutSec * 1000 },
    );
    this.socketPath = state.control.path;
    const server = this.server;
    this.cleanup.add(() => server.close());
    if (state.pidfile) this.removePidfileAtExit(state.pidfile);
    this.startedAtWall = state.startedAtWall;
    this.reloads = state.reloads;
    this.log.verbosity = state.verbosity;
    return state;
  }

  /** After takeOver: the group carries on from the old core, the connections are served again. */
  private resumeFrom(state: ReloadState): void {
    const group = this.group as WorkerGroup;
    // The exec took some time: every age grows by it (on the monotonic clock, see execGapMs).
    group.restore(state.core, execGapMs(state));
    group.history = SlotHistory.from(state.slots);
    const server = this.server as ControlServer;
    let requester: { conn: ControlConnection; id: string | number | null; streaming: boolean } | null = null;
    for (const c of state.connections) {
      native.setCloexec(c.fd, true);
      const conn = server.adoptConnection(c.fd, c.boundPid ?? null, Buffer.from(c.unparsed ?? '', 'base64'));
      if (c.requester) {
        conn.expectReply();
        requester = { conn, id: c.requestId, streaming: c.streaming };
      }
    }
    const workers = group.snapshot().workers.length;
    const message =
      `Reload done: master ${process.pid} is now einhyrningsins ${VERSION} (reload ${this.reloads}), ` +
      `${workers} worker${workers === 1 ? '' : 's'} adopted`;
    this.log.info(message);
    const pending = this.pending ?? [];
    this.pending = null;
    if (state.then === 'upgrade') {
      // einhorn's upgrade with --reexec-as: now the workers, from the new master; its reply ends the request.
      const streamId = requester?.streaming && requester.id !== null ? requester.id : undefined;
      if (streamId !== undefined) requester?.conn.send({ message, wait: true }, streamId);
      let replyTo: number | undefined;
      if (requester) {
        replyTo = this.nextRoute++;
        this.routes.set(replyTo, { conn: requester.conn, requestId: streamId, streaming: streamId !== undefined, sent: 0 });
      }
      this.feed({ type: 'upgrade', mode: 'smooth', ...(replyTo === undefined ? {} : { replyTo }) });
    } else if (requester) {
      requester.conn.send({ message }, requester.streaming && requester.id !== null ? requester.id : undefined);
    }
    for (const ev of pending) this.feed(ev);
    this.notify();
  }

  /** sd_notify: READY once the first workers are all up, RELOADING/READY around upgrades, STOPPING, STATUS. */
  private notify(): void {
    const n = this.notifier;
    if (!n?.enabled || !this.group) return;
    const snap = this.snapshot();
    const up = snap.workers.filter((w) => w.generation === snap.generation && w.state === 'up').length;
    const wanted = snap.config.number;
    let status = `${up}/${wanted} workers up, generation ${snap.generation}`;
    if (snap.upgrade) status += ', upgrading';
    else if (snap.lastUpgrade && !snap.lastUpgrade.ok) status += `, last upgrade failed: ${snap.lastUpgrade.message}`;
    if (snap.shuttingDown || this.exiting) {
      if (!this.stoppingSent) n.stopping();
      this.stoppingSent = true;
      return;
    }
    if (!this.readySent) {
      if (up >= wanted) {
        this.readySent = true;
        n.ready(status);
      } else n.status(status);
      return;
    }
    if (snap.upgrade && !this.reloadingSent) {
      this.reloadingSent = true;
      n.reloading(status);
    } else if (!snap.upgrade && this.reloadingSent) {
      this.reloadingSent = false;
      n.ready(status);
    } else n.status(status);
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
    this.holdLock(fd, path);
  }

  private holdLock(fd: number, path: string): void {
    this.lock = { fd, path };
    this.cleanup.add(() => {
      try {
        unlinkSync(path);
      } finally {
        closeSync(fd);
      }
    });
  }

  /** systemd's sockets first (EINHORN_FD_0, ...), then every -b in order. */
  private async bindAll(): Promise<void> {
    for (const a of listenFds(process.env, this.log)) {
      const name = native.getsockname(a.fd);
      this.cleanup.add(() => native.close(a.fd));
      this.sockets.push({ fd: a.fd, family: name.family, text: `systemd:${a.name}`, address: name.address, port: name.port, flags: [], unixFile: null });
      this.log.debug(`Took over fd ${a.fd} (${a.name}) from systemd`);
    }
    const only = this.opts.ipv4Only ? 4 : this.opts.ipv6Only ? 6 : null;
    const specs = this.opts.binds.map((b) => (isUnixBind(b) ? parseUnixBind(b, this.cwd) : parseBindSpec(b)));
    for (const spec of specs) {
      if ('path' in spec) {
        const { fd, release } = await listenUnixBind(spec, this.opts.backlog, (m) => this.log.warn(m));
        this.cleanup.add(release);
        const ino = lstatSync(spec.path).ino;
        this.sockets.push({ fd, family: 'unix', text: spec.text, address: spec.path, port: 0, flags: spec.nonBlock ? ['n'] : [], unixFile: { path: spec.path, ino } });
        continue;
      }
      const bind = await resolveBind(spec, only);
      const fd = listenOn(bind, { backlog: this.opts.backlog, v6Only: this.opts.ipv6Only ? true : null, what: `-b ${spec.text}` });
      this.cleanup.add(() => native.close(fd));
      this.sockets.push({
        fd,
        family: bind.family,
        text: bind.text,
        address: bind.address,
        port: native.getsockname(fd).port,
        flags: [bind.reuseAddr ? 'r' : '', bind.nonBlock ? 'n' : '', bind.reusePort ? 'p' : ''].filter(Boolean),
        unixFile: null,
      });
    }
  }

  private writePidfile(path: string): void {
    // A fresh file under an unpredictable name, created exclusively: a symlink or file planted
    // at the temporary name is never followed or written (rename then replaces `path` itself,
    // never what a symlink there points to).
    // (globalThis.crypto: node:crypto is loaded only now, with -e; it costs ~1.5 MB of RSS.)
    const random = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(6))).toString('hex');
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${random}.tmp`);
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
    this.removePidfileAtExit(path);
  }

  private removePidfileAtExit(path: string): void {
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
        this.feed({ type: 'shutdown', signal: this.opts.stopSignal });
      });
    }
    on('SIGTTIN', () => this.feed({ type: 'inc' }));
    on('SIGTTOU', () => this.feed({ type: 'dec' }));
    on('SIGUSR1', () => this.feed({ type: 'signal', signals: ['SIGUSR1'] }));
  }

  // ---- control socket ---------------------------------------------------------

  feed(event: Event): void {
    if (this.pending !== null) this.pending.push(event);
    else this.group?.feed(event);
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
    if (this.log.enabled('debug')) {
      const args = req.args.length ? ` ${req.args.join(' ')}` : '';
      this.log.debug(
        req.command === 'worker:ack'
          ? `ACK from pid ${req.pid ?? '?'} on control connection #${conn.id}`
          : `Control connection #${conn.id}: ${req.command}${args}${req.id !== undefined ? ` (id ${String(req.id)})` : ''}`,
      );
    }
    if (this.log.tracing) this.log.trace(`Control connection #${conn.id} request: ${JSON.stringify(req.raw)}`);
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
    if (this.log.tracing) this.log.trace(`Control connection #${route.conn.id} reply: ${JSON.stringify(fields)}`);
    route.conn.send(fields, route.requestId);
  }

  private facts(): MasterFacts {
    const o = this.opts;
    if (this.group) this.procStats.prune(new Set(this.snapshot().workers.map((w) => w.pid as number)));
    return {
      masterPid: process.pid,
      version: VERSION,
      commandName: o.commandName,
      socketPath: this.socketPath,
      pidfile: o.pidfile ? resolve(o.pidfile) : null,
      lockfile: o.lockfile ? resolve(o.lockfile) : null,
      program: [o.program as string, ...o.programArgs],
      binds: this.sockets.map((s) => ({
        text: s.text,
        address: s.address,
        port: s.port,
        flags: s.flags,
      })),
      backlog: o.backlog,
      verbosity: this.log.verbosity,
      ackMode: o.ackMode.kind === 'manual' ? { kind: 'manual', timeoutSec: o.ackTimeoutSec } : o.ackMode,
      killChildrenOnExit: o.killChildrenOnExit,
      startedAtWall: this.startedAtWall,
      bindFds: this.sockets.map((s) => s.fd),
      dropEnv: o.dropEnv,
      commandSocketAsFd: o.commandSocketAsFd,
      nice: { master: o.niceMaster, worker: o.niceWorker },
      reexecCommandline: o.reexecAs,
      reloads: this.reloads,
      reloading: this.reloading,
      lastSpinup: this.group?.lastSpinup ?? null,
      sample: (pid, ageMs) => this.procStats.sample(pid, ageMs),
      slot: (slot) => (this.group as WorkerGroup).history.get(slot),
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
