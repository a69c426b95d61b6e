/**
 * supervisorctl's commands over a config file's programs (--config): `status` with
 * supervisord's state names per process, `start|stop|restart NAME|GROUP:*|all`.
 * A program is one runtime group; its processes are the group's slots, and a
 * process's state is read from its group's engine (core/): a worker starting is
 * STARTING, up is RUNNING, asked to stop STOPPING; an empty slot the engine still
 * wants is BACKOFF after a failed start (else STARTING), FATAL once the engine gave up
 * (startretries), STOPPED when the program is stopped. `start` and `stop` answer once
 * every named process is RUNNING (or FATAL) or gone; `restart` of a program rolls it
 * (a new process up before an old one is stopped).
 */
import type { CoreSnapshot } from '@einhyrningsins/core';
import type { ControlConnection, GroupShellOptions, Logger, Runtime, RuntimeGroup } from '@einhyrningsins/master';
import type { Request } from '@einhyrningsins/protocol';
import type { ConfigSource } from './config-source.js';
import { diff, type ConfigModel, type ProgramConfig } from './config/index.js';
import type { PreparedRelease } from './release.js';
import { processName } from './program-launch.js';
import { resolveNames } from './program-names.js';
import { ProgramLogs } from './program-logs.js';
import { ProgramReleases } from './program-releases.js';
import type { TypeLaunch } from './release-applier.js';

export type SupervisorState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'EXITED' | 'FATAL';

export interface ProcessStatus {
  name: string;
  group: string;
  state: SupervisorState;
  pid: number | null;
  /** Milliseconds since it was spawned (RUNNING). */
  uptimeMs: number | null;
  /** EXITED: how (`exit 0`, `SIGTERM`). */
  lastExit?: string;
}

/**
 * Each process of a program as supervisord would call it now. `exitedOnItsOwn`: the
 * slots whose last process exited unasked (EXITED once the engine no longer wants them).
 */
export function programStatus(p: ProgramConfig, snap: CoreSnapshot | null, now: number, exitedOnItsOwn: ReadonlySet<number> = new Set()): ProcessStatus[] {
  const live = snap ? snap.workers.filter((w) => w.state === 'starting' || w.state === 'up').length : 0;
  // The engine fills the lowest free slots first: that many empty slots are still wanted.
  let wantedEmpty = snap && !snap.shuttingDown ? Math.max(0, snap.config.number - live) : 0;
  return p.processes.map((x, slot) => {
    const base = { name: x.name, group: x.group, pid: null, uptimeMs: null };
    if (!snap) return { ...base, state: 'STOPPED' };
    const ws = snap.workers.filter((w) => w.slot === slot);
    const w = ws.find((v) => v.state === 'up') ?? ws.find((v) => v.state === 'starting') ?? ws[0];
    if (w) {
      const state: SupervisorState = w.state === 'up' ? 'RUNNING' : w.state === 'starting' ? 'STARTING' : 'STOPPING';
      return { ...base, state, pid: w.pid, uptimeMs: state === 'RUNNING' ? Math.max(0, now - w.spawnedAt) : null };
    }
    if (wantedEmpty > 0) {
      wantedEmpty -= 1;
      if (snap.gaveUp) return { ...base, state: 'FATAL' };
      return { ...base, state: snap.streak > 0 ? 'BACKOFF' : 'STARTING' };
    }
    return { ...base, state: exitedOnItsOwn.has(slot) ? 'EXITED' : 'STOPPED' };
  });
}

function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

/**
 * supervisorctl status's lines: `group:name` (or `name` when they are the same), state,
 * description, laid out as supervisorctl 4.2.5's `_show_statuses` does: the name padded to
 * 3 more than the longest (at least 30), the state to 10, the description right after.
 */
