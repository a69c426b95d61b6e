/**
 * einhyrningsins: the runtime (host/runtime.ts) with one unnamed group from the command
 * line, its sockets (-b, systemd's), the control socket, signals, reload and the
 * process-wide duties (host/process-wide.ts).
 */
import { setPriority } from 'node:os';
import { resolve } from 'node:path';
import type { CoreSnapshot, Event, FleetEvent, GroupSpec } from '@einhyrningsins/core';
import { defaultSocketPath, type Request } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import { monotonicMs } from './clock.js';
import { Notifier } from './systemd.js';
import { dispatch } from './commands/entries.js';
import type { CommandHost } from './commands/table.js';
import { ControlServer, type ControlConnection } from './control-server.js';
import { StartupError } from './errors.js';
import { Logger } from './log.js';
import { rubyOnlyWarning, type Options } from './options.js';
import { setUpHandoff } from './handoff-setup.js';
import { watchReusePort } from './reuseport-watch.js';
import { stopSignalWarning } from './known-servers.js';
import type { ExitWithChild } from './exit-with-child.js';
import type { Releases } from './releases.js';
import { releasesWanted } from './release-checks.js';
import type { Reaper } from './reaper.js';
import { SlotHistory } from './slot-history.js';
import { ProcStats } from './proc-stats.js';
import { Cleanup } from './cleanup.js';
import type { SyslogTarget } from './syslog.js';
import { einhornStateYaml, stateObject, statusText, type MasterFacts } from './state-view.js';
import { VERSION } from './version.js';
import { fleetEvent, installMasterSignals, masterGroupSpec } from './master-group.js';
import { checkMaster } from './master-check.js';
import { execGapMs, type BoundSocket, type ReloadState } from './reload.js';
import { bindAll } from './master-binds.js';
import { masterState, takeOver } from './master-reload.js';
import { Reloader, resumeConnections } from './host/reexec.js';
import { takeLock, writePidfile, type HeldLock } from './host/files.js';
import { NotifyPolicy, summaryOf } from './host/notify-policy.js';
import { capMallocArenas, exitProcess, installLastResort, startMemoryKeeper, startReaper } from './host/process-wide.js';
import { ReplyRoutes } from './host/routes.js';
import { Runtime } from './host/runtime.js';
import type { GroupShell, LaunchSpec, WorkerProcess } from './host/group-shell.js';
import type { HandoffContext, HandoffName } from './handoff.js';

