/**
 * supervisorctl's commands over a config file's programs (--config): `status` with
 * supervisord's state names per process, `start|stop|restart NAME|GROUP:*|all`.
 * A program is one runtime group; its processes are the group's slots, and a
 * process's state is read from its group's engine (core/): a worker starting is
 * STARTING, up is RUNNING, asked to stop STOPPING; an empty slot the engine still
 * wants is BACKOFF after a failed start (else STARTING), FATAL once the engine gave up
 * (startretries), STOPPED when the program is stopped. `start`, `stop` and `restart`
 * (process-commands.ts) act on programs or single processes (GROUP:PROCESS); `add` and
 * `remove` (program-set.ts) change the running config by process group.
 */
import type { CoreSnapshot } from '@einhyrningsins/core';
import type { Cleanup, ControlConnection, GroupShellOptions, Logger, Runtime, RuntimeGroup, WorkerProcess } from '@einhyrningsins/master';
import type { Request } from '@einhyrningsins/protocol';
import { ConfigSource, type ConfigSnapshot } from './config-source.js';
import { diff, type ConfigModel, type ProgramConfig } from './config/index.js';
import type { PreparedRelease } from './release.js';
import { processName } from './program-launch.js';
import { resolveNames } from './program-names.js';
import { ProgramLogs, type ProcessPipes } from './program-logs.js';
import { ProgramReleases } from './program-releases.js';
import { addGroups, removeGroups, type SetChange } from './program-set.js';
import { ProcessCommands, fullName, type CommandResult, type ProcessStatus, type SupervisorState, type Target } from './process-commands.js';

export { fullName, type ProcessStatus, type SupervisorState } from './process-commands.js';
import type { TypeLaunch } from './release-applier.js';

/**
 * Each process of a program as supervisord would call it now. `exitedOnItsOwn`: the
 * slots whose last process exited unasked (EXITED once the engine no longer wants them).
 */