export function statusLines(list: readonly ProcessStatus[]): string {
  const label = (s: ProcessStatus) => (s.group === s.name ? s.name : `${s.group}:${s.name}`);
  const width = Math.max(30, ...list.map((s) => label(s).length)) + 3;
  return (
    list
      .map((s) => {
        const name = label(s);
        const desc =
          s.state === 'RUNNING'
            ? `pid ${s.pid}, uptime ${uptime(s.uptimeMs ?? 0)}`
            : s.state === 'FATAL' || s.state === 'BACKOFF'
              ? 'Exited too quickly (process log may have details)'
              : s.state === 'STOPPED'
                ? 'Not started'
                : s.state === 'EXITED'
                  ? `exited on its own (${s.lastExit ?? '?'})`
                : s.pid !== null
                  ? `pid ${s.pid}`
                  : '';
        return `${name.padEnd(width)}${s.state.padEnd(10)}${desc}`.trimEnd();
      })
      .join('\n') + '\n'
  );
}

/** minisv's started/finished of a task: its last process's start, the last exit (wall clock, ms). */
export interface ProgramRun {
  startedAt: number | null;
  finishedAt?: number;
  exit?: { code: number | null; signal: string | null };
}

interface Waiter {
  names: string[];
  done: (statuses: ProcessStatus[]) => string | null;
  conn: ControlConnection;
  req: Request;
}

export class ConfigControl {
  private readonly waiters = new Set<Waiter>();
  /** Per program, the slots whose last process exited unasked, and how. */
  private readonly exits = new Map<string, Map<number, string>>();
  /** Per program, when its last process started and when the last one ended, and how (wall clock, ms): minisv's status. */
  readonly runs = new Map<string, ProgramRun>();

  /** A process of `program` exited (before its engine hears of it): asked to, or on its own. */
  private noteExit(program: string, pid: number, slot: number, code: number | null, signal: string | null): void {
    this.runs.set(program, { ...(this.runs.get(program) ?? { startedAt: null }), finishedAt: Date.now(), exit: { code, signal } });
    const w = this.group(program)?.snapshot.workers.find((x) => x.pid === pid);
    const asked = !w || w.state === 'stopping' || w.state === 'killed';
    const m = this.exits.get(program) ?? new Map<number, string>();
    if (asked) m.delete(slot);
    else m.set(slot, signal ?? `exit ${code ?? '?'}`);
    this.exits.set(program, m);
  }

  constructor(
    private readonly source: ConfigSource,
    private readonly runtime: Runtime<TypeLaunch>,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly route: (conn: ControlConnection, req: Request) => number,
    /** Apply a config read again (the release applier, in its serial queue). */
    private readonly applier: { enqueue(step: () => Promise<void>): void; applyRelease(next: PreparedRelease, roll: null, origin: string): void; current(): PreparedRelease | null },
  ) {
    this.logs = new ProgramLogs(log);
    this.releases = new ProgramReleases(runtime, log, source.env, now);
    source.onClose(() => this.releases.stop());
  }

  readonly logs: ProgramLogs;
  /** The programs' fetch= and watch=. */
  readonly releases: ProgramReleases;

  /** supervisord's SIGUSR2: reopen the log files. */
  installSignals(): void {
    process.on('SIGUSR2', () => {
      this.log.info('Got SIGUSR2: reopening the log files');
      void this.logs.reopen().then((m) => this.log.info(m));
    });
  }

  closeLogs(): Promise<void> {
    return this.logs.close();
  }

  /** Why a reload cannot carry the config's programs over yet, or null. */
  reloadProblem(): string | null {
    const installing = this.releases.busy();
    if (installing) return installing;
    // Their sockets, log files and output pipes are not in the snapshot yet.
    return 'not supported yet with --config (the programs\' sockets and log files are not in the snapshot); use restart';
  }

  /** `reread`: what the file now says, against what runs (supervisorctl's words); nothing changes. */
  reread(conn: ControlConnection, req: Request): void {
    const current = this.source.model;
    let next: ConfigModel;
    try {
      next = this.source.peek();
    } catch (err) {
      return conn.send({ message: `ERROR: ${(err as Error).message}; the running programs are untouched`, error: true }, req.id);
    }
    const d = diff(current ?? { files: [], programs: [], groups: [], warnings: [] }, next);
    const lines = [
      ...d.added.map((n) => `${n}: available`),
      ...d.changed.map((n) => `${n}: changed (${(d.changes[n] ?? []).join(', ')})`),
      ...d.removed.map((n) => `${n}: disappeared`),
    ];
    conn.send({ message: lines.length ? lines.join('\n') : 'No config updates to processes' }, req.id);
  }

