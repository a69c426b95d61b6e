/**
 * einhyrningsins-dyno: the runtime (the master's host, packages/master/src/host) with
 * one group per process type, from a release source (a Procfile, or hsup's control
 * directory). The process-wide duties are the master's: PID 1 reaping, sd_notify, the
 * memory keeper, the control socket's rules, the last-resort exit.
 */
import { constants as osConstants } from 'node:os';
import type { FleetEvent } from '@einhyrningsins/core';
import {
  Cleanup,
  ControlServer,
  Logger,
  Notifier,
  NotifyPolicy,
  Reloader,
  ReplyRoutes,
  Runtime,
  SlotHistory,
  execGapMs,
  exitProcess,
  monotonicMs,
  resumeConnections,
  type ConnectionSnapshot,
  type CommandHost,
  type ControlConnection,
  dispatch,
  type Reaper,
} from '@einhyrningsins/master';
import type { Request } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import { AppError } from './errors.js';
import { driverHttpHandler, dynoHttpApi } from './driver-http.js';
import { HttpFront } from './driver-front.js';
import { DriverTasks } from './minisv/driver-tasks.js';
import { startLogReopen } from './minisv/log-reopen.js';
import { DynoOutput } from './dyno-output.js';
import { dynoReloadState, stateFds, takeOverDyno, type DynoReloadState } from './dyno-reload.js';
import { ReleasePhase } from './release-phase.js';
import type { PreparedRelease } from './release.js';
import { selectedBy, type ReleaseSource, type SourceConfig } from './releases.js';
import { releaseSource } from './sources.js';
import type { ConfigControl, ConfigKit, ConfigSource } from './config-kit.js';
import { groupShellOptions, processWideDuties } from './driver-shells.js';
import { VERSION } from './version.js';
import { parseScale } from './formation.js';
import { TYPE_NAME } from './procfile.js';
import { driverState, driverStatus, type DriverFacts } from './view.js';
import { WEB_TYPE, WebSocketBinding } from './web-socket.js';
import { ReleaseApplier, type TypeLaunch } from './release-applier.js';
import type { DriverConfig } from './driver-config.js';

export { WEB_TYPE } from './web-socket.js';
export type { DriverConfig } from './driver-config.js';
export type { TypeLaunch } from './release-applier.js';

export class Driver implements CommandHost {
  readonly program = 'dyno';
  readonly named = true;
  readonly logger: Logger;
  readonly runtime: Runtime<TypeLaunch>;
  private readonly apply: ReleaseApplier;
  private readonly routes: ReplyRoutes;
  private server: ControlServer | null = null;
  private readonly source: ReleaseSource;
  /** The source when it is a config file (--config): its programs' sockets. */
  private readonly config: ConfigSource | null;
  /** supervisorctl's commands over the config's programs. */
  private readonly control: ConfigControl | null;
  get programs(): ConfigControl | null {
    return this.control;
  }
  private readonly web: WebSocketBinding;
  private readonly phase: ReleasePhase;
  private readonly cleanup = new Cleanup();
  private readonly t0 = monotonicMs();
  private shutdowns = 0;
  private exiting = false;
  private readonly selected: (type: string) => boolean;
  private readonly warn = (m: string) => this.logger.warn(m);
  private notify: NotifyPolicy | null = null;
  private notifier: Notifier | null = null;
  private reaper: Reaper | null = null;
  private memory: { poke(): void; output(bytes: number): void } | null = null;
  /** Output read from the processes: the memory keeper compacts after each MiB of it. */
  private readonly outputRead = (bytes: number) => this.memory?.output(bytes);
  private readonly output = new DynoOutput(this.outputRead);
  private readonly reloader: Reloader;
  private reloads = 0;
  /** The HTTP API on TCP (--http), and minisv's tasks behind the HTTP verbs. */
  private readonly front: HttpFront;
  private readonly tasks: DriverTasks;