export function programStatus(p: ProgramConfig, snap: CoreSnapshot | null, now: number, exitedOnItsOwn: ReadonlySet<number> = new Set()): ProcessStatus[] {
  const live = snap ? snap.workers.filter((w) => w.state === 'starting' || w.state === 'up').length : 0;
  // Without a list of wanted slots the engine fills the lowest free ones first: that many empty slots are still wanted.
  let wantedEmpty = snap && !snap.shuttingDown ? Math.max(0, snap.config.number - live) : 0;
  const wantedSlots = snap?.config.wantedSlots;
  return p.processes.map((x, slot) => {
    const base = { name: x.name, group: x.group, program: p.name, slot, pid: null, uptimeMs: null };
    if (!snap) return { ...base, state: 'STOPPED' };
    const ws = snap.workers.filter((w) => w.slot === slot);
    const w = ws.find((v) => v.state === 'up') ?? ws.find((v) => v.state === 'starting') ?? ws[0];
    if (w) {
      const state: SupervisorState = w.state === 'up' ? 'RUNNING' : w.state === 'starting' ? 'STARTING' : 'STOPPING';
      return { ...base, state, pid: w.pid, uptimeMs: state === 'RUNNING' ? Math.max(0, now - w.spawnedAt) : null };
    }
    const wanted = wantedSlots ? !snap.shuttingDown && wantedSlots.includes(slot) : wantedEmpty > 0;
    if (wanted) {
      if (!wantedSlots) wantedEmpty -= 1;
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
export function statusLines(list: ReadonlyArray<Omit<ProcessStatus, 'program' | 'slot'>>): string {
  const label = fullName;
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

/** What a reload carries of the config's programs. */
export interface ConfigControlSnapshot {
  source: ConfigSnapshot;
  pipes: ProcessPipes[];
  exits: Record<string, Record<string, string>>;
}

/** minisv's started/finished of a task: its last process's start, the last exit (wall clock, ms). */
export interface ProgramRun {
  startedAt: number | null;
  finishedAt?: number;
  exit?: { code: number | null; signal: string | null };
}

export class ConfigControl {
  private readonly commands: ProcessCommands;
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
    /** Apply a config read again (the release applier, in its serial queue). */
    private readonly applier: { enqueue(step: () => Promise<void>): void; applyRelease(next: PreparedRelease, roll: null, origin: string): void; current(): PreparedRelease | null },
    /** How much of the programs' output was read (the memory keeper's). */
    onOutput?: (bytes: number) => void,
  ) {
    this.logs = new ProgramLogs(log, onOutput);
    this.releases = new ProgramReleases(runtime, log, source.env, now);
    source.onClose(() => this.releases.stop());
    // A one-time program may end before it is seen RUNNING: a run that ended since `since` counts as started.
    const ran = (program: string, since: number) =>
      (this.programs().find((x) => x.name === program)?.processes[0]?.oneTime ?? false) && (this.runs.get(program)?.finishedAt ?? 0) >= since;
    this.commands = new ProcessCommands(runtime, (programs) => this.statuses(programs), ran);
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

  /** Why a reload must wait (a fetched release being installed), or null. */
  reloadProblem(): string | null {
    return this.releases.busy();
  }

  /** Before a reload's exec: the pipes paused, the log files written (undone by reloadFailed). */
  prepareReload(): Promise<void> {
    return this.logs.prepareReload();
  }

  reloadFailed(): void {
    this.logs.resume();
  }

  /** What the next image needs: the running config, its sockets, every process's pipes, the EXITED slots. */
  snapshot(live: (pid: number) => boolean): ConfigControlSnapshot {
    const exits: Record<string, Record<string, string>> = {};
    for (const [program, m] of this.exits) exits[program] = Object.fromEntries([...m].map(([slot, how]) => [String(slot), how]));
    return { source: this.source.snapshot(), pipes: this.logs.snapshot(live), exits };
  }

  static fds(snap: ConfigControlSnapshot): number[] {
    return [...ConfigSource.fds(snap.source), ...ProgramLogs.fds(snap.pipes)];
  }

  /** The new image: the config and its sockets first (the groups' shells hand them out), then the pipes after the groups. */
  adoptSource(snap: ConfigControlSnapshot, cleanup: Cleanup): void {
    this.source.adopt(snap.source, cleanup);
    for (const [program, m] of Object.entries(snap.exits)) this.exits.set(program, new Map(Object.entries(m).map(([slot, how]) => [Number(slot), how])));
  }

  adoptPipes(snap: ConfigControlSnapshot): void {
    this.logs.adopt(snap.pipes, this.programs());
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

  /**
   * `add NAME...`: the process groups named, as the file says now, join the running
   * config and start (their part of reread's diff only; the rest waits for `update`).
   */
  add(words: readonly string[], conn: ControlConnection, req: Request): void {
    let file: ConfigModel;
    try {
      file = this.source.peek();
    } catch (err) {
      return conn.send({ message: `ERROR: ${(err as Error).message}; the running programs are untouched`, error: true }, req.id);
    }
    void this.addGroups(file, words, 'add').then((r) => conn.send({ message: r.lines.join('\n'), ...(r.ok ? {} : { error: true }) }, req.id));
  }

  /** `remove NAME...`: the process groups named, stopped first, leave the running config; their sockets close. */
  remove(words: readonly string[], conn: ControlConnection, req: Request): void {
    void this.removeGroups(words, 'remove').then((r) => conn.send({ message: r.lines.join('\n'), ...(r.ok ? {} : { error: true }) }, req.id));
  }

  /**
   * The add primitive (also for programs given another way, e.g. as JSON: a ConfigModel
   * of one): the groups named in `from` join the running config and start, in the
   * applier's serial queue. A socket that cannot be bound changes nothing.
   */
  addGroups(from: ConfigModel, names: readonly string[], origin: string): Promise<SetChange> {
    return this.change(origin, (running) => addGroups(running, from, names));
  }

  /** The remove primitive: groups none of whose processes runs leave the running config. */
  removeGroups(names: readonly string[], origin: string): Promise<SetChange> {
    return this.change(origin, (running) => removeGroups(running, names, (program) => this.isRunning(program)));
  }

  private change(origin: string, decide: (running: ConfigModel) => SetChange): Promise<SetChange> {
    return new Promise((resolve) => {
      this.applier.enqueue(async () => {
        const running = this.source.model ?? { files: [], programs: [], groups: [], warnings: [] };
        if (this.runtime.shuttingDown) return resolve({ model: running, lines: ['ERROR: shutting down'], ok: false, done: [] });
        const r = decide(running);
        if (r.done.length > 0) {
          try {
            const next = await this.source.install(r.model, this.applier.current());
            this.log.info(`${origin} ${r.done.join(', ')}`);
            this.applier.applyRelease(next, null, origin);
          } catch (err) {
            return resolve({ model: running, lines: [`ERROR: ${(err as Error).message}; the running programs are untouched`], ok: false, done: [] });
          }
        }
        resolve(r);
      });
    });
  }

  /** Whether a process of the program is not yet STOPPED, EXITED or FATAL. */
  private isRunning(program: string): boolean {
    return this.statuses([program]).some((s) => s.state !== 'STOPPED' && s.state !== 'EXITED' && s.state !== 'FATAL') || this.runtime.groups().some((g) => g.name === program && g.retiring);
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
    common: Pick<GroupShellOptions, 'socketPath' | 'killChildrenOnExit' | 'log' | 'onWorkerExit'> & { shimVerbose: boolean; output: (name: string, child: WorkerProcess) => void },
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

  /** `status NAME...`: the processes named, each once, in the config's order. */
  statusOf(words: readonly string[]): { text: string } | { error: string } {
    const model = this.source.model;
    if (!model) return { error: 'No config is loaded' };
    // Stopped programs count too: status names what is configured, not only what runs.
    const r = resolveNames(model, words, model.programs.map((p) => p.name));
    if ('error' in r) return r;
    return { text: statusLines(this.statuses(r.names).filter((s) => !r.slots[s.program] || r.slots[s.program]?.includes(s.slot))) };
  }

  statusText(): string {
    return statusLines(this.statuses());
  }

  resolveNames(words: readonly string[]): { names: string[]; slots: Record<string, number[]> } | { error: string } {
    const model = this.source.model;
    return model ? resolveNames(model, words, this.runtime.names()) : { error: 'No config is loaded' };
  }

  /** The programs and processes named (NAME, GROUP:*, GROUP:PROCESS, all), or an error reply. */
  private targets(words: readonly string[], conn: ControlConnection, req: Request): Target[] | null {
    const r = this.resolveNames(words);
    if ('error' in r) return (conn.send({ message: r.error, error: true }, req.id), null);
    return r.names.map((n) => {
      const program = this.programs().find((p) => p.name === n) as ProgramConfig;
      const slots = r.slots[n];
      return { program, slots: slots ?? program.processes.map((_, i) => i), whole: slots === undefined };
    });
  }

  private run(what: 'start' | 'stop' | 'restart', words: readonly string[], conn: ControlConnection, req: Request): void {
    const targets = this.targets(words, conn, req);
    if (!targets) return;
    this.log.info(`Asked to ${what} ${words.join(' ')}`);
    void this.commands[what](targets).then((r: CommandResult) => conn.send({ message: r.lines.join('\n'), ...(r.ok ? {} : { error: true }) }, req.id));
  }

  /** `restart`: stop-then-start (supervisorctl's), or rolling for a whole program with socket=. */
  restart(words: readonly string[], conn: ControlConnection, req: Request): void {
    this.run('restart', words, conn, req);
  }

  /** `start`: the named processes wanted; the answer once each is RUNNING or FATAL. */
  start(words: readonly string[], conn: ControlConnection, req: Request): void {
    this.run('start', words, conn, req);
  }

  /** `stop`: the named processes no longer wanted (each program's stopsignal); the answer once each is gone. */
  stop(words: readonly string[], conn: ControlConnection, req: Request): void {
    this.run('stop', words, conn, req);
  }

  /** A removed or changed program's socket closes once no process of it is left (and no program wants it). */
  private closeUnusedSockets(): void {
    const used = new Set<string>();
    for (const p of this.programs()) if (p.processes[0]?.socket) used.add(p.processes[0].socket.text);
    for (const g of this.runtime.groups()) {
      const text = g.spec.launch.process.program?.processes[0]?.socket?.text;
      if (text) used.add(text);
    }
    for (const text of this.source.closeUnused(used)) this.log.info(`Closed socket ${text}: no program uses it any more`);
  }

  /** After every batch of events: what waits for processes goes on; the sockets no program uses close. */
  check(): void {
    this.releases.changed(this.applier.current());
    this.closeUnusedSockets();
    this.commands.check();
  }
}