  /** `update`: apply the file: added started, removed stopped, changed restarted (rolled), unchanged untouched. */
  update(conn: ControlConnection, req: Request): void {
    this.applier.enqueue(async () => {
      const current = this.source.model;
      let next: PreparedRelease;
      try {
        next = await this.source.readAgain(this.applier.current(), true, (m) => this.log.warn(m));
      } catch (err) {
        return conn.send({ message: `ERROR: ${(err as Error).message}; the running programs are untouched`, error: true }, req.id);
      }
      const d = diff(current ?? { files: [], programs: [], groups: [], warnings: [] }, this.source.model as ConfigModel);
      this.applier.applyRelease(next, null, 'update');
      const lines = [
        ...d.added.map((n) => `${n}: added process group`),
        ...d.changed.map((n) => `${n}: updated process group`),
        ...d.removed.map((n) => `${n}: stopped, removed process group`),
      ];
      conn.send({ message: lines.length ? lines.join('\n') : 'No config updates to processes' }, req.id);
    });
  }

  reopen(conn: ControlConnection, req: Request): void {
    void this.logs.reopen().then((message) => conn.send({ message }, req.id));
  }

  /** `tail [-f] NAME [stdout|stderr]`; with -f every later line follows (wait: true) until the client goes. */
  tail(args: readonly string[], conn: ControlConnection, req: Request): void {
    const f = args[0] === '-f';
    const rest = f ? args.slice(1) : args;
    if (rest.length < 1 || rest.length > 2) return conn.send({ message: 'tail: usage: tail [-f] NAME [stdout|stderr]', error: true }, req.id);
    void this.logs.tail(this.programs(), rest[0] as string, rest[1] ?? 'stdout').then((r) => {
      if ('error' in r) return conn.send({ message: r.error, error: true }, req.id);
      if (!f) return conn.send({ message: r.text }, req.id);
      conn.send({ message: r.text, wait: true }, req.id);
      this.logs.follow(r.path, r.offset, (text) => conn.send({ message: text, wait: true }, req.id), () => conn.closed);
    });
  }

  /** A program's group shell: its socket, hand-off, stop rules; its output labelled with the process name. */
  shell(
    spec: { name: string; config: GroupShellOptions['core']; launch: TypeLaunch },
    program: ProgramConfig,
    common: Pick<GroupShellOptions, 'socketPath' | 'killChildrenOnExit' | 'log' | 'onWorkerExit'> & { shimVerbose: boolean; output: (name: string, child: import('node:child_process').ChildProcess) => void },
  ): GroupShellOptions {
    const x = program.processes[0];
    const listeners = this.source.listenersFor(program);
    return {
      name: spec.name,
      core: spec.config,
      launch: spec.launch.launch,
      listeners,
      ...(x && listeners.length && x.handoff.length
        ? { handoff: { names: x.handoff, ctx: { inheritedPreload: spec.launch.launch.env.LD_PRELOAD, shimVerbose: common.shimVerbose } } }
        : {}),
      socketPath: common.socketPath,
      killChildrenOnExit: common.killChildrenOnExit,
      stopGroup: x?.stopasgroup ?? false,
      killGroup: x?.killasgroup ?? false,
      log: common.log,
      output: (child, slot) => {
        this.runs.set(program.name, { ...this.runs.get(program.name), startedAt: Date.now() });
        const x = program.processes[slot];
        if (x) this.logs.route(x, child);
        else common.output(processName(program, slot), child);
      },
      onWorkerExit: (pid, slot, code, signal) => {
        this.noteExit(program.name, pid, slot, code, signal);
        common.onWorkerExit?.(pid, slot, code, signal);
      },
    };
  }

  programs(): ProgramConfig[] {
    return this.source.model?.programs ?? [];
  }

  group(name: string): RuntimeGroup<TypeLaunch> | undefined {
    return this.runtime.groups().find((g) => g.name === name && !g.retiring);
  }

