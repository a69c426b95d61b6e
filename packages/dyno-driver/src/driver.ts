/**
 * The dyno driver's runtime: one WorkerGroup (one core) per process type,
 * one listening socket shared by the web type, releases applied as rolling
 * upgrades, and the control socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readlinkSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { CoreConfig, Event, ReplyTo } from '@einhyrningsins/core';
import {
  Cleanup,
  ControlServer,
  Logger,
  refuseForeignWorkerCommand,
  listenOn,
  StartupError,
  WorkerGroup,
  normalizeSignal,
  resolveProgram,
  isoTime,
  monotonicMs,
  parseBindSpec,
  pipeLines,
  resolveBind,
  bindShimEnv,
  bindShimProblem,
  staticExecutableWarning,
  type ControlConnection,
  type LaunchSpec,
  type ReplyFields,
} from '@einhyrningsins/master';
import type { Request } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import {
  checkControlDir,
  checkTypes,
  loadProcfileApp,
  peekControlDir,
  procfileDir,
  readControlFile,
  readDotenv,
  type AppSource,
} from './app-source.js';
import { ControlDirWatcher, LAST_ERROR_FILE, LOADED_FILE, NEW_FILE, REJECTED_FILE, setAside, writeLastError } from './control-dir.js';
import { AppError } from './errors.js';
import { parseScale } from './formation.js';
import { TYPE_NAME } from './procfile.js';
import { answerHttp, type HttpApi } from './http-api.js';
import { describeChanges, diffReleases, isNewRelease, type PreparedRelease, type ProcessDef, type Release } from './release.js';
import { prepareSlug } from './slug.js';
import { VERSION } from './version.js';
import { driverState, driverStatus, type DriverFacts } from './view.js';

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

/** The process type that gets the listening socket. */
export const WEB_TYPE = 'web';
const BACKLOG = 511;

interface TypeGroup {
  type: string;
  group: WorkerGroup;
  process: ProcessDef;
  releaseVersion: number;
  /** Removed by a release: draining, then dropped. */
  retiring: boolean;
  web: boolean;
}

interface Route {
  conn: ControlConnection;
  requestId: string | number | undefined;
  /** Progress is streamed only to requests with an id (einhorn's protocol). */
  streaming: boolean;
  done: boolean;
}

interface TypeResult {
  type: string;
  ok: boolean;
  message: string;
  /** The last progress message before the final one. */
  detail: string | null;
}

/** One request fanned out to several groups; answered once every group has. */
interface FanOut {
  route: Route;
  total: number;
  results: TypeResult[];
  finish: (results: TypeResult[], streaming: boolean) => { message: string; ok: boolean };
}

const lines = (results: TypeResult[]) => results.map((r) => `[${r.type}] ${r.message}`).join('\n');

const upgradeFinish: FanOut['finish'] = (results, streaming) => {
  const ok = results.every((r) => r.ok);
  if (ok) return { message: 'Upgrade done', ok };
  if (streaming) return { message: 'Upgrade failed', ok };
  const why = results.filter((r) => !r.ok).map((r) => `[${r.type}] ${r.detail ?? r.message}`);
  return { message: `Upgrade failed: ${why.join('; ')}`, ok };
};

export class Driver {
  private readonly log: Logger;
  private readonly active = new Map<string, TypeGroup>();
  private readonly retiring = new Set<TypeGroup>();
  private release: PreparedRelease | null = null;
  private rejected: { file: string; reason: string; at: string } | null = null;
  private listener: { fd: number; family: 4 | 6; address: string; port: number } | null = null;
  private server: ControlServer | null = null;
  private watcher: ControlDirWatcher | null = null;
  private readonly subRoutes = new Map<number, { fan: FanOut; type: string; last: string | null }>();
  private nextRoute = 1;
  private readonly cleanup = new Cleanup();
  private readonly t0 = monotonicMs();
  private shutdowns = 0;
  private exiting = false;
  private serial: Promise<void> = Promise.resolve();
  private newTimer: NodeJS.Timeout | null = null;
  private newQueued = false;
  /** A DIR/new that could be neither loaded nor set aside: skipped until it changes. */
  private stuckNew: string | null = null;
  private warnedNoSocket = false;
  /** The release phase running now (killed on shutdown). */
  private releaseChild: ChildProcess | null = null;
  private lastReleasePhase: { version: number; ok: boolean; status: string; at: string } | null = null;
  /** --oneshot: the highest exit status so far. */
  private oneshotStatus = 0;
  private readonly warnedStatic = new Set<string>();
  private readonly warn = (m: string) => this.log.warn(m);

  constructor(private readonly cfg: DriverConfig) {
    this.log = new Logger(cfg.verbosity, process.pid, (l) => process.stderr.write(l), 'DYNO-DRIVER');
  }

  private now(): number {
    return monotonicMs() - this.t0;
  }

  private selected = (type: string): boolean => this.cfg.types.length === 0 || this.cfg.types.includes(type);

  // ---- start-up ---------------------------------------------------------------