function socketLabel(s: BoundSocket): string {
  if (s.family === 'unix') return `unix:${s.address}`;
  return `${s.family === 6 ? `[${s.address}]` : s.address}:${s.port}`;
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
  /** --watch and --fetch: upgrades that the program's releases trigger. */
  private releases: Releases | null = null;

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
        return this.releases?.busy() ?? null;
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
            fetch: this.releases?.memory() ?? null,
          },
          opts,
          argv,
          log,
          connections,
          this.reloadThen,
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
      reload: (conn, req) => this.reload(conn, req),
      upgrade: (groups, mode, conn, req) => {
        // einhorn's upgrade with --reexec-as: the master first (not with --prefix-output, which cannot reload).
        if (mode === 'smooth' && opts.reexecAs !== null && !opts.prefixOutput) return this.reload(conn, req, 'upgrade');
        this.runtime?.feed({ type: 'request', targets: groups.length ? groups : 'active', request: { type: 'upgrade', mode }, replyTo: this.routes.open(conn, req.id) });
      },
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

  /** Re-execute in place; `then`: upgrade the workers from the new image (einhorn's upgrade with --reexec-as). */
  private reload(conn: ControlConnection, req: Request, then?: 'upgrade'): void {
    this.reloadThen = then ?? null;
    void this.reloader.reload(conn, req, () =>
      // The children write into pipes this image reads; they would not survive the exec.
      this.opts.prefixOutput ? "--prefix-output pipes the children's output through this process; use upgrade (or restart without --prefix-output)" : null,
    );
  }

  private reloadThen: 'upgrade' | null = null;

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
    if (process.env.EINHYRNINGSINS_LOOP_TRACE) (await import('./loop-trace.js')).startLoopTrace(process.env.EINHYRNINGSINS_LOOP_TRACE); // what the loop did, at exit
    // Once per master, not again in the image a reload starts.
    const rubyOnly = this.stateFd === null ? rubyOnlyWarning(this.opts) : null;
    if (rubyOnly) this.log.warn(rubyOnly);
    const stopSignal = this.stateFd === null ? stopSignalWarning(this.opts.program, this.opts.programArgs, this.opts.stopSignal) : null;
    if (stopSignal) this.log.warn(stopSignal);
    const notifier = new Notifier(process.env, this.log);
    this.notifier = notifier;
    this.notify = new NotifyPolicy(notifier);
    this.cleanup.add(() => notifier.close());
    try {
      native.ensureNative();
      capMallocArenas(); // one malloc arena from now on, before the spawner's threads exist (memory.ts)
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
    let handoff: { names: HandoffName[]; ctx: HandoffContext } | null = null;
    try {
      const o = this.opts;
      // Checks the sockets against the protocols asked for (exit 2 before any child starts) and warns.
      if (setUpHandoff({ names: o.handoff, sockets: this.sockets, env: process.env, program: o.program, cwd: this.cwd, log: this.log, warn: !restored })) {
        handoff = { names: o.handoff, ctx: { inheritedPreload: process.env.LD_PRELOAD, shimVerbose: this.log.verbosity <= 0 } };
      }
    } catch (err) {
      this.cleanup.run();
      throw err;
    }
    // What start-up was not asked for is not even initialised (its modules' code and
    // objects: start-up RSS; test/footprint.test.ts lists what a plain start initialises).
    const [releasesKit, exitKit, prefixKit] = await Promise.all([
      releasesWanted(this.opts) ? import('./releases.js') : null,
      this.opts.exitWithChild ? import('./exit-with-child.js') : null,
      this.opts.prefixOutput ? import('./output-prefix.js') : null,
    ]);
    // Compacts once the workers are settled, not in the middle of a burst of them.
    const memory = startMemoryKeeper(this.cleanup, () => this.runtime?.settled ?? true);
    const exitWithChild: ExitWithChild | null = exitKit
      ? new exitKit.ExitWithChild({ snapshot: () => this.snapshot(), feed: (ev) => this.feed(ev), stopSignal: this.opts.stopSignal, log: this.log })
      : null;
    this.runtime = new Runtime<LaunchSpec>({
      log: this.log,
      now: () => this.now(),
      shell: (spec) => ({
        name: '',
        core: spec.config,
        launch: spec.launch,
        listeners: this.sockets.map((s) => ({ fd: s.fd, family: s.family, address: s.address, port: s.port, text: s.text })),
        ...(handoff ? { handoff } : {}),
        socketPath: this.socketPath,
        killChildrenOnExit: this.opts.killChildrenOnExit,
        niceWorker: this.opts.niceWorker,
        upgradeNice: this.opts.upgradeNice,
        log: this.log,
        ...(prefixKit
          ? {
              output: (child: WorkerProcess, slot: number) => {
                prefixKit.prefixOutput(child, slot, { name: this.opts.commandName, time: this.opts.prefixOutput === 'time' });
                // The children's output passes through this process: compacted after each MiB (as the driver's).
                for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer | string) => memory.output(d.length));
              },
            }
          : {}),
        ...(this.opts.commandSocketAsFd ? { adoptControlFd: (fd: number, pid: number) => this.server?.adopt(fd, pid) } : {}),
        onWorkerSpawn: () => memory.spawned(),
        onWorkerExit: (pid, _slot, code, signal) => {
          exitWithChild?.childExited(pid, code, signal);
          memory.poke();
        },
      }),
      relaunch: (shell, spec) => shell.setLaunch(spec.launch),
      onReply: (to, message, wait, ok) => this.routes.reply(to, message, wait, ok),
      onExit: (code) => this.exit(exitWithChild ? exitWithChild.exitCode(code) : code),
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
    if (releasesKit) {
      const releases: Releases = new releasesKit.Releases(this.opts, {
        group: { feed: (ev) => this.feed(ev), snapshot: () => this.snapshot() },
        log: this.log,
        now: () => this.now(),
        env: process.env,
        cwd: this.cwd,
        // A reload's new image: what the old one's fetcher knew (a release that failed is not tried again).
        memory: restored?.fetch ?? null,
      });
      this.releases = releases;
      this.cleanup.add(() => releases.stop());
      releases.start();
    }
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
    const stopWatch = watchReusePort(this.sockets, this.log);
    this.cleanup.add(stopWatch);
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
    return masterGroupSpec(this.opts, this.cwd);
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
    checkMaster(opts);
  }

  /** After the take-over: the group carries on from the old engine, the connections are served again. */
  private resumeFrom(state: ReloadState): void {
    const runtime = this.runtime as Runtime<LaunchSpec>;
    // The exec took some time: every age grows by it (on the monotonic clock, see execGapMs).
    runtime.restore(state.core, execGapMs(state), () => this.spec());
    this.keepShell();
    (this.shell as GroupShell).history = SlotHistory.from(state.slots);
    const workers = this.snapshot().workers.length;
    const message =
      `Reload done: master ${process.pid} is now einhyrningsins ${VERSION} (reload ${this.reloads}), ` +
      `${workers} worker${workers === 1 ? '' : 's'} adopted`;
    this.log.info(message);
    if (state.then === 'upgrade') {
      // einhorn's upgrade with --reexec-as: now the workers, from the new master; its reply ends the request.
      const requester = state.connections.find((c) => c.requester);
      const streamId = requester?.streaming && requester.requestId !== null ? requester.requestId : undefined;
      const conns = resumeConnections(state.connections, this.server as ControlServer, null);
      const conn = conns.requester;
      if (conn && streamId !== undefined) conn.send({ message, wait: true }, streamId);
      const replyTo = conn ? this.routes.open(conn, streamId) : undefined;
      this.runtime?.feed({ type: 'request', targets: 'active', request: { type: 'upgrade', mode: 'smooth' }, ...(replyTo === undefined ? {} : { replyTo }) });
    } else resumeConnections(state.connections, this.server as ControlServer, message);
    const pending = this.pending ?? [];
    this.pending = null;
    for (const ev of pending) this.feed(ev);
    this.onChange();
  }

  /** sd_notify after every batch of events. */
  private onChange(): void {
    this.releases?.changed();
    if (!this.notify?.enabled || !this.runtime) return;
    // The group's counts (a snapshot here, after every batch of events, copied every worker).
    const summary = this.runtime.summaries()[0]?.summary ?? (this.lastSnapshot ? summaryOf(this.lastSnapshot) : null);
    if (summary) this.notify.update([{ name: '', summary }], summary.shuttingDown !== null || this.exiting);
  }

  private installSignals(): void {
    installMasterSignals((ev) => this.feed(ev), this.log, this.opts.stopSignal);
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
