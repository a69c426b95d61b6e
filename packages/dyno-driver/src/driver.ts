/**
 * einhyrningsins-dyno: the runtime (the master's host, packages/master/src/host) with
 * one group per process type, from a release source (a Procfile, or hsup's control
 * directory). The process-wide duties are the master's: PID 1 reaping, sd_notify, the
 * memory keeper, the control socket's rules, the last-resort exit.
 */
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import type { CoreConfig, FleetEvent, GroupSpec } from '@einhyrningsins/core';
import {
  Cleanup,
  ControlServer,
  Logger,
  Notifier,
  NotifyPolicy,
  ReplyRoutes,
  Runtime,
  SYSTEMD_VARS,
  exitProcess,
  handOffs,
  installLastResort,
  monotonicMs,
  pipeLines,
  startMemoryKeeper,
  startReaper,
  type ControlConnection,
  type HandOff,
  type LaunchSpec,
  type Reaper,
} from '@einhyrningsins/master';
import type { Request } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import type { AppSource } from './app-source.js';
import { AppError } from './errors.js';
import { ControlDirSource } from './control-dir-source.js';
import { dispatchDriver, type DriverCommands } from './driver-commands.js';
import { serveHttp, type HttpApi } from './http-api.js';
import { ReleasePhase } from './release-phase.js';
import { describeChanges, diffReleases, type PreparedRelease, type ProcessDef } from './release.js';
import { describeSource, firstLook, prepareRelease, readAgain, selectedBy, type SourceConfig } from './releases.js';
import { VERSION } from './version.js';
import { driverState, driverStatus, type DriverFacts } from './view.js';
import { WEB_TYPE, WebSocketBinding } from './web-socket.js';

export { WEB_TYPE } from './web-socket.js';
export { helpMessage } from './driver-commands.js';

export interface DriverConfig {
  source: AppSource;
  /** Process types to run; empty: all. */
  types: readonly string[];
  stateDir: string;
  /** -b as written; null: 0.0.0.0:$PORT when PORT is set. */
  bind: string | null;
  socketPath: string;
  ackMode: { kind: 'manual' } | { kind: 'timer'; seconds: number };
  ackTimeoutSec: number;
  signalTimeoutSec: number;
  killChildrenOnExit: boolean;
  /** Asks a process (its whole process group) to stop: SIGTERM, as Heroku. */
  stopSignal: string;
  /** hsup's --oneshot: processes are not restarted; the driver exits when all have, with the highest status. */
  oneshot: boolean;
  /** hsup's --start-number: the first dyno number (web.1). */
  startNumber: number;
  /** hsup's `start TYPE=N` with a control dir: these quantities instead of the release's. */
  quantities: ReadonlyMap<string, number>;
  verbosity: number;
  /** The driver's working directory. */
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** What a process type's group launches. */
export interface TypeLaunch {
  process: ProcessDef;
  releaseVersion: number;
  web: boolean;
  launch: LaunchSpec;
}

type Roll = { types: readonly string[]; replyTo: number | undefined; mode: 'smooth' | 'fleet' };

export class Driver implements DriverCommands {
  readonly log: Logger;
  readonly runtime: Runtime<TypeLaunch>;
  private readonly routes: ReplyRoutes;
  private release: PreparedRelease | null = null;
  private server: ControlServer | null = null;
  private dirSource: ControlDirSource | null = null;
  private readonly web: WebSocketBinding;
  private readonly phase: ReleasePhase;
  private readonly cleanup = new Cleanup();
  private readonly t0 = monotonicMs();
  private shutdowns = 0;
  private exiting = false;
  private serial: Promise<void> = Promise.resolve();
  private readonly selected: (type: string) => boolean;
  private readonly warn = (m: string) => this.log.warn(m);
  private readonly webHandOffs: HandOff[];
  private notify: NotifyPolicy | null = null;
  private reaper: Reaper | null = null;
  private memory: { poke(): void } | null = null;
  private readonly sourceCfg: SourceConfig;