  statuses(names?: readonly string[]): ProcessStatus[] {
    const now = this.now();
    return this.programs()
      .filter((p) => !names || names.includes(p.name))
      .flatMap((p) => {
        const exits = this.exits.get(p.name) ?? new Map<number, string>();
        return programStatus(p, this.group(p.name)?.snapshot ?? null, now, new Set(exits.keys())).map((s, slot) =>
          s.state === 'EXITED' ? { ...s, lastExit: exits.get(slot) ?? '?' } : s,
        );
      });
  }

  statusText(): string {
    return statusLines(this.statuses());
  }

  resolveNames(words: readonly string[]): { names: string[] } | { error: string } {
    const model = this.source.model;
    return model ? resolveNames(model, words, this.runtime.names()) : { error: 'No config is loaded' };
  }

  private resolve(words: readonly string[], conn: ControlConnection, req: Request): string[] | null {
    const model = this.source.model;
    if (!model) return (conn.send({ message: 'No config is loaded', error: true }, req.id), null);
    const r = resolveNames(model, words, this.runtime.names());
    if ('error' in r) return (conn.send({ message: r.error, error: true }, req.id), null);
    return r.names;
  }

  restart(words: readonly string[], conn: ControlConnection, req: Request): void {
    const names = this.resolve(words, conn, req);
    if (!names) return;
    this.log.info(`Asked to restart ${names.join(', ')}`);
    this.runtime.feed({ type: 'request', targets: names, request: { type: 'upgrade', mode: 'smooth' }, replyTo: this.route(conn, req) });
  }

  /** `start`: every process of the named programs wanted; the answer once each is RUNNING or FATAL. */
  start(words: readonly string[], conn: ControlConnection, req: Request): void {
    const names = this.resolve(words, conn, req);
    if (!names) return;
    this.log.info(`Asked to start ${names.join(', ')}`);
    for (const n of names) {
      const p = this.programs().find((x) => x.name === n) as ProgramConfig;
      this.runtime.feed({ type: 'request', targets: [n], request: { type: 'setWorkers', count: p.processes.length } });
    }
    // A one-time program may end before it is seen RUNNING: a run that ended since counts as done.
    const asked = Date.now();
    const ran = (name: string) => (this.programs().find((x) => x.name === name)?.processes[0]?.oneTime ?? false) && (this.runs.get(name)?.finishedAt ?? 0) >= asked;
    this.wait({
      names,
      conn,
      req,
      done: () => {
        const per = names.map((n) => ({ n, list: this.statuses([n]), ran: ran(n) }));
        if (!per.every((x) => x.ran || x.list.every((s) => s.state === 'RUNNING' || s.state === 'FATAL'))) return null;
        return per
          .flatMap((x) =>
            x.list.map((s) => `${s.name}: ${x.ran && s.state !== 'RUNNING' ? 'ran to its end (one-time)' : s.state === 'RUNNING' ? 'started' : 'ERROR (spawn error or exited too quickly: FATAL)'}`),
          )
          .join('\n');
      },
    });
  }

  /** `stop`: no process of the named programs wanted; the answer once each is gone. */
  stop(words: readonly string[], conn: ControlConnection, req: Request): void {
    const names = this.resolve(words, conn, req);
    if (!names) return;
    this.log.info(`Asked to stop ${names.join(', ')}`);
    this.runtime.feed({ type: 'request', targets: names, request: { type: 'setWorkers', count: 0 } });
    this.wait({ names, conn, req, done: (list) => (list.every((s) => s.state === 'STOPPED' || s.state === 'EXITED' || s.state === 'FATAL') ? list.map((s) => `${s.name}: stopped`).join('\n') : null) });
  }

  private wait(w: Waiter): void {
    this.waiters.add(w);
    this.check();
  }

  /** After every batch of events: answer the waiters whose processes got there. */
  check(): void {
    this.releases.changed(this.applier.current());
    for (const w of [...this.waiters]) {
      const answer = w.done(this.statuses(w.names));
      if (answer === null) continue;
      this.waiters.delete(w);
      w.conn.send({ message: answer }, w.req.id);
    }
  }
}