  /** `kit`: with --config (and only then) the config file's modules (config-kit.ts), loaded by the command line. */
  constructor(readonly cfg: DriverConfig, kit: ConfigKit | null = null) {
    this.logger = new Logger(cfg.verbosity, process.pid, (l) => process.stderr.write(l), 'DYNO-DRIVER');
    this.routes = new ReplyRoutes('final');
    this.selected = selectedBy(cfg.types);
    this.web = new WebSocketBinding(cfg.bind, cfg.env, cfg.startNumber, this.logger);
    const sourceCfg: SourceConfig = { source: cfg.source, types: cfg.types, stateDir: cfg.stateDir, cwd: cfg.cwd, quantities: cfg.quantities };
    this.source = releaseSource(sourceCfg, this.logger, cfg.env, kit);
    this.config = kit && this.source instanceof kit.ConfigSource ? this.source : null;
    this.phase = new ReleasePhase(cfg.env, this.source.versioned, this.logger);
    this.runtime = this.newRuntime();
    const applier = { enqueue: (step: () => Promise<void>) => this.apply.enqueue(step), applyRelease: (next: PreparedRelease, roll: null, origin: string) => this.apply.applyRelease(next, roll, origin), current: () => this.apply.release };
    this.control = this.config && kit ? new kit.ConfigControl(this.config, this.runtime, () => this.now(), this.logger, applier, this.outputRead) : null;
    this.apply = new ReleaseApplier(cfg, this.source, this.runtime, this.phase, this.web, this.logger, this.selected, () => this.shutdowns > 0, (to, m, w, ok) =>
      this.routes.reply(to, m, w, ok),
    );
    this.front = new HttpFront(cfg, this.logger);
    const config = this.config && this.control ? { source: this.config, control: this.control } : null;
    this.tasks = new DriverTasks({ runtime: this.runtime, config, applier: this.apply, log: this.logger, now: () => this.now(), stopping: () => this.shutdowns > 0 || this.exiting });
    this.reloader = new Reloader({
      log: this.logger,
      what: 'einhyrningsins-dyno driver',
      reexecAs: null,
      argv: cfg.argv,
      cwd: cfg.cwd,
      server: () => this.server,
      busy: () => this.reloadBusy(),
      prepare: () => this.control?.prepareReload() ?? Promise.resolve(),
      snapshot: (connections) => {
        const state = this.reloadState(connections);
        return { state, fds: [...stateFds(state), ...(state.config && kit ? kit.ConfigControl.fds(state.config) : [])] };
      },
      reloadingNotice: () => this.notifier?.reloading(`reloading the driver (reload ${this.reloads + 1})`),
      reloadFailed: () => (this.control?.reloadFailed(), this.logger.info('The driver keeps running as it was')),
    });
  }

  now(): number {
    return monotonicMs() - this.t0;
  }

  private newRuntime(): Runtime<TypeLaunch> {
    const signalNumber = (s: string) => osConstants.signals[s as NodeJS.Signals] ?? 0;
    return new Runtime<TypeLaunch>({
      log: this.logger,
      fleet: { oneshot: this.cfg.oneshot, noun: 'process type', signalNumber },
      now: () => this.now(),
      shell: (spec) =>
        groupShellOptions(spec, {
          cfg: this.cfg,
          web: this.web,
          control: this.control,
          output: this.output,
          log: this.logger,
          poke: () => this.memory?.poke(),
        }),
      relaunch: (shell, spec) => shell.setLaunch(spec.launch.launch),
      onReply: (to, message, wait, ok) => this.routes.reply(to, message, wait, ok),
      onExit: (code) => this.fleetDone(code),
      onChange: () => this.onChange(),
    });
  }

  // ---- start-up ---------------------------------------------------------------

  /** Set while start() runs: what a stop signal (or HUP) does then. */
  private duringStartup: ((sig: NodeJS.Signals) => void) | null = null;