  constructor(readonly cfg: DriverConfig) {
    this.log = new Logger(cfg.verbosity, process.pid, (l) => process.stderr.write(l), 'DYNO-DRIVER');
    this.routes = new ReplyRoutes('final');
    this.selected = selectedBy(cfg.types);
    this.web = new WebSocketBinding(cfg.bind, cfg.env, cfg.startNumber, this.log);
    this.phase = new ReleasePhase(cfg.env, cfg.source.kind === 'control-dir', this.log);
    this.webHandOffs = handOffs(['einhorn', 'port'], { log: this.log, verbose: cfg.verbosity === 0 });
    this.sourceCfg = { source: cfg.source, types: cfg.types, stateDir: cfg.stateDir, cwd: cfg.cwd, quantities: cfg.quantities };
    this.runtime = this.newRuntime();
  }

  now(): number {
    return monotonicMs() - this.t0;
  }

  private newRuntime(): Runtime<TypeLaunch> {
    const signalNumber = (s: string) => osConstants.signals[s as NodeJS.Signals] ?? 0;
    return new Runtime<TypeLaunch>({
      log: this.log,
      fleet: { oneshot: this.cfg.oneshot, noun: 'process type', signalNumber },
      now: () => this.now(),
      shell: (spec) => {
        const web = spec.launch.web;
        return {
          name: spec.name,
          core: spec.config,
          launch: spec.launch.launch,
          listeners: this.web.listenersFor(spec.name),
          ...(web ? { handOffs: this.webHandOffs } : {}),
          socketPath: this.cfg.socketPath,
          killChildrenOnExit: this.cfg.killChildrenOnExit,
          stopGroup: true,
          log: this.log,
          output: (child, slot) => {
            const name = `${spec.name}.${slot + this.cfg.startNumber}`;
            const label = `${name} | `;
            pipeLines(child, () => label);
            if (web) this.web.watchSpawned(name, child);
          },
          onWorkerExit: () => this.memory?.poke(),
        };
      },
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
    const notifier = new Notifier(process.env, this.log);
    this.notify = new NotifyPolicy(notifier);
    this.cleanup.add(() => notifier.close());
    let initial: PreparedRelease | null = null;
    try {
      native.ensureNative();
      const look = firstLook(this.sourceCfg, (m) => warnings.push(m));
      initial = look.initial;
      this.server = await ControlServer.open(this.cfg.socketPath, 0o600, this.log, (c, r) => this.onRequest(c, r), {
        http: (socket: Socket, head: Buffer) => serveHttp(socket, head, this.httpApi()),
      });
      const server = this.server;
      this.cleanup.add(() => server.close());
      await this.web.bind(look.webPossible, look.port ?? this.cfg.env.PORT, this.cleanup);
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
    // A log reader that goes away must not take the driver down (EPIPE on stdout/stderr).
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
    this.memory = startMemoryKeeper(this.cleanup);
    installLastResort(this.log, () => {
      this.runtime.stopTimers();
      this.server?.unlink();
      this.cleanup.run();
    });
    // As PID 1 (a container's entrypoint) every orphan is ours: reap them.
    this.reaper = startReaper(
      {
        subreaper: false,
        isWorker: (pid) => this.runtime.hasPid(pid),
        workers: () => this.runtime.pids(),
        signalTimeoutMs: this.cfg.signalTimeoutSec > 0 ? this.cfg.signalTimeoutSec * 1000 : null,
        log: this.log,
      },
      this.cleanup,
    );
    const l = this.web.listener;
    const where = l ? `, listening on ${l.family === 6 ? `[${l.address}]` : l.address}:${l.port} (web)` : '';
    this.log.info(`Driver ${process.pid} up: control socket ${this.cfg.socketPath}${where}; app: ${describeSource(this.cfg.source)}`);
    const src = this.cfg.source;
    if (initial) {
      this.applyRelease(initial, null, src.kind === 'procfile' ? src.procfile : 'start');
    } else if (src.kind === 'control-dir') {
      this.dirSource = new ControlDirSource(
        src.dir,
        {
          prepare: (rel) => prepareRelease(this.sourceCfg, rel, this.release, this.warn),
          phase: (next) => this.phase.run(this.release, next, () => this.shutdowns > 0),
          apply: (next, origin) => this.applyChecked(next, null, origin, true),
          enqueue: (step) => this.enqueue(step),
          stopping: () => this.shutdowns > 0,
          current: () => this.release,
          phaseStatus: () => this.phase.last?.status,
        },
        this.log,
      );
      this.dirSource.start();
    }
  }

  private installSignals(): void {
    process.on('SIGHUP', () => {
      if (this.duringStartup) return this.duringStartup('SIGHUP');
      this.log.info('Got SIGHUP: reloading the app and upgrading every process type');
      this.upgradeApp([], undefined, 'smooth');
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) {
      process.on(sig, () => {
        if (this.duringStartup) return this.duringStartup(sig);
        this.log.info(`Got ${sig}: stopping every process gracefully (${this.cfg.stopSignal})`);
        this.shutdown(this.cfg.stopSignal, undefined);
      });
    }
    process.on('SIGUSR1', () => this.log.info('Got SIGUSR1: ignored (no inspector)'));
  }

  // ---- releases -----------------------------------------------------------------

  enqueue(step: () => Promise<void>): void {
    this.serial = this.serial.then(step).catch((err) => this.log.error(`internal error: ${(err as Error).stack ?? err}`));
  }

  /**
   * SIGHUP and `upgrade [TYPE...]`: read the app again (Procfile and .env, or
   * DIR/loaded), run its release phase if it is a new release, apply it, and
   * roll the named types (every type when none), replying to `replyTo`.
   */
  upgradeApp(types: readonly string[], replyTo: number | undefined, mode: 'smooth' | 'fleet'): void {
    this.enqueue(async () => {
      const fail = (message: string) => {
        this.log.error(message);
        if (replyTo !== undefined) this.routes.reply(replyTo, message, false, false);
      };
      if (this.shutdowns > 0) return fail('Not upgrading: the driver is shutting down.');
      const keep = this.release ? `still running release ${this.release.version}` : 'nothing is running';
      let next: PreparedRelease;
      try {
        next = await readAgain(this.sourceCfg, this.release, this.runtime.names().length > 0, this.warn);
      } catch (err) {
        return fail(`Upgrade failed: the app could not be read again: ${(err as Error).message}; ${keep}`);
      }
      if (this.shutdowns > 0) return fail('Not upgrading: the driver is shutting down.');
      const known = next.processes.filter((p) => this.selected(p.type)).map((p) => p.type);
      for (const t of types) {
        if (!known.includes(t)) return fail(`Upgrade failed: unknown process type '${t}' (the app has: ${known.join(', ') || 'none'}); ${keep}`);
      }
      for (const t of this.cfg.types) {
        if (!next.processes.some((p) => p.type === t)) this.log.warn(`Process type '${t}' is not in the reloaded app`);
      }
      if (replyTo !== undefined) this.routes.reply(replyTo, `Read the app again: release ${next.version}`, true, true);
      await this.applyChecked(next, { types: types.length ? types : known, replyTo, mode }, replyTo !== undefined ? 'upgrade' : 'SIGHUP');
    });
  }

  /** Run the release phase of a new release, then apply it; a failed release phase keeps the running release. */
  private async applyChecked(next: PreparedRelease, roll: Roll | null, origin: string, phaseDone = false): Promise<void> {
    const keep = this.release ? `still running release ${this.release.version}` : 'nothing is running';
    const fail = (message: string) => {
      this.log.error(message);
      if (roll?.replyTo !== undefined) this.routes.reply(roll.replyTo, message, false, false);
    };
    const progress = roll?.replyTo !== undefined ? (m: string) => this.routes.reply(roll.replyTo as number, m, true, true) : undefined;
    if (!phaseDone && !(await this.phase.run(this.release, next, () => this.shutdowns > 0, progress))) {
      return fail(`Upgrade failed: the release phase of release ${next.version} failed (${this.phase.last?.status}); ${keep}`);
    }
    if (this.shutdowns > 0) return fail('Not upgrading: the driver is shutting down.');
    try {
      const moved = await this.web.rebind(next);
      if (moved) this.runtime.group(WEB_TYPE)?.shell.setListeners(this.web.listenersFor(WEB_TYPE));
    } catch (err) {
      return fail(`Upgrade failed: ${(err as Error).message}; ${keep}`);
    }
    this.applyRelease(next, roll, origin);
  }

  /** Run `next`: per process type, start, scale, roll or drain (the fleet decides); `roll`: also roll these types. */
  private applyRelease(next: PreparedRelease, roll: Roll | null, origin: string): void {
    if (this.shutdowns > 0) return;
    const changes = diffReleases(this.release, next, this.selected);
    this.log.info(`Release ${next.version} from ${origin}: ${describeChanges(changes)}`);
    for (const c of changes) {
      if (c.kind === 'add' || (c.kind === 'update' && c.relaunch.includes('command'))) this.web.checkCommand(c.process, next);
      if (c.kind === 'add' && c.type === WEB_TYPE && !this.web.listener && !this.web.warnedNoSocket) {
        this.web.warnedNoSocket = true;
        this.log.warn('The web processes get no listening socket: no -b and no PORT (EINHORN_FD_COUNT=0)');
      }
    }
    this.release = next;
    const specs = next.processes.filter((p) => this.selected(p.type)).map((p) => this.spec(p, next));
    const ev: FleetEvent<TypeLaunch> = { type: 'apply', specs, why: `not in release ${next.version}` };
    if (roll) ev.roll = { groups: roll.types, mode: roll.mode, ...(roll.replyTo !== undefined ? { replyTo: roll.replyTo } : {}) };
    this.runtime.feed(ev);
  }

  private spec(p: ProcessDef, rel: PreparedRelease): GroupSpec<TypeLaunch> {
    const env = Object.entries(rel.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      name: p.type,
      quantity: p.quantity,
      launchKey: JSON.stringify([p.args, env, rel.slug, rel.slugKey, rel.cwd]),
      launch: { process: p, releaseVersion: rel.version, web: p.type === WEB_TYPE, launch: this.launchSpec(p, rel) },
      config: this.coreConfig(p.quantity),
    };
  }

  private coreConfig(quantity: number): Partial<CoreConfig> {
    const c = this.cfg;
    return {
      number: quantity,
      ackMode:
        c.ackMode.kind === 'manual'
          ? { kind: 'manual', deadlineMs: c.ackTimeoutSec * 1000 }
          : { kind: 'timer', ms: c.ackMode.seconds * 1000 },
      retries: Infinity,
      upgradeRetries: 3,
      respawnDelayMs: 1000,
      signalTimeoutMs: c.signalTimeoutSec > 0 ? c.signalTimeoutSec * 1000 : null,
      drainSignal: c.stopSignal,
      slots: 'named',
      respawn: !c.oneshot,
    };
  }

  private launchSpec(p: ProcessDef, rel: PreparedRelease): LaunchSpec {
    return {
      program: p.args[0] as string,
      args: p.args.slice(1),
      env: { ...this.cfg.env, ...rel.env },
      // What systemd told the driver is not for the dynos.
      dropEnv: SYSTEMD_VARS,
      cwd: rel.cwd,
      extraEnv: (slot) => {
        const e: Record<string, string> = { DYNO: `${p.type}.${slot + this.cfg.startNumber}` };
        // Read at each spawn: PORT follows the socket when a release moves it.
        const l = this.web.listener;
        const port = l ? String(l.port) : (rel.env.PORT ?? this.cfg.env.PORT);
        if (port !== undefined && port !== '') e.PORT = port;
        return e;
      },
    };
  }

  // ---- stopping -------------------------------------------------------------------

  /** Drain everything, exit 0 once every process is gone. A second request escalates to SIGKILL. */
  shutdown(signal: string, replyTo: number | undefined): void {
    this.shutdowns += 1;
    this.phase.stop(this.shutdowns === 1 ? signal : 'SIGKILL');
    if (this.shutdowns === 1) this.dirSource?.close();
    this.runtime.feed({ type: 'shutdown', signal, ...(replyTo !== undefined ? { replyTo } : {}) });
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
    this.dirSource?.close();
    this.runtime.stopTimers();
    this.server?.unlink();
    this.onChange();
    this.log.info('Every process has exited; bye');
    const timeout = this.cfg.signalTimeoutSec > 0 ? this.cfg.signalTimeoutSec * 1000 : 30_000;
    exitProcess(code, this.reaper, timeout, this.cleanup);
  }

  /** sd_notify after every batch of events: READY once every process type is up, RELOADING while one rolls. */
  private onChange(): void {
    if (!this.notify?.enabled) return;
    const groups = this.runtime.groups().filter((g) => !g.retiring);
    this.notify.update(
      groups.map((g) => ({ name: g.name, snapshot: g.snapshot })),
      this.shutdowns > 0 || this.exiting,
    );
  }

  // ---- control socket ---------------------------------------------------------------

  route(conn: ControlConnection, req: Request): number {
    return this.routes.open(conn, req.id);
  }

  get stopSignal(): string {
    return this.cfg.stopSignal;
  }

  private onRequest(conn: ControlConnection, req: Request): void {
    dispatchDriver(this, conn, req);
  }

  facts(): DriverFacts {
    const src = this.cfg.source;
    const rel = this.release;
    const l = this.web.listener;
    return {
      pid: process.pid,
      version: VERSION,
      source: src.kind === 'procfile' ? `Procfile ${src.procfile}` : `control directory ${src.dir}`,
      socketPath: this.cfg.socketPath,
      bind: l ? { address: l.address, port: l.port } : null,
      release: rel ? { version: rel.version, slug: rel.slug, stack: rel.stack, cwd: rel.cwd } : null,
      rejected: this.dirSource?.rejected ?? null,
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
    return { text: driverStatus(f), state: driverState(f) };
  }

  /** hsup's HTTP control API, over the driver's state. */
  private httpApi(): HttpApi {
    return {
      status: () => {
        const out: Record<string, { Status: string; IPAddress: string; Port: number }> = {};
        const l = this.web.listener;
        const port = l?.port ?? Number(this.release?.env.PORT ?? this.cfg.env.PORT ?? 0);
        for (const g of this.runtime.groups()) {
          const snap = g.snapshot;
          const live = snap.workers.some((w) => w.pid !== null && (w.state === 'up' || w.state === 'starting'));
          const status = g.retiring || snap.shuttingDown ? (snap.workers.length ? 'Retiring' : 'Retired') : live ? 'Started' : 'Stopped';
          out[g.name] = { Status: status, IPAddress: l?.address ?? '127.0.0.1', Port: port };
        }
        return { Processes: out };
      },
      stop: (types) => {
        const stopped: string[] = [];
        for (const t of types) {
          if (!this.runtime.group(t)) continue;
          this.log.info(`[${t}] stopped through the HTTP API (POST /control/stop): scaling to 0`);
          this.runtime.feed({ type: 'request', targets: [t], request: { type: 'setWorkers', count: 0 } });
          stopped.push(t);
        }
        return stopped;
      },
    };
  }
}