  /** Everything that can fail does so before the first process starts, and leaves nothing behind. */
  async start(): Promise<void> {
    const src = this.cfg.source;
    let initial: PreparedRelease | null = null;
    // Said once start-up has succeeded: a failure is one line.
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
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
      if (this.releaseChild?.pid !== undefined) {
        try {
          process.kill(-this.releaseChild.pid, this.shutdowns === 1 ? (this.cfg.stopSignal as NodeJS.Signals) : 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    };
    this.installSignals();
    try {
      native.ensureNative();
      let webPossible: boolean;
      let port: string | undefined;
      if (src.kind === 'procfile') {
        const rel = loadProcfileApp(src, 1, warn);
        checkTypes(rel.processes.map((p) => p.type), this.cfg.types, '', src.procfile);
        initial = { ...rel, cwd: procfileDir(src), slugKey: null };
        webPossible = rel.processes.some((p) => p.type === WEB_TYPE && this.selected(p.type));
        port = rel.env.PORT;
      } else {
        checkControlDir(src.dir);
        const dotenv = readDotenv(src.envFile, true, warn);
        const peek = peekControlDir(src.dir);
        if (peek.release) {
          checkTypes(peek.release.processes.map((p) => p.type), this.cfg.types, '', peek.file);
        }
        webPossible = this.selected(WEB_TYPE);
        port = peek.release?.env.PORT ?? dotenv.PORT;
      }
      this.server = await ControlServer.open(
        this.cfg.socketPath,
        0o600,
        this.log,
        (c, r) => this.onRequest(c, r),
        { http: (req) => answerHttp(req, this.httpApi()) },
      );
      const server = this.server;
      this.cleanup.add(() => server.close());
      await this.bindWeb(webPossible, port ?? this.cfg.env.PORT);
      if (initial?.releaseArgs && stoppedBy === null) {
        // Asked to stop while the first release phase runs: stop it (see `stop`), start nothing.
        during = 'the release phase';
        const ok = await this.releasePhase(initial);
        if (!ok && stoppedBy === null) throw new AppError(`the release phase of the app failed (${this.lastReleasePhase?.status}); not starting`);
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
    const where = this.listener
      ? `, listening on ${this.listener.family === 6 ? `[${this.listener.address}]` : this.listener.address}:${this.listener.port} (web)`
      : '';
    this.log.info(`Driver ${process.pid} up: control socket ${this.cfg.socketPath}${where}; app: ${this.describeSource()}`);
    if (initial) {
      this.applyRelease(initial, null, src.kind === 'procfile' ? src.procfile : 'start');
    } else if (src.kind === 'control-dir') {
      this.watcher = new ControlDirWatcher(
        src.dir,
        () => this.scheduleNewCheck(100),
        (m) => this.log.warn(m),
      );
      this.enqueue(async () => {
        await this.processNew(true);
        if (this.release === null) await this.loadLoaded();
        if (this.release === null) this.log.info(`Waiting for a release in ${join(src.dir, NEW_FILE)}`);
      });
    }
  }

  private describeSource(): string {
    const src = this.cfg.source;
    if (src.kind === 'control-dir') return `control directory ${src.dir}`;
    return `Procfile ${src.procfile}` + (src.envExplicit || existsSync(src.envFile) ? ` with ${src.envFile}` : '');
  }

  private async bindWeb(webPossible: boolean, port: string | undefined): Promise<void> {
    if (!webPossible) {
      if (this.cfg.bind) this.log.warn(`-b ${this.cfg.bind}: no web process type is run; not binding it`);
      return;
    }
    const text = this.cfg.bind ?? (port !== undefined && port !== '' ? `0.0.0.0:${port},r` : null);
    if (text === null) {
      this.log.warn('No -b and no PORT: the web processes get no listening socket (EINHORN_FD_COUNT=0)');
      this.warnedNoSocket = true;
      return;
    }
    const what = this.cfg.bind ? `-b ${text}` : `PORT=${port}`;
    let bind;
    try {
      bind = await resolveBind(parseBindSpec(text), null);
    } catch (err) {
      throw new StartupError(this.cfg.bind ? (err as Error).message : `${what}: ${(err as Error).message}`);
    }
    const fd = listenOn(bind, { backlog: BACKLOG, v6Only: null, what });
    this.cleanup.add(() => {
      if (this.listener) native.close(this.listener.fd);
      this.listener = null;
    });
    this.listener = { fd, family: bind.family, address: bind.address, port: native.getsockname(fd).port };
  }

  /**
   * A new release's PORT (.env, Env) differs from the port the web socket is
   * bound to (and no -b): bind the new one for the processes started from now
   * on; the old processes keep theirs until they exit.
   */
  private async rebindWeb(next: PreparedRelease): Promise<void> {
    if (this.cfg.bind || !this.listener) return;
    const port = next.env.PORT ?? this.cfg.env.PORT;
    if (port === undefined || port === '' || port === String(this.listener.port)) return;
    let bind;
    try {
      bind = await resolveBind(parseBindSpec(`0.0.0.0:${port},r`), null);
    } catch (err) {
      throw new Error(`PORT=${port}: ${(err as Error).message}`);
    }
    const fd = listenOn(bind, { backlog: BACKLOG, v6Only: null, what: `PORT=${port}` });
    const old = this.listener;
    this.listener = { fd, family: bind.family, address: bind.address, port: native.getsockname(fd).port };
    this.active.get(WEB_TYPE)?.group.setListeners([{ fd, family: bind.family }]);
    native.close(old.fd);
    this.log.info(`PORT changed from ${old.port} to ${this.listener.port}: new web processes listen on ${bind.address}:${this.listener.port}`);
  }

  /** Set while start() runs: what a stop signal (or HUP) does then. */
  private duringStartup: ((sig: NodeJS.Signals) => void) | null = null;

  private installSignals(): void {
    process.on('SIGHUP', () => {
      if (this.duringStartup) return this.duringStartup('SIGHUP');
      this.log.info('Got SIGHUP: reloading the app and upgrading every process type');
      this.reload([], null);
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) {
      process.on(sig, () => {
        if (this.duringStartup) return this.duringStartup(sig);
        this.log.info(`Got ${sig}: stopping every process gracefully (${this.cfg.stopSignal})`);
        this.shutdown(this.cfg.stopSignal, null);
      });
    }
    process.on('SIGUSR1', () => this.log.info('Got SIGUSR1: ignored (no inspector)'));
  }

  // ---- releases -----------------------------------------------------------------

  private enqueue(step: () => Promise<void>): void {
    this.serial = this.serial.then(step).catch((err) => this.log.error(`internal error: ${(err as Error).stack ?? err}`));
  }

  private scheduleNewCheck(ms: number): void {
    if (this.newTimer || this.newQueued || this.shutdowns > 0) return;
    this.newTimer = setTimeout(() => {
      this.newTimer = null;
      this.newQueued = true;
      this.enqueue(async () => {
        this.newQueued = false;
        await this.processNew(false);
      });
    }, ms);
  }

  /** A release file, checked and its slug unpacked, ready to apply. */
  private async prepare(rel: Release): Promise<PreparedRelease> {
    const src = this.cfg.source;
    if (src.kind === 'procfile') return { ...rel, cwd: procfileDir(src), slugKey: null };
    const env = src.envFile ? { ...readDotenv(src.envFile, true, this.warn), ...rel.env } : rel.env;
    const current = this.release ? { cwd: this.release.cwd, key: this.release.slugKey } : null;
    const place = await prepareSlug({
      slug: rel.slug,
      version: rel.version,
      baseDir: src.dir,
      stateDir: this.cfg.stateDir,
      defaultCwd: this.cfg.cwd,
      current,
    });
    const q = this.cfg.quantities;
    const processes = q.size ? rel.processes.map((p) => (q.has(p.type) ? { ...p, quantity: q.get(p.type) as number } : p)) : rel.processes;
    return { ...rel, processes, env, cwd: place.cwd, slugKey: place.key };
  }

  /** DIR/new: check it, unpack its slug, run its release phase, rename it to `loaded` and run it; or set it aside as `rejected`. */
  private async processNew(atStart: boolean): Promise<void> {
    const src = this.cfg.source;
    if (src.kind !== 'control-dir' || this.shutdowns > 0) return;
    const file = join(src.dir, NEW_FILE);
    let mtimeMs = 0;
    const ident = () => {
      try {
        const st = statSync(file);
        mtimeMs = st.mtimeMs;
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return null;
      }
    };
    const id = ident();
    if (id === null || id === this.stuckNew) return;
    // Still being written? Look again a little later.
    if (!atStart && Date.now() - mtimeMs < 200) {
      this.scheduleNewCheck(250);
      return;
    }
    let next: PreparedRelease;
    try {
      next = await this.prepare(readControlFile(file));
    } catch (err) {
      if (ident() === id) this.reject(file, src.dir, id, (err as Error).message);
      else this.scheduleNewCheck(0);
      return;
    }
    if (this.shutdowns > 0) return;
    if (ident() !== id) {
      // Replaced while we read it: start over with the newer file.
      this.scheduleNewCheck(0);
      return;
    }
    if (!(await this.releasePhase(next))) {
      if (this.shutdowns === 0 && ident() === id) this.reject(file, src.dir, id, `release phase failed (${this.lastReleasePhase?.status})`);
      else if (this.shutdowns === 0) this.scheduleNewCheck(0);
      return;
    }
    if (this.shutdowns > 0) return;
    if (ident() !== id) {
      // Replaced while its release phase ran: the newer file is the release now.
      this.scheduleNewCheck(0);
      return;
    }
    try {
      renameSync(file, join(src.dir, LOADED_FILE));
    } catch (err) {
      this.stuckNew = id;
      this.log.error(`Cannot rename ${file} to ${LOADED_FILE}: ${(err as Error).message}; not applying it`);
      return;
    }
    // As hsup: a release loaded clears the last rejection.
    for (const f of [REJECTED_FILE, LAST_ERROR_FILE]) {
      try {
        unlinkSync(join(src.dir, f));
      } catch {
        /* none */
      }
    }
    this.rejected = null;
    await this.applyChecked(next, null, file, true);
  }

  /** hsup's way: DIR/new becomes DIR/rejected and the reason is written to DIR/last_error. */
  private reject(file: string, dir: string, id: string, reason: string): void {
    let where = `moved to ${REJECTED_FILE}, reason in ${LAST_ERROR_FILE}`;
    try {
      setAside(file, join(dir, REJECTED_FILE));
    } catch (err) {
      this.stuckNew = id;
      where = `could not be moved to ${REJECTED_FILE}: ${(err as Error).message}; reason in ${LAST_ERROR_FILE}`;
    }
    try {
      writeLastError(join(dir, LAST_ERROR_FILE), reason);
    } catch (err) {
      where += ` (cannot write ${LAST_ERROR_FILE}: ${(err as Error).message})`;
    }
    this.rejected = { file, reason, at: isoTime() };
    const running = this.release ? `still running release ${this.release.version}` : 'nothing is running';
    this.log.error(`Rejected release ${file} (${where}): ${reason}; ${running}`);
  }

  /** At start without a valid DIR/new: run DIR/loaded (its release phase ran when it was loaded). */
  private async loadLoaded(): Promise<void> {
    const src = this.cfg.source;
    if (src.kind !== 'control-dir') return;
    const file = join(src.dir, LOADED_FILE);
    if (!existsSync(file)) return;
    try {
      const next = await this.prepare(readControlFile(file));
      this.applyRelease(next, null, file);
    } catch (err) {
      this.log.error(`Cannot run ${file}: ${(err as Error).message}`);
    }
  }

  /**
   * SIGHUP and `upgrade [TYPE...]`: read the app again (Procfile and .env, or
   * DIR/loaded), run its release phase if it is a new release, apply it, and
   * roll the named types (every type when none). `route`: where the upgrade's
   * progress and its final reply go.
   */
  private reload(types: readonly string[], route: Route | null, mode: 'smooth' | 'fleet' = 'smooth'): void {
    this.enqueue(async () => {
      const fail = (message: string) => {
        this.log.error(message);
        if (route) this.send(route, message, false, false);
      };
      if (this.shutdowns > 0) return fail('Not upgrading: the driver is shutting down.');
      const src = this.cfg.source;
      const keep = this.release ? `still running release ${this.release.version}` : 'nothing is running';
      let next: PreparedRelease;
      try {
        if (src.kind === 'procfile') {
          next = await this.prepare(loadProcfileApp(src, (this.release?.version ?? 0) + 1, this.warn));
          // All lines skipped: a mistake, not an app to stop everything for.
          if (next.processes.length === 0 && !next.releaseArgs && this.active.size > 0) {
            throw new Error(`${src.procfile}: no process types defined`);
          }
        } else {
          const file = join(src.dir, LOADED_FILE);
          if (!existsSync(file)) throw new Error(`there is no ${file}`);
          next = await this.prepare(readControlFile(file));
        }
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
      if (route) this.send(route, `Read the app again: release ${next.version}`, true, true);
      await this.applyChecked(next, { types: types.length ? types : known, route, mode }, route ? 'upgrade' : 'SIGHUP');
    });
  }

  /** Run the release phase of a new release, then apply it; a failed release phase keeps the running release. */
  private async applyChecked(
    next: PreparedRelease,
    roll: { types: readonly string[]; route: Route | null; mode: 'smooth' | 'fleet' } | null,
    origin: string,
    phaseDone = false,
  ): Promise<void> {
    const keep = this.release ? `still running release ${this.release.version}` : 'nothing is running';
    const fail = (message: string) => {
      this.log.error(message);
      if (roll?.route) this.send(roll.route, message, false, false);
    };
    if (!phaseDone && !(await this.releasePhase(next, roll?.route ?? null))) {
      return fail(`Upgrade failed: the release phase of release ${next.version} failed (${this.lastReleasePhase?.status}); ${keep}`);
    }
    if (this.shutdowns > 0) return fail('Not upgrading: the driver is shutting down.');
    try {
      await this.rebindWeb(next);
    } catch (err) {
      return fail(`Upgrade failed: ${(err as Error).message}; ${keep}`);
    }
    this.applyRelease(next, roll, origin);
  }

  /**
   * The release phase (a `release` process type) of `next`, when it is a new
   * release: run once, to its end, before anything rolls. True when there is
   * none or it exited 0.
   */
  private async releasePhase(next: PreparedRelease, route: Route | null = null): Promise<boolean> {
    if (!next.releaseArgs) return true;
    if (!isNewRelease(this.release, next, this.cfg.source.kind === 'control-dir')) return true;
    if (this.shutdowns > 0) return false;
    const [program, ...args] = next.releaseArgs as [string, ...string[]];
    const name = 'release.1';
    this.log.info(`Release ${next.version}: running the release phase: ${next.releaseArgs.join(' ')}`);
    if (route) this.send(route, `Release ${next.version}: running the release phase`, true, true);
    const env = { ...this.cfg.env, ...next.env, DYNO: name };
    const result = await new Promise<{ ok: boolean; status: string }>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(program, args, { cwd: next.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      } catch (err) {
        resolve({ ok: false, status: (err as Error).message });
        return;
      }
      this.releaseChild = child;
      this.pipeLabelled(name, child);
      child.once('error', (err) => resolve({ ok: false, status: err.message }));
      child.once('exit', (code, signal) => {
        if (signal) resolve({ ok: false, status: `killed by ${signal}` });
        else resolve({ ok: code === 0, status: `exit status ${code}` });
      });
    });
    this.releaseChild = null;
    this.lastReleasePhase = { version: next.version, ...result, at: isoTime() };
    if (result.ok) this.log.info(`Release ${next.version}: the release phase succeeded`);
    else this.log.error(`Release ${next.version}: the release phase failed (${result.status})`);
    return result.ok;
  }

  /** Run `next`: per process type, start, scale, roll or drain; `roll`: also roll these types, replying to its route. */
  private applyRelease(
    next: PreparedRelease,
    roll: { types: readonly string[]; route: Route | null; mode: 'smooth' | 'fleet' } | null,
    origin: string,
  ): void {
    if (this.shutdowns > 0) return;
    const changes = diffReleases(this.release, next, this.selected);
    this.log.info(`Release ${next.version} from ${origin}: ${describeChanges(changes)}`);
    this.release = next;
    const rolled: TypeGroup[] = [];
    for (const c of changes) {
      if (c.kind === 'add') {
        this.startGroup(c.process, next);
      } else if (c.kind === 'remove') {
        const tg = this.active.get(c.type);
        if (!tg) continue;
        this.active.delete(c.type);
        this.retiring.add(tg);
        tg.retiring = true;
        this.log.info(`[${c.type}] not in release ${next.version}: draining its processes`);
        tg.group.feed({ type: 'shutdown', signal: tg.group.snapshot().config.drainSignal });
      } else {
        const tg = this.active.get(c.type);
        if (!tg) {
          this.startGroup(c.process, next);
          continue;
        }
        tg.group.setLaunch(this.launchSpec(c.process, next));
        if (c.relaunch.includes('command')) this.checkStaticCommand(c.process, next);
        tg.process = c.process;
        tg.releaseVersion = next.version;
        if (c.quantity !== null) tg.group.feed({ type: 'setWorkers', count: c.quantity });
        if (roll?.types.includes(c.type)) rolled.push(tg);
        else if (c.relaunch.length > 0) tg.group.feed({ type: 'upgrade', mode: 'smooth' });
      }
    }
    if (!roll) return;
    if (rolled.length === 0) {
      if (roll.route) this.send(roll.route, 'Upgrade done', false, true);
      return;
    }
    this.fanOut(
      roll.route,
      rolled.map((tg) => ({ tg, event: (replyTo) => ({ type: 'upgrade', mode: roll.mode, replyTo }) })),
      upgradeFinish,
    );
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
    const shim = p.type === WEB_TYPE && this.listener !== null && this.bindShim();
    return {
      program: p.args[0] as string,
      args: p.args.slice(1),
      env: { ...this.cfg.env, ...rel.env },
      dropEnv: [],
      cwd: rel.cwd,
      extraEnv: (slot) => {
        const e: Record<string, string> = { DYNO: `${p.type}.${slot + this.cfg.startNumber}` };
        // Read at each spawn: PORT follows the socket when a release moves it.
        const port = this.listener ? String(this.listener.port) : (rel.env.PORT ?? this.cfg.env.PORT);
        if (port !== undefined && port !== '') e.PORT = port;
        if (shim && p.type === WEB_TYPE && this.listener) {
          // The app's own bind() of $PORT becomes the inherited socket (fd 3).
          const preload = rel.env.LD_PRELOAD ?? this.cfg.env.LD_PRELOAD;
          Object.assign(e, bindShimEnv([{ childFd: 3, family: this.listener.family }], preload, this.cfg.verbosity === 0));
        }
        return e;
      },
    };
  }

  private shimChecked: boolean | null = null;

  /** The bind shim is there (else the web processes must use EINHORN_FD_0; said once). */
  private bindShim(): boolean {
    if (this.shimChecked === null) {
      const problem = bindShimProblem();
      this.shimChecked = problem === null;
      if (problem) {
        this.log.warn(`${problem}: web processes that bind $PORT themselves will fail with EADDRINUSE; only EINHORN_FD_0 (fd 3) works`);
      }
    }
    return this.shimChecked;
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
  private checkStaticCommand(p: ProcessDef, rel: PreparedRelease): void {
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
      const env = { ...this.cfg.env, ...rel.env };
      this.checkStatic(`${p.type}.${this.cfg.startNumber}`, null, resolveProgram(word, env.PATH, rel.cwd));
    } catch {
      /* not found: the start will say so */
    }
  }

  private startGroup(p: ProcessDef, rel: PreparedRelease): void {
    const web = p.type === WEB_TYPE;
    if (web && !this.listener && !this.warnedNoSocket) {
      this.warnedNoSocket = true;
      this.log.warn('The web processes get no listening socket: no -b and no PORT (EINHORN_FD_COUNT=0)');
    }
    const listeners = web && this.listener ? [{ fd: this.listener.fd, family: this.listener.family }] : [];
    this.checkStaticCommand(p, rel);
    const tg: TypeGroup = {
      type: p.type,
      process: p,
      releaseVersion: rel.version,
      retiring: false,
      web,
      group: undefined as unknown as WorkerGroup,
    };
    tg.group = new WorkerGroup({
      name: p.type,
      core: this.coreConfig(p.quantity),
      launch: this.launchSpec(p, rel),
      listeners,
      socketPath: this.cfg.socketPath,
      killChildrenOnExit: this.cfg.killChildrenOnExit,
      log: this.log,
      stopGroup: true,
      output: (child, slot) => this.onSpawned(p.type, web, child, slot),
      onChildExit: (_pid, _slot, code, signal) => this.childExited(code, signal),
      onReply: (to, message, wait, ok) => this.reply(to, message, wait, ok),
      onExit: () => this.groupExited(tg),
      now: () => this.now(),
    });
    this.active.set(p.type, tg);
    tg.group.feed({ type: 'start' });
  }

  private groupExited(tg: TypeGroup): void {
    tg.group.stopTimers();
    if (this.active.get(tg.type) === tg) this.active.delete(tg.type);
    this.retiring.delete(tg);
    if (this.shutdowns === 0) this.log.info(`[${tg.type}] every process has exited; process type removed`);
    if (this.shutdowns > 0 && this.active.size === 0 && this.retiring.size === 0) setImmediate(() => this.exit(0));
  }

  private onSpawned(type: string, web: boolean, child: ChildProcess, slot: number): void {
    const name = `${type}.${slot + this.cfg.startNumber}`;
    this.pipeLabelled(name, child);
    const pid = child.pid;
    if (web && this.listener && pid !== undefined) {
      // After the shell has exec'd the program (and again later, for slow wrappers).
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

  /** --oneshot: remember the highest status; exit once no process is left. */
  private childExited(code: number | null, signal: string | null): void {
    if (!this.cfg.oneshot || this.shutdowns > 0) return;
    const status = signal ? 128 + (osConstants.signals[signal as NodeJS.Signals] ?? 0) : (code ?? 1);
    this.oneshotStatus = Math.max(this.oneshotStatus, status);
    setImmediate(() => {
      if (this.exiting || this.shutdowns > 0) return;
      const left = this.allGroups().some((tg) => {
        const snap = tg.group.snapshot();
        return snap.config.number > 0 || snap.workers.length > 0;
      });
      if (!left) {
        this.log.info(`--oneshot: every process has ended; exiting with status ${this.oneshotStatus}`);
        this.exit(this.oneshotStatus);
      }
    });
  }

  /** A process's output, line by line, prefixed with its name: `web.1 | ...`. */
  private pipeLabelled(name: string, child: ChildProcess): void {
    const label = `${name} | `;
    pipeLines(child, () => label);
  }

  // ---- stopping -------------------------------------------------------------------

  private allGroups(): TypeGroup[] {
    return [...this.active.values(), ...this.retiring];
  }

  /** Drain everything, exit 0 once every process is gone. A second request escalates to SIGKILL. */
  private shutdown(signal: string, route: Route | null): void {
    this.shutdowns += 1;
    if (this.releaseChild?.pid !== undefined) {
      try {
        process.kill(-this.releaseChild.pid, this.shutdowns === 1 ? (signal as NodeJS.Signals) : 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (this.shutdowns === 1) {
      this.watcher?.close();
      this.watcher = null;
      if (this.newTimer) clearTimeout(this.newTimer);
      this.newTimer = null;
    }
    // The first time, the retiring groups are already draining; asking them again would SIGKILL them.
    const targets = this.shutdowns === 1 ? [...this.active.values()] : this.allGroups();
    if (this.allGroups().length === 0) {
      if (route) this.send(route, 'No processes are running; exiting.', false, true);
      if (this.releaseChild) this.releaseChild.once('exit', () => this.exit(0));
      else setImmediate(() => this.exit(0));
      return;
    }
    if (route && targets.length === 0) this.send(route, 'Already stopping: waiting for the draining processes.', false, true);
    this.fanOut(
      route,
      targets.map((tg) => ({ tg, event: (replyTo) => ({ type: 'shutdown', signal, replyTo }) })),
      (results) => ({ message: lines(results), ok: results.every((r) => r.ok) }),
    );
  }

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    this.watcher?.close();
    if (this.newTimer) clearTimeout(this.newTimer);
    for (const tg of this.allGroups()) tg.group.stopTimers();
    this.server?.unlink();
    this.cleanup.run();
    this.log.info('Every process has exited; bye');
    process.exitCode = code;
    // Let output and replies flush; never hang on a stray handle.
    setTimeout(() => process.exit(code), 500).unref();
  }

  // ---- control socket ---------------------------------------------------------------

  private route(conn: ControlConnection, req: Request): Route {
    return { conn, requestId: req.id, streaming: req.id !== undefined, done: false };
  }

  private send(route: Route, message: string, wait: boolean, ok: boolean, extra: Omit<ReplyFields, 'message'> = {}): void {
    if (route.done) return;
    if (!route.streaming && wait) return;
    if (!wait) route.done = true;
    const fields: ReplyFields = { message, ...extra };
    if (!ok) fields.error = true;
    if (route.streaming && wait) fields.wait = true;
    route.conn.send(fields, route.streaming ? route.requestId : undefined);
  }

  /**
   * Feed one event per group, each with its own reply route; progress is
   * streamed as `[type] message`, and one final reply is made by `finish`
   * once every group has answered.
   */
  private fanOut(
    route: Route | null,
    targets: Array<{ tg: TypeGroup; event: (replyTo: ReplyTo | undefined) => Event }>,
    finish: FanOut['finish'],
  ): void {
    if (!route) {
      for (const { tg, event } of targets) tg.group.feed(event(undefined));
      return;
    }
    const fan: FanOut = { route, total: targets.length, results: [], finish };
    for (const { tg, event } of targets) {
      const id = this.nextRoute++;
      this.subRoutes.set(id, { fan, type: tg.type, last: null });
      tg.group.feed(event(id));
    }
  }

  private reply(to: number, message: string, wait: boolean, ok: boolean): void {
    const sub = this.subRoutes.get(to);
    if (!sub) return;
    const fan = sub.fan;
    if (wait) {
      sub.last = message;
      this.send(fan.route, `[${sub.type}] ${message}`, true, ok);
      return;
    }
    this.subRoutes.delete(to);
    fan.results.push({ type: sub.type, ok, message, detail: sub.last });
    if (fan.results.length === fan.total) {
      const { message: m, ok: allOk } = fan.finish(fan.results, fan.route.streaming);
      this.send(fan.route, m, false, allOk);
    }
  }

  private findByPid(pid: number): TypeGroup | undefined {
    return this.allGroups().find((tg) => tg.group.hasPid(pid));
  }

  /** The groups named by `names` (all active ones when empty), or an error message. */
  private named(names: readonly string[]): TypeGroup[] | string {
    if (names.length === 0) return [...this.active.values()];
    const out: TypeGroup[] = [];
    for (const n of new Set(names)) {
      const tg = this.active.get(n);
      if (!tg) return `Unknown process type '${n}' (running: ${[...this.active.keys()].join(', ') || 'none'})`;
      out.push(tg);
    }
    return out;
  }

  facts(): DriverFacts {
    const src = this.cfg.source;
    const rel = this.release;
    return {
      pid: process.pid,
      version: VERSION,
      source: src.kind === 'procfile' ? `Procfile ${src.procfile}` : `control directory ${src.dir}`,
      socketPath: this.cfg.socketPath,
      bind: this.listener ? { address: this.listener.address, port: this.listener.port } : null,
      release: rel ? { version: rel.version, slug: rel.slug, stack: rel.stack, cwd: rel.cwd } : null,
      rejected: this.rejected,
      releasePhase: this.lastReleasePhase,
      startNumber: this.cfg.startNumber,
      stopSignal: this.cfg.stopSignal,
      shuttingDown: this.shutdowns > 0,
      now: this.now(),
      types: this.allGroups().map((tg) => ({
        type: tg.type,
        retiring: tg.retiring,
        releaseVersion: tg.releaseVersion,
        command: tg.process.args,
        web: tg.web,
        snapshot: tg.group.snapshot(),
      })),
    };
  }

  /** hsup's HTTP control API, over the driver's state. */
  private httpApi(): HttpApi {
    return {
      status: () => {
        const out: Record<string, { Status: string; IPAddress: string; Port: number }> = {};
        const port = this.listener?.port ?? Number(this.release?.env.PORT ?? this.cfg.env.PORT ?? 0);
        for (const tg of this.allGroups()) {
          const snap = tg.group.snapshot();
          const live = snap.workers.some((w) => w.pid !== null && (w.state === 'up' || w.state === 'starting'));
          const status = tg.retiring || snap.shuttingDown ? (snap.workers.length ? 'Retiring' : 'Retired') : live ? 'Started' : 'Stopped';
          out[tg.type] = { Status: status, IPAddress: this.listener?.address ?? '127.0.0.1', Port: port };
        }
        return { Processes: out };
      },
      stop: (types) => {
        const stopped: string[] = [];
        for (const t of types) {
          const tg = this.active.get(t);
          if (!tg) continue;
          this.log.info(`[${t}] stopped through the HTTP API (POST /control/stop): scaling to 0`);
          tg.group.feed({ type: 'setWorkers', count: 0 });
          stopped.push(t);
        }
        return stopped;
      },
    };
  }

  private onRequest(conn: ControlConnection, req: Request): void {
    const cmd = Object.hasOwn(COMMANDS, req.command) ? COMMANDS[req.command] : undefined;
    if (!cmd) {
      conn.send({ message: `Unrecognized command: ${JSON.stringify(req.command)}\n\n${helpMessage()}`, error: true }, req.id);
      return;
    }
    cmd.run(this, conn, req);
  }

  // The commands reach in through these (kept small and named).

  /** @internal */ foreign(conn: ControlConnection, req: Request): boolean {
    return req.pid !== undefined && refuseForeignWorkerCommand((level, m) => this.log.log(level, m), conn, req, req.pid);
  }

  /** @internal */ ack(pid: number | undefined, ping: { requestId: string | number | null } | null): void {
    if (pid === undefined) return this.log.warn('worker:ack or worker:ping without a valid pid');
    const tg = this.findByPid(pid);
    if (!tg) return this.log.warn(`No process with pid ${pid}; ignoring its ${ping ? 'ping' : 'ACK'}`);
    tg.group.feed(ping ? { type: 'ping', pid, requestId: ping.requestId } : { type: 'ack', pid });
  }

  /** @internal */ upgrade(conn: ControlConnection, req: Request, mode: 'smooth' | 'fleet'): void {
    for (const t of req.args) {
      if (!TYPE_NAME.test(t)) return conn.send({ message: `Invalid process type ${JSON.stringify(t)}`, error: true }, req.id);
    }
    this.log.info(`Asked to upgrade ${req.args.length ? req.args.join(', ') : 'every process type'}: reading the app again`);
    this.reload([...new Set(req.args)], this.route(conn, req), mode);
  }

  /** @internal */ scale(conn: ControlConnection, req: Request): void {
    if (req.args.length === 0) return conn.send({ message: 'scale expects TYPE=N [TYPE=N...]', error: true }, req.id);
    const wanted = new Map<string, number>();
    for (const a of req.args) {
      let s;
      try {
        s = parseScale(a);
      } catch (err) {
        return conn.send({ message: `scale: ${(err as Error).message}`, error: true }, req.id);
      }
      wanted.set(s.type, s.quantity);
    }
    const targets = this.named([...wanted.keys()]);
    if (typeof targets === 'string') return conn.send({ message: targets, error: true }, req.id);
    this.fanOut(
      this.route(conn, req),
      targets.map((tg) => ({ tg, event: (replyTo) => ({ type: 'setWorkers', count: wanted.get(tg.type) as number, replyTo }) })),
      (results) => ({ message: lines(results), ok: results.every((r) => r.ok) }),
    );
  }

  /** @internal */ incDec(conn: ControlConnection, req: Request, how: 'inc' | 'dec'): void {
    if (req.args.length !== 1) {
      return conn.send(
        { message: `${how} expects one process type (running: ${[...this.active.keys()].join(', ') || 'none'})`, error: true },
        req.id,
      );
    }
    const targets = this.named(req.args);
    if (typeof targets === 'string') return conn.send({ message: targets, error: true }, req.id);
    this.fanOut(
      this.route(conn, req),
      targets.map((tg) => ({ tg, event: (replyTo) => ({ type: how, replyTo }) })),
      (results) => ({ message: lines(results), ok: results.every((r) => r.ok) }),
    );
  }

  /** @internal */ signal(conn: ControlConnection, req: Request): void {
    if (req.args.length === 0) return conn.send({ message: 'No signal given (args: SIG1 [SIG2 ...])', error: true }, req.id);
    const sigs: string[] = [];
    for (const a of req.args) {
      const s = normalizeSignal(a);
      if (!s) return conn.send({ message: `Invalid signal: ${JSON.stringify(a)}`, error: true }, req.id);
      sigs.push(s);
    }
    const targets = this.allGroups();
    if (targets.length === 0) return conn.send({ message: 'No processes are running.' }, req.id);
    this.fanOut(
      this.route(conn, req),
      targets.map((tg) => ({ tg, event: (replyTo) => ({ type: 'signal', signals: sigs, replyTo }) })),
      (results) => ({ message: lines(results), ok: results.every((r) => r.ok) }),
    );
  }

  /** @internal */ die(conn: ControlConnection, req: Request): void {
    const first = req.args[0];
    const sig = first === undefined ? this.cfg.stopSignal : normalizeSignal(first);
    if (!sig) return conn.send({ message: `Invalid signal: ${JSON.stringify(first)}`, error: true }, req.id);
    this.log.info(`Asked to stop (die ${sig}): stopping every process`);
    this.shutdown(sig, this.route(conn, req));
  }
}

interface Command {
  help?: string;
  run(d: Driver, conn: ControlConnection, req: Request): void;
}

const say = (conn: ControlConnection, req: Request, message: string, extra: Omit<ReplyFields, 'message'> = {}) =>
  conn.send({ message, ...extra }, req.id);

const COMMANDS: Readonly<Record<string, Command>> = {
  'worker:ack': {
    run(d, conn, req) {
      if (d.foreign(conn, req)) return;
      d.ack(req.pid, null);
      conn.end();
    },
  },
  'worker:ping': {
    run(d, conn, req) {
      if (d.foreign(conn, req)) return;
      d.ack(req.pid, { requestId: req.requestId ?? null });
      conn.end();
    },
  },
  ehlo: {
    run(_d, conn, req) {
      say(conn, req, `Welcome, ${req.user ?? 'stranger'}! You are speaking to Einhorn Master Process ${process.pid} (einhyrningsins-dyno).\nThis is einhyrningsins-dyno ${VERSION}.\n`);
    },
  },
  help: {
    help: 'Print out available commands',
    run(_d, conn, req) {
      say(conn, req, helpMessage());
    },
  },
  state: {
    help: 'The state of every process type, as JSON (also in the `state` field)',
    run(d, conn, req) {
      const state = driverState(d.facts());
      say(conn, req, JSON.stringify(state, null, 2) + '\n', { state });
    },
  },
  status: {
    help: 'Summary of every process type and its processes',
    run(d, conn, req) {
      const f = d.facts();
      say(conn, req, driverStatus(f), { state: driverState(f) });
    },
  },
  version: {
    help: 'Print the version of the driver',
    run(_d, conn, req) {
      say(conn, req, `einhyrningsins-dyno ${VERSION}`);
    },
  },
  upgrade: {
    help: 'Roll the named process types (all when none) smoothly; waits for every one (args: [TYPE...])',
    run(d, conn, req) {
      d.upgrade(conn, req, 'smooth');
    },
  },
  upgrade_fleet: {
    help: 'Roll the named process types (all when none) a fleet at a time (args: [TYPE...])',
    run(d, conn, req) {
      d.upgrade(conn, req, 'fleet');
    },
  },
  scale: {
    help: 'Set the number of processes of types (args: TYPE=N [TYPE=N...])',
    run(d, conn, req) {
      d.scale(conn, req);
    },
  },
  inc: {
    help: 'One more process of a type (args: TYPE)',
    run(d, conn, req) {
      d.incDec(conn, req, 'inc');
    },
  },
  dec: {
    help: 'One process fewer of a type (args: TYPE)',
    run(d, conn, req) {
      d.incDec(conn, req, 'dec');
    },
  },
  signal: {
    help: 'Send signals to every process (args: SIG1 [SIG2 ...])',
    run(d, conn, req) {
      d.signal(conn, req);
    },
  },
  die: {
    help: 'Stop every process (SIGNAL, default the stop signal, SIGTERM) and exit once all are gone (args: [SIGNAL])',
    run(d, conn, req) {
      d.die(conn, req);
    },
  },
};

export function helpMessage(): string {
  const rows = Object.entries(COMMANDS)
    .filter(([, c]) => c.help)
    // Code-unit order, not localeCompare: its ICU collator costs a master 2.9 MB of RSS.
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, c]) => `${name}: ${c.help}`);
  return `You are speaking to the einhyrningsins-dyno command socket. You can run the following commands:\n\n${rows.join('\n')}\n`;
}
