/**
 * einhyrningsins: the runtime (host/runtime.ts) with one unnamed group from the command
 * line, its sockets (-b, systemd's), the control socket, signals, reload and the
 * process-wide duties (host/process-wide.ts).
 */
import { setPriority } from 'node:os';
import { resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { CoreConfig, CoreSnapshot, Event, FleetEvent, GroupSpec } from '@einhyrningsins/core';
import { defaultSocketPath, type Request } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import { monotonicMs } from './clock.js';
import { Notifier, SYSTEMD_VARS } from './systemd.js';
import { dispatch } from './commands/entries.js';
import type { CommandHost } from './commands/table.js';
import { ControlServer, type ControlConnection } from './control-server.js';
import { StartupError } from './errors.js';
import { Logger } from './log.js';
import { rubyOnlyWarning, type Options } from './options.js';
import { resolveProgram } from './program.js';
import type { Reaper } from './reaper.js';
import { prefixOutput } from './output-prefix.js';
import { SlotHistory } from './slot-history.js';
import { ProcStats } from './proc-stats.js';
import { Cleanup } from './cleanup.js';
import type { SyslogTarget } from './syslog.js';
import { einhornStateYaml, stateObject, statusText, type MasterFacts } from './state-view.js';
import { VERSION } from './version.js';
import type { BoundSocket, ReloadState } from './reload.js';
import { bindAll } from './master-binds.js';
import { masterState, takeOver } from './master-reload.js';
import { Reloader, resumeConnections } from './host/reexec.js';
import { takeLock, writePidfile, type HeldLock } from './host/files.js';
import { NotifyPolicy } from './host/notify-policy.js';
import { exitProcess, installLastResort, startMemoryKeeper, startReaper } from './host/process-wide.js';
import { ReplyRoutes } from './host/routes.js';
import { Runtime } from './host/runtime.js';
import type { GroupShell, LaunchSpec } from './host/group-shell.js';

function socketLabel(s: BoundSocket): string {
  if (s.family === 'unix') return `unix:${s.address}`;
  return `${s.family === 6 ? `[${s.address}]` : s.address}:${s.port}`;
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

/** A single-group event (what the commands and signals speak) for the one unnamed group. */
export function fleetEvent(ev: Event): FleetEvent<LaunchSpec> | null {
  const to = ev.type !== 'start' && 'replyTo' in ev && ev.replyTo !== undefined ? { replyTo: ev.replyTo } : {};
  switch (ev.type) {
    case 'ack':
    case 'ping':
    case 'exited':
      return ev;
    case 'shutdown':
      return { type: 'shutdown', signal: ev.signal, ...to };
    case 'inc':
    case 'dec':
      return { type: 'request', targets: 'active', request: { type: ev.type }, ...to };
    case 'setWorkers':
      return { type: 'request', targets: 'active', request: { type: 'setWorkers', count: ev.count }, ...to };
    case 'upgrade':
      return { type: 'request', targets: 'active', request: { type: 'upgrade', mode: ev.mode }, ...to };
    case 'signal':
      return { type: 'request', targets: 'active', request: { type: 'signal', signals: ev.signals }, ...to };
    case 'configure':
      return { type: 'request', targets: 'active', request: { type: 'configure', changes: ev.changes }, ...to };
    default:
      return null;
  }
}

export class Master {
  private runtime: Runtime<LaunchSpec> | undefined;
  /** The one group's shell and last state (kept once it is gone, for a late `status`). */
  private shell: GroupShell | null = null;
  private lastSnapshot: CoreSnapshot | null = null;
  private readonly log: Logger;
  private readonly routes: ReplyRoutes;
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
  private readonly reloader: Reloader;
  private lock: HeldLock | null = null;
  private notify: NotifyPolicy | null = null;
  /** The control socket's path, its directory resolved once the socket exists. */
  private socketPath: string;
  private readonly cwd = process.cwd();
  private exiting = false;
  /** Events (from signals) that arrive before the group exists; null once it runs. */
  private pending: Event[] | null = [];
  private reaper: Reaper | null = null;
  private readonly commandHost: CommandHost;
  private readonly procStats = new ProcStats();

  constructor(
    private readonly opts: Options,
    /** The command line this image was started with (re-used by reload). */
    argv: readonly string[] = [],
    /** Set when this image is the new one of a reload: the snapshot of the old one. */
    private readonly stateFd: number | null = null,
  ) {
    this.log = new Logger(opts.verbosity, process.pid);
    this.routes = new ReplyRoutes('first', this.log);
    this.socketPath = resolve(opts.socketPath ?? defaultSocketPath(opts.commandName));
    const log = this.log;
    this.reloader = new Reloader({
      log,
      what: 'einhyrningsins master',
      reexecAs: opts.reexecAs,
      argv,
      cwd: this.cwd,
      server: () => this.server,
      busy: () => {
        const snap = this.snapshot();
        if (this.exiting || snap.shuttingDown) return 'stopping: the master is stopping';
        if (snap.upgrade) return `an upgrade is in progress (generation ${snap.upgrade.generation}); reload when it is done`;
        return null;
      },
      snapshot: (connections) =>
        masterState(
          {
            sockets: this.sockets,
            socketPath: this.socketPath,
            control: { fd: (this.server as ControlServer).listenFd, ino: (this.server as ControlServer).inode },
            lock: this.lock,
            startedAtWall: this.startedAtWall,
            reloads: this.reloads,
            core: (this.runtime as Runtime<LaunchSpec>).serializeOnly(),
            slots: (this.shell as GroupShell).history.toJSON(),
          },
          opts,
          argv,
          log,
          connections,
        ),
      reloadingNotice: () => this.notifier?.reloading(`reloading the master (reload ${this.reloads + 1})`),
      reloadFailed: () => {
        this.notify?.resetReady();
        this.onChange();
      },
    });
    this.commandHost = {
      program: 'master',
      named: false,
      log: (level, message) => log.log(level, message),
      feed: (ev) => this.runtime?.feed(ev as FleetEvent<LaunchSpec>),
      route: (conn, req) => this.routes.open(conn, req.id),
      names: () => this.runtime?.names() ?? [],
      ehlo: (who) => {
        const name = opts.commandName ? ` (${opts.commandName})` : '';
        return `Welcome, ${who}! You are speaking to Einhorn Master Process ${process.pid}${name}.\nThis is einhyrningsins ${VERSION}.\n`;
      },
      versionText: () => `einhyrningsins ${VERSION}`,
      stopSignal: opts.stopSignal,
      state: () => ({ text: einhornStateYaml(this.snapshot(), this.facts()), state: stateObject(this.snapshot(), this.facts()) }),
      status: () => ({ text: statusText(this.snapshot(), this.facts()), state: stateObject(this.snapshot(), this.facts()) }),
      reload: (conn, req) =>
        void this.reloader.reload(conn, req, () =>
          // The children write into pipes this image reads; they would not survive the exec.
          opts.prefixOutput ? "--prefix-output pipes the children's output through this process; use upgrade (or restart without --prefix-output)" : null,
        ),
      upgrade: (groups, mode, conn, req) =>
        this.runtime?.feed({ type: 'request', targets: groups.length ? groups : 'active', request: { type: 'upgrade', mode }, replyTo: this.routes.open(conn, req.id) }),
      die: (signal, replyTo) => this.runtime?.feed({ type: 'shutdown', signal, replyTo }),
      get verbosity() {
        return log.verbosity;
      },
      set verbosity(v: number) {
        log.verbosity = v;
      },
    };
  }

  private notifier: Notifier | null = null;

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
    const notifier = new Notifier(process.env, this.log);
    this.notifier = notifier;
    this.notify = new NotifyPolicy(notifier);
    this.cleanup.add(() => notifier.close());
    try {
      native.ensureNative();
      if (this.opts.syslog || this.opts.syslogTo) await this.startSyslog();
      if (this.opts.niceMaster !== null) {
        try {
          setPriority(this.opts.niceMaster);
        } catch (err) {
          throw new StartupError(`--nice: cannot set the master's niceness to ${this.opts.niceMaster}: ${(err as Error).message}`);
        }
      }
      if (this.stateFd !== null) {
        const taken = await takeOver(this.stateFd, this.opts, this.log, this.cleanup, (c, r) => this.onRequest(c, r));
        restored = taken.state;
        this.server = taken.server;
        this.sockets = taken.sockets;
        this.lock = taken.lock;
        this.socketPath = taken.state.control.path;
        this.startedAtWall = taken.state.startedAtWall;
        this.reloads = taken.state.reloads;
      } else {
        Master.check(this.opts);
        if (this.opts.lockfile) this.lock = takeLock(resolve(this.opts.lockfile), this.cleanup);
        this.sockets = await bindAll(this.opts, this.cwd, this.log, this.cleanup);
        // The control socket last but one: a failure above never touches a socket file.
        this.server = await ControlServer.open(this.socketPath, this.opts.socketMode, this.log, (c, r) => this.onRequest(c, r), {
          idleTimeoutMs: this.opts.controlIdleTimeoutSec * 1000,
        });
        const server = this.server;
        // Children get the resolved path: a symlink in it swapped later cannot redirect their acks.
        this.socketPath = server.path;
        this.cleanup.add(() => server.close());
        if (this.opts.pidfile) writePidfile(resolve(this.opts.pidfile), this.cleanup);
      }
    } catch (err) {
      this.cleanup.run();
      throw err;
    }
    const memory = startMemoryKeeper(this.cleanup);
    this.runtime = new Runtime<LaunchSpec>({
      log: this.log,
      now: () => this.now(),
      shell: (spec) => ({
        name: '',
        core: spec.config,
        launch: spec.launch,
        listeners: this.sockets.map((s) => ({ fd: s.fd, family: s.family, port: s.port })),
        socketPath: this.socketPath,
        killChildrenOnExit: this.opts.killChildrenOnExit,
        niceWorker: this.opts.niceWorker,
        upgradeNice: this.opts.upgradeNice,
        log: this.log,
        ...(this.opts.prefixOutput
          ? { output: (child: ChildProcess, slot: number) => prefixOutput(child, slot, { name: this.opts.commandName, time: this.opts.prefixOutput === 'time' }) }
          : {}),
        ...(this.opts.commandSocketAsFd ? { adoptControlFd: (fd: number, pid: number) => this.server?.adopt(fd, pid) } : {}),
        onWorkerExit: () => memory.poke(),
      }),
      relaunch: (shell, spec) => shell.setLaunch(spec.launch),
      onReply: (to, message, wait, ok) => this.routes.reply(to, message, wait, ok),
      onExit: (code) => this.exit(code),
      onRemoved: (_gid, _name, last) => {
        this.lastSnapshot = last;
      },
      onChange: () => this.onChange(),
    });
    installLastResort(this.log, () => {
      this.runtime?.stopTimers();
      this.server?.unlink();
      this.cleanup.run();
    });
    const runtime = this.runtime;
    this.reaper = startReaper(
      {
        subreaper: this.opts.subreaper,
        isWorker: (pid) => runtime.hasPid(pid),
        workers: () => runtime.pids(),
        signalTimeoutMs: this.opts.signalTimeoutSec > 0 ? this.opts.signalTimeoutSec * 1000 : null,
        log: this.log,
      },
      this.cleanup,
    );
    if (restored) {
      this.resumeFrom(restored);
      return;
    }
    const binds = this.sockets.map(socketLabel);
    this.log.always(
      `Master ${process.pid} up: control socket ${this.socketPath}` + (binds.length ? `, listening on ${binds.join(', ')}` : ''),
    );
    const pending = this.pending ?? [];
    this.pending = null;
    const stop = pending.find((ev) => ev.type === 'shutdown');
    runtime.feed({ type: 'apply', specs: [this.spec()], start: stop === undefined });
    this.keepShell();
    if (stop) {
      // Stopped before anything ran: start nothing, leave nothing.
      this.log.info('Stopping: a stop signal arrived during start-up');
      this.feed(stop);
      return;
    }
    for (const ev of pending) this.feed(ev);
  }

  /** The one group: the command line's program, -n workers. */
  private spec(): GroupSpec<LaunchSpec> {
    const launch: LaunchSpec = {
      program: this.opts.program as string,
      args: this.opts.programArgs,
      env: process.env,
      // What systemd told the master is not for the children.
      dropEnv: [...this.opts.dropEnv, ...SYSTEMD_VARS],
      cwd: this.cwd,
    };
    return { name: '', quantity: this.opts.number, launchKey: 'command line', launch, config: coreConfig(this.opts) };
  }

  private keepShell(): void {
    this.shell = this.runtime?.groups()[0]?.shell ?? this.shell;
  }

  private async startSyslog(): Promise<void> {
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

  /** What must hold before anything is bound (also the whole of --upgrade-check). */
  static check(opts: Options): void {
    native.ensureNative();
    native.assertLauncher();
    if (opts.program !== null) resolveProgram(opts.program, process.env.PATH, process.cwd());
    if (opts.reexecAs) {
      try {
        resolveProgram(opts.reexecAs[0] as string, process.env.PATH, process.cwd());
      } catch (err) {
        throw new StartupError(`--reexec-as: ${(err as Error).message}`);
      }
    }
  }

  /** After the take-over: the group carries on from the old engine, the connections are served again. */
  private resumeFrom(state: ReloadState): void {
    const runtime = this.runtime as Runtime<LaunchSpec>;
    // The exec took some time: every age grows by it (state.wall is when the old image wrote it).
    runtime.restore(state.core, Date.now() - state.wall, () => this.spec());
    this.keepShell();
    (this.shell as GroupShell).history = SlotHistory.from(state.slots);
    const workers = this.snapshot().workers.length;
    const message =
      `Reload done: master ${process.pid} is now einhyrningsins ${VERSION} (reload ${this.reloads}), ` +
      `${workers} worker${workers === 1 ? '' : 's'} adopted`;
    this.log.info(message);
    resumeConnections(state.connections, this.server as ControlServer, message);
    const pending = this.pending ?? [];
    this.pending = null;
    for (const ev of pending) this.feed(ev);
    this.onChange();
  }

  /** sd_notify after every batch of events. */
  private onChange(): void {
    if (!this.notify?.enabled || !this.runtime) return;
    const snap = this.snapshot();
    this.notify.update([{ name: '', snapshot: snap }], snap.shuttingDown !== null || this.exiting);
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
    if (this.pending !== null) {
      this.pending.push(event);
      return;
    }
    const ev = fleetEvent(event);
    if (ev) this.runtime?.feed(ev);
  }

  private snapshot(): CoreSnapshot {
    const g = this.runtime?.groups()[0];
    if (g) this.lastSnapshot = g.snapshot;
    return this.lastSnapshot as CoreSnapshot;
  }

  private onRequest(conn: ControlConnection, req: Request): void {
    if (!this.runtime) {
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
    dispatch(this.commandHost, conn, req);
  }

  private facts(): MasterFacts {
    const o = this.opts;
    if (this.runtime) this.procStats.prune(new Set(this.snapshot().workers.map((w) => w.pid as number)));
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
      reloading: this.reloader.reloading,
      lastSpinup: this.shell?.lastSpinup ?? null,
      sample: (pid, ageMs) => this.procStats.sample(pid, ageMs),
      slot: (slot) => (this.shell as GroupShell).history.get(slot),
      wall: (t) => this.wall0 + t,
      now: this.now(),
    };
  }

  // ---- exit -------------------------------------------------------------------

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    this.server?.unlink();
    // What the workers left behind goes before the master does (it would outlive it).
    const timeout = this.opts.signalTimeoutSec > 0 ? this.opts.signalTimeoutSec * 1000 : 30_000;
    exitProcess(code, this.reaper, timeout, this.cleanup);
  }
}