  /** Everything that can fail does so before the first process starts, and leaves nothing behind. */
  async start(): Promise<void> {
    // Said once start-up has succeeded: a failure is one line.
    const warnings: string[] = [];
    // The signal handlers first, and for good: a stop signal during start-up must not
    // take Node's default action and leave the control socket behind. (Removing and
    // re-adding listeners is no good: libuv resets the disposition to SIG_DFL when the
    // last one goes, and drops a signal whose listener went before the loop read it.)
    // While starting, a stop signal is noted, stops a running release phase, and
    // nothing is started.
    let stoppedBy: string | null = null;
    let during = 'start-up';
    this.duringStartup = (sig: NodeJS.Signals) => {
      stoppedBy = sig;
      this.shutdowns += 1;
      this.phase.stop(this.shutdowns === 1 ? this.cfg.stopSignal : 'SIGKILL');
    };
    this.installSignals();
    const notifier = new Notifier(process.env, this.logger);
    this.notifier = notifier;
    this.notify = new NotifyPolicy(notifier);
    this.cleanup.add(() => notifier.close());
    if (this.cfg.stateFd !== null) return await this.resume(this.cfg.stateFd);
    let initial: PreparedRelease | null = null;
    try {
      native.ensureNative();
      const look = this.source.firstLook((m) => warnings.push(m));
      initial = look.initial;
      await this.front.check(this.config?.minisv ?? null);
      this.server = await ControlServer.open(this.cfg.socketPath, 0o600, this.logger, (c, r) => this.onRequest(c, r), { http: this.http });
      const server = this.server;
      this.cleanup.add(() => server.close());
      await this.front.open(this.http, this.cleanup);
      await this.web.bind(look.webPossible, look.port ?? this.cfg.env.PORT, this.cleanup);
      if (this.config?.model) await this.config.bindSockets(this.config.model, this.cleanup);
      if (initial?.releaseArgs && stoppedBy === null) {
        // Asked to stop while the first release phase runs: stop it (see `stop`), start nothing.
        during = 'the release phase';
        const ok = await this.phase.run(null, initial, () => this.shutdowns > 0);
        if (!ok && stoppedBy === null) throw new AppError(`the release phase of the app failed (${this.phase.last?.status}); not starting`);
      }
      if (stoppedBy) throw new AppError(`stopped by ${stoppedBy} during ${during}; nothing was started`);
    } catch (err) {
      this.cleanup.run();
      throw err;
    } finally {
      this.duringStartup = null;
    }
    warnings.forEach(this.warn);
    this.processWide();
    const l = this.web.listener;
    const where = l ? `, listening on ${l.family === 6 ? `[${l.address}]` : l.address}:${l.port} (web)` : '';
    this.logger.info(`Driver ${process.pid} up: control socket ${this.cfg.socketPath}${where}; app: ${this.source.describe()}${this.front.describe()}`);
    const every = this.config?.minisv?.reopenEveryMs;
    if (every && this.control) startLogReopen(every, () => (this.control as ConfigControl).logs.reopen(), this.logger, this.cleanup);
    const src = this.cfg.source;
    if (initial) {
      this.apply.applyRelease(initial, null, src.kind === 'procfile' ? src.procfile : src.kind === 'config' ? src.file : 'start');
    } else this.watchSource();
  }

  /** Releases that arrive by themselves (a control directory's DIR/new) are applied from now on. */
  private watchSource(): void {
    this.source.watch({
      phase: (next) => this.phase.run(this.apply.release, next, () => this.shutdowns > 0),
      apply: (next, origin) => this.apply.applyChecked(next, null, origin, true),
      enqueue: (step) => this.apply.enqueue(step),
      stopping: () => this.shutdowns > 0,
      current: () => this.apply.release,
      phaseStatus: () => this.phase.last?.status,
    });
  }

  /** What every image does once it runs: output, the last resort, PID 1 reaping, the memory keeper. */
  private processWide(): void {
    const duties = processWideDuties(this.runtime, this.cleanup, this.logger, this.cfg.signalTimeoutSec, () => this.server?.unlink());
    this.memory = duties.memory;
    this.reaper = duties.reaper;
  }


  private readonly http = driverHttpHandler(
    () => dynoHttpApi(this.runtime as Runtime<unknown>, () => this.web.listener, () => this.apply.release?.env.PORT ?? this.cfg.env.PORT, this.logger),
    () => this.tasks,
  );

  private installSignals(): void {
    process.on('SIGHUP', () => {
      if (this.duringStartup) return this.duringStartup('SIGHUP');
      // minisv's HUP reopens the log files (logrotate's postrotate); its users' scripts send it for that.
      if (this.config?.minisv && this.control) return void this.control.logs.reopen().then((m) => this.logger.info(`Got SIGHUP: ${m} (minisv's meaning)`));
      this.logger.info('Got SIGHUP: reloading the app and upgrading every process type');
      this.apply.upgradeApp([], undefined, 'smooth');
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) {
      process.on(sig, () => {
        if (this.duringStartup) return this.duringStartup(sig);
        this.logger.info(`Got ${sig}: stopping every process gracefully (${this.cfg.stopSignal})`);
        this.shutdown(this.cfg.stopSignal, undefined);
      });
    }
    process.on('SIGUSR1', () => this.logger.info('Got SIGUSR1: ignored (no inspector)'));
    this.control?.installSignals();
  }

  // ---- stopping -------------------------------------------------------------------

  /** Drain everything, exit 0 once every process is gone. A second request escalates to SIGKILL. */
  shutdown(signal: string, replyTo: number | undefined): void {
    this.shutdowns += 1;
    this.phase.stop(this.shutdowns === 1 ? signal : 'SIGKILL');
    if (this.shutdowns === 1) this.source.close();
    // With a config file, each program is asked with its own stopsignal (as supervisord's stop).
    const own = this.config !== null && this.shutdowns === 1 && signal === this.cfg.stopSignal;
    this.runtime.feed({ type: 'shutdown', signal, ...(own ? { own } : {}), ...(replyTo !== undefined ? { replyTo } : {}) });
  }

  /** The fleet is done: a release phase still running goes first. */
  private fleetDone(code: number): void {
    const child = this.phase.child;
    if (child) child.once('exit', () => this.exit(code));
    else setImmediate(() => this.exit(code));
  }

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    this.source.close();
    this.runtime.stopTimers();
    this.server?.unlink();
    this.onChange();
    this.logger.info('Every process has exited; bye');
    const timeout = this.cfg.signalTimeoutSec > 0 ? this.cfg.signalTimeoutSec * 1000 : 30_000;
    // The log files take what is queued first (bounded).
    void (this.control?.closeLogs() ?? Promise.resolve()).then(() => exitProcess(code, this.reaper, timeout, this.cleanup));
  }

  /** sd_notify after every batch of events: READY once every process type is up, RELOADING while one rolls. */
  private onChange(): void {
    this.control?.check();
    if (!this.notify?.enabled) return;
    const groups = this.runtime.groups().filter((g) => !g.retiring);
    this.notify.update(
      groups.map((g) => ({ name: g.name, snapshot: g.snapshot })),
      this.shutdowns > 0 || this.exiting,
    );
  }

  // ---- control socket ---------------------------------------------------------------

  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void {
    this.logger.log(level, message);
  }

  feed(ev: FleetEvent<unknown>): void {
    this.runtime.feed(ev as FleetEvent<TypeLaunch>);
  }

  names(): string[] {
    return this.runtime.names();
  }

  ehlo(who: string): string {
    return `Welcome, ${who}! You are speaking to Einhorn Master Process ${process.pid} (einhyrningsins-dyno).\nThis is einhyrningsins-dyno ${VERSION}.\n`;
  }

  versionText(): string {
    return `einhyrningsins-dyno ${VERSION}`;
  }

  get verbosity(): number {
    return this.logger.verbosity;
  }

  set verbosity(v: number) {
    this.logger.verbosity = v;
  }

  parseScale(word: string): { type: string; quantity: number } {
    return parseScale(word);
  }

  upgrade(types: readonly string[], mode: 'smooth' | 'fleet', conn: ControlConnection, req: Request): void {
    for (const t of types) {
      if (!TYPE_NAME.test(t)) return void conn.send({ message: `Invalid process type ${JSON.stringify(t)}`, error: true }, req.id);
    }
    this.logger.info(`Asked to upgrade ${types.length ? types.join(', ') : 'every process type'}: reading the app again`);
    this.apply.upgradeApp([...new Set(types)], this.route(conn, req), mode);
  }

  die(signal: string, replyTo: number): void {
    this.logger.info(`Asked to stop (die ${signal}): stopping every process`);
    this.shutdown(signal, replyTo);
  }

  route(conn: ControlConnection, req: Request): number {
    return this.routes.open(conn, req.id);
  }

  get stopSignal(): string {
    return this.cfg.stopSignal;
  }

  private onRequest(conn: ControlConnection, req: Request): void {
    dispatch(this, conn, req);
  }

  facts(): DriverFacts {
    const src = this.cfg.source;
    const rel = this.apply.release;
    const l = this.web.listener;
    return {
      pid: process.pid,
      version: VERSION,
      source: src.kind === 'procfile' ? `Procfile ${src.procfile}` : src.kind === 'config' ? `config ${src.file}` : `control directory ${src.dir}`,
      socketPath: this.cfg.socketPath,
      bind: l ? { address: l.address, port: l.port } : null,
      release: rel ? { version: rel.version, slug: rel.slug, stack: rel.stack, cwd: rel.cwd } : null,
      rejected: this.source.rejected,
      releasePhase: this.phase.last,
      startNumber: this.cfg.startNumber,
      stopSignal: this.cfg.stopSignal,
      shuttingDown: this.shutdowns > 0,
      now: this.now(),
      types: this.runtime.groups().map((g) => ({
        type: g.name,
        retiring: g.retiring,
        releaseVersion: g.spec.launch.releaseVersion,
        command: g.spec.launch.process.args,
        web: g.spec.launch.web,
        snapshot: g.snapshot,
      })),
    };
  }

  state(): { text: string; state: unknown } {
    const state = driverState(this.facts());
    return { text: JSON.stringify(state, null, 2) + '\n', state };
  }

  status(): { text: string; state: unknown } {
    const f = this.facts();
    return { text: this.control ? this.control.statusText() : driverStatus(f), state: driverState(f) };
  }

  // ---- reload: re-execute the driver in place -------------------------------------

  reload(conn: ControlConnection, req: Request): void {
    void this.reloader.reload(conn, req);
  }

  private reloadBusy(): string | null {
    if (this.exiting || this.shutdowns > 0) return 'stopping: the driver is stopping';
    const installing = this.control?.reloadProblem();
    if (installing) return installing;
    const rolling = this.runtime.groups().filter((g) => g.snapshot.upgrade !== null);
    if (rolling.length) return `an upgrade is in progress (${rolling.map((g) => g.name).join(', ')}); reload when it is done`;
    if (this.apply.serialBusy > 0 || this.phase.child) return 'a release is being read or applied; reload when it is done';
    return null;
  }

  private reloadState(connections: ConnectionSnapshot[]): DynoReloadState {
    return dynoReloadState({
      runtime: this.runtime,
      server: this.server as ControlServer,
      reloads: this.reloads,
      connections,
      listener: this.web.listener,
      release: this.apply.release,
      rejected: this.source.rejected,
      releasePhase: this.phase.last,
      verbosity: this.logger.verbosity,
      output: this.output.snapshot((pid) => this.runtime.hasPid(pid)),
      config: this.control ? this.control.snapshot((pid) => this.runtime.hasPid(pid)) : null,
      fetch: this.control?.releases.memories() ?? {},
      http: this.front.server ? { fd: this.front.server.fd } : null,
    });
  }

  /** The new image of a reload: the old one's sockets, processes and output taken over. */
  private async resume(fd: number): Promise<void> {
    let taken;
    try {
      native.ensureNative();
      taken = await takeOverDyno(fd, this.logger, this.cleanup, (c, r) => this.onRequest(c, r), this.http);
    } catch (err) {
      this.cleanup.run();
      throw err;
    } finally {
      this.duringStartup = null;
    }
    const { state, server } = taken;
    this.server = server;
    this.reloads = state.reloads;
    if (state.listener) {
      this.web.listener = state.listener;
      this.cleanup.add(() => {
        if (this.web.listener) native.close(this.web.listener.fd);
        this.web.listener = null;
      });
    }
    this.apply.release = state.release;
    this.control?.releases.carry(state.fetch);
    this.phase.last = state.releasePhase;
    // A config's running programs and their sockets before the groups (their shells hand the sockets out).
    if (state.config && this.control) this.control.adoptSource(state.config, this.cleanup);
    if (state.http) await this.front.open(this.http, this.cleanup, state.http.fd);
    this.processWide();
    this.output.adopt(state.output);
    const rel = this.apply.release;
    this.runtime.restore(state.fleet, execGapMs(state), (name, gid) => {
      const g = state.groups[String(gid)];
      const p = g?.process ?? { type: name, args: ['true'], quantity: 0 };
      const base = rel ? this.apply.spec(p, rel) : null;
      if (base && p.program) return base;
      return {
        name,
        quantity: p.quantity,
        launchKey: base?.launchKey ?? '',
        launch: { process: p, releaseVersion: g?.releaseVersion ?? 0, web: name === WEB_TYPE, launch: base?.launch.launch ?? this.apply.launchSpec(p, { ...(rel as PreparedRelease) }) },
        config: this.apply.coreConfig(p.quantity),
      };
    });
    for (const g of this.runtime.groups()) {
      const slots = state.groups[String(g.gid)]?.slots;
      if (slots) g.shell.history = SlotHistory.from(slots);
    }
    if (state.config && this.control) this.control.adoptPipes(state.config);
    this.source.rejected = state.rejected;
    this.watchSource();
    const n = [...this.runtime.pids()].length;
    const message = `Reload done: driver ${process.pid} is now einhyrningsins-dyno ${VERSION} (reload ${this.reloads}), ${n} process${n === 1 ? '' : 'es'} adopted`;
    this.logger.info(message);
    resumeConnections(state.connections, server, message);
    this.onChange();
  }
}
