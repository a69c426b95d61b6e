/**
 * minisv's tasks (http-api.ts) over the driver: with --config (an INI or minisv's JSON
 * file) a task is a program (one runtime group); with a Procfile or a control directory
 * it is a process type, where `run`, `rotate`, POST and DELETE do not apply (409 says
 * why). What each verb does is one request to the runtime, answered at once, as minisv
 * answers; the outcome shows in GET / (and GET /NAME/status).
 */
import { isoTime, type Logger, type Runtime } from '@einhyrningsins/master';
import type { CoreSnapshot } from '@einhyrningsins/core';
import type { ConfigControl, ProcessStatus, ProgramRun } from '../config-control.js';
import type { ConfigSource } from '../config-source.js';
import type { ProgramConfig } from '../config/index.js';
import type { PreparedRelease } from '../release.js';
import type { TypeLaunch } from '../release-applier.js';
import { problem, type Answer, type MinisvTasks, type Verb } from './http-api.js';
import { JsonSyntaxError, parseJsonLoc } from './json-loc.js';
import { NO_LOG_FILES, TaskError, readTask, taskName } from './task.js';

export interface TasksDeps {
  runtime: Runtime<TypeLaunch>;
  /** With --config: the programs, their states and logs. */
  config: { source: ConfigSource; control: ConfigControl } | null;
  applier: {
    enqueue(step: () => Promise<void>): void;
    applyRelease(next: PreparedRelease, roll: null, origin: string): void;
    readonly release: PreparedRelease | null;
  };
  log: Logger;
  /** The driver's clock (the engines' spawnedAt). */
  now(): number;
  stopping(): boolean;
}

/** Go's zero time.Time, as minisv's JSON has it for a time not set. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Go's (*exec.ExitError).Error() for a signal death: "signal: killed". */
const GO_SIGNAL_WORDS: Record<string, string> = {
  SIGKILL: 'killed',
  SIGTERM: 'terminated',
  SIGHUP: 'hangup',
  SIGINT: 'interrupt',
  SIGQUIT: 'quit',
  SIGABRT: 'aborted',
  SIGSEGV: 'segmentation fault',
  SIGPIPE: 'broken pipe',
  SIGUSR1: 'user defined signal 1',
  SIGUSR2: 'user defined signal 2',
};

/** How minisv says a run ended: "finished", or "finished with error: exit status 1". */
export function finishedWord(exit: ProgramRun['exit']): string {
  if (!exit) return 'finished';
  if (exit.signal) return `finished with error: signal: ${GO_SIGNAL_WORDS[exit.signal] ?? exit.signal.replace(/^SIG/, '').toLowerCase()}`;
  return exit.code === 0 ? 'finished' : `finished with error: exit status ${exit.code ?? '?'}`;
}

/** minisv's status word of a task from its processes' supervisord states. */
export function statusWord(oneTime: boolean, states: readonly ProcessStatus[], upgrading: boolean, run: ProgramRun | undefined): string {
  const live = states.some((s) => s.state === 'RUNNING' || s.state === 'STARTING' || s.state === 'STOPPING');
  if (oneTime) {
    if (states.some((s) => s.state === 'STOPPING')) return 'stopping';
    if (live) return 'running';
    if (states.some((s) => s.state === 'FATAL')) return 'start failed';
    return run?.finishedAt !== undefined ? finishedWord(run.exit) : 'not started';
  }
  if (upgrading) return 'restart validation';
  const first = states[0]?.state ?? 'STOPPED';
  switch (first) {
    case 'RUNNING':
      return 'running';
    case 'STARTING':
      return 'starting';
    case 'BACKOFF':
      return 'restarting';
    case 'STOPPING':
      return 'stopping';
    case 'FATAL':
      return 'fatal: exited too quickly (startretries)';
    case 'EXITED':
      return finishedWord(run?.exit);
    default:
      return run?.startedAt ? 'stopped' : 'not started';
  }
}

export class DriverTasks implements MinisvTasks {
  constructor(private readonly d: TasksDeps) {}

  private program(name: string): ProgramConfig | undefined {
    return this.d.config?.control.programs().find((p) => p.name === name);
  }

  private snapshot(name: string): CoreSnapshot | null {
    return this.d.runtime.groups().find((g) => g.name === name && !g.retiring)?.snapshot ?? null;
  }

  private wall(spawnedAt: number): number {
    return Date.now() - Math.max(0, this.d.now() - spawnedAt);
  }

  has(name: string): boolean {
    if (this.d.config) return this.program(name) !== undefined;
    return this.snapshot(name) !== null;
  }

  all(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (this.d.config) for (const p of this.d.config.control.programs()) out[p.name] = this.one(p.name);
    else for (const g of this.d.runtime.groups()) if (!g.retiring) out[g.name] = this.one(g.name);
    return out;
  }

  /** One task as minisv's GET / shows it, plus supervisord's state and the pids. */
  private one(name: string): Record<string, unknown> {
    const snap = this.snapshot(name);
    const liveWorkers = (snap?.workers ?? []).filter((w) => w.pid !== null && w.state !== 'killed');
    const newest = liveWorkers.reduce<number | null>((m, w) => (m === null || w.spawnedAt > m ? w.spawnedAt : m), null);
    const p = this.program(name);
    if (p && this.d.config) {
      const x = p.processes[0];
      const states = this.d.config.control.statuses([name]);
      const run = this.d.config.control.runs.get(name);
      const status = statusWord(x?.oneTime ?? false, states, snap?.upgrade != null, run);
      const running = liveWorkers.length > 0;
      const started = running && newest !== null ? this.wall(newest) : run?.startedAt;
      return {
        command: x?.argv[0] ?? '',
        args: x?.argv.slice(1) ?? [],
        onetime: x?.oneTime ?? false,
        status: {
          status,
          started: started ? isoTime(started) : ZERO_TIME,
          finished: !running && run?.finishedAt ? isoTime(run.finishedAt) : ZERO_TIME,
        },
        state: states.length === 1 ? states[0]?.state : states.map((s) => ({ name: s.name, state: s.state, pid: s.pid })),
        pids: liveWorkers.map((w) => w.pid),
      };
    }
    const g = this.d.runtime.groups().find((v) => v.name === name && !v.retiring);
    const args = g?.spec.launch.process.args ?? [];
    const up = liveWorkers.some((w) => w.state === 'up');
    const status = snap?.upgrade ? 'restart validation' : up ? 'running' : liveWorkers.length ? 'starting' : snap?.config.number ? 'restarting' : 'stopped';
    return {
      command: args[0] ?? '',
      args: args.slice(1),
      onetime: false,
      status: { status, started: newest !== null ? isoTime(this.wall(newest)) : ZERO_TIME, finished: ZERO_TIME },
      pids: liveWorkers.map((w) => w.pid),
    };
  }

  private feed(name: string, request: Parameters<Runtime<TypeLaunch>['feed']>[0] extends infer E ? (E extends { type: 'request'; request: infer R } ? R : never) : never): void {
    this.d.runtime.feed({ type: 'request', targets: [name], request });
  }

  private ok(name: string, verb: string, message: string, extra: Record<string, unknown> = {}): Answer {
    return { status: 200, body: { ok: true, task: name, action: verb, message, ...extra } };
  }

  verb(name: string, verb: Verb): Answer | Promise<Answer> {
    if (verb === 'status') return { status: 200, body: this.one(name) };
    if (this.d.stopping() && verb !== 'term' && verb !== 'hup' && verb !== 'kill') return problem(409, 'the driver is stopping', { task: name });
    const p = this.program(name);
    const oneTime = p?.processes[0]?.oneTime ?? false;
    const snap = this.snapshot(name);
    const live = (snap?.workers ?? []).filter((w) => w.pid !== null && (w.state === 'up' || w.state === 'starting'));
    const wanted = p ? p.processes.length : Math.max(1, this.d.applier.release?.processes.find((x) => x.type === name)?.quantity ?? 1);
    switch (verb) {
      case 'stop':
        if ((snap?.config.number ?? 0) === 0 && live.length === 0) return this.ok(name, verb, 'already stopped');
        this.d.log.info(`[${name}] stop (HTTP): stopped until restart or run`);
        this.feed(name, { type: 'setWorkers', count: 0 });
        return this.ok(name, verb, 'stopping');
      case 'restart':
        if (oneTime) return problem(409, `${name} is a one-time task: run it (GET /${name}/run)`, { task: name });
        if (live.length === 0) {
          this.d.log.info(`[${name}] restart (HTTP): not running, starting it`);
          this.feed(name, { type: 'setWorkers', count: wanted });
          return this.ok(name, verb, 'starting');
        }
        // The program's own order: new-first for a minisv task or a socket= program, stop-first otherwise (as restart).
        if (snap?.config.stopFirst) {
          this.d.log.info(`[${name}] restart (HTTP): the old process is stopped first, then a new one starts`);
          this.feed(name, { type: 'upgrade', mode: 'smooth' });
          return this.ok(name, verb, 'restarting: the old process is stopped, then a new one starts');
        }
        this.d.log.info(`[${name}] restart (HTTP): new process first, then the old one is stopped`);
        this.feed(name, { type: 'upgrade', mode: 'smooth' });
        return this.ok(name, verb, 'restarting: a new process starts, then the old one is stopped');
      case 'term':
      case 'hup':
      case 'kill': {
        const sig = `SIG${verb === 'term' ? 'TERM' : verb === 'hup' ? 'HUP' : 'KILL'}`;
        if (live.length === 0) return problem(409, `${name} has no running process to send ${sig} to`, { task: name });
        this.d.log.info(`[${name}] ${sig} (HTTP) to ${live.map((w) => w.pid).join(', ')}`);
        this.feed(name, { type: 'signal', signals: [sig] });
        return this.ok(name, verb, `sent ${sig}`, { pids: live.map((w) => w.pid) });
      }
      case 'run': {
        if (!p) return problem(409, `${name} is not a one-time task (a Procfile has none; for a one-off process use einhyrningsins-dyno run)`, { task: name });
        if (!oneTime) return problem(409, `${name} is not a one-time task (oneTime is false): restart it instead`, { task: name });
        // Wanted but not spawned yet counts as running; a run whose spawn failed (FATAL) does not.
        if (live.length > 0 || ((snap?.config.number ?? 0) > 0 && !snap?.gaveUp)) return problem(409, `${name} is already running`, { task: name, pids: live.map((w) => w.pid) });
        this.d.log.info(`[${name}] run (HTTP): running the one-time task`);
        const control = this.d.config?.control;
        // As minisv opens the log at each run: with logsuffixdate, each run gets a file of its own date.
        const dated = p.processes.some((x) => x.stdout.dateSuffix);
        const start = () => this.feed(name, { type: 'setWorkers', count: p.processes.length });
        if (dated && control) return control.logs.reopenOf(p.processes).then(() => (start(), this.ok(name, verb, 'running')));
        start();
        return this.ok(name, verb, 'running');
      }
      case 'rotate': {
        if (!p || !this.d.config) return problem(409, `${name} has no log file: a Procfile's output goes to the driver's own`, { task: name });
        const files = p.processes.flatMap((x) => [x.stdout, x.stderr]).filter((c) => c.target.kind === 'file');
        if (files.length === 0) return problem(409, `${name} has no log file (no logdir / stdout_logfile: its output goes to the driver's own)`, { task: name });
        return this.d.config.control.logs.reopenOf(p.processes).then((n) => this.ok(name, verb, `reopened ${n} log file${n === 1 ? '' : 's'}`));
      }
    }
    return problem(404, `unknown action ${verb}`);
  }

  add(rawName: string, body: string): Answer | Promise<Answer> {
    const cfg = this.d.config;
    if (!cfg) {
      return problem(409, 'tasks are added online only with --config (a supervisord INI or minisv JSON file); a Procfile app changes by editing its Procfile and `upgrade`');
    }
    if (this.d.stopping()) return problem(409, 'the driver is stopping');
    let name: string;
    try {
      name = taskName(rawName);
    } catch (err) {
      return problem(400, (err as Error).message);
    }
    if (this.program(name)) return problem(409, `task ${JSON.stringify(name)} exists (DELETE /${name} first, or restart it)`, { task: name });
    if (body.trim() === '') return problem(400, 'the body must be a JSON task, e.g. {"command": "/bin/sleep", "args": ["60"]}', { task: name });
    let p: ProgramConfig;
    try {
      const node = parseJsonLoc(body);
      const dir = cfg.source.file.replace(/\/[^/]*$/, '') || '/';
      p = readTask(name, node, { cwd: dir, logs: cfg.source.minisv?.logs ?? NO_LOG_FILES, unknown: 'error', warn: () => undefined });
    } catch (err) {
      if (err instanceof JsonSyntaxError) return problem(400, `the body is not valid JSON: ${err.message} (line ${err.line}, column ${err.column})`, { task: name });
      if (err instanceof TaskError) return problem(400, err.message, { task: name });
      throw err;
    }
    const program: ProgramConfig = { ...p, loc: { file: `POST /${name}`, line: 0 }, fetchLoc: p.fetchLoc ? { file: `POST /${name}`, line: 0 } : null };
    return new Promise<Answer>((resolve) => {
      this.d.applier.enqueue(async () => {
        if (this.program(name)) return resolve(problem(409, `task ${JSON.stringify(name)} exists`, { task: name }));
        if (this.d.stopping()) return resolve(problem(409, 'the driver is stopping'));
        let next: PreparedRelease;
        try {
          next = await cfg.source.add(program, this.d.applier.release);
        } catch (err) {
          return resolve(problem(409, `cannot add ${name}: ${(err as Error).message}`, { task: name }));
        }
        this.d.log.info(`[${name}] added through the HTTP API (POST /${name})${program.processes[0]?.oneTime ? ': a one-time task, run it with GET /' + name + '/run' : ''}`);
        this.d.applier.applyRelease(next, null, `POST /${name}`);
        resolve({ status: 201, body: { ok: true, task: name, action: 'add', ...this.one(name) } });
      });
    });
  }

  remove(name: string): Answer | Promise<Answer> {
    const cfg = this.d.config;
    if (!cfg) return problem(409, 'tasks are removed online only with --config; a Procfile app changes by editing its Procfile and `upgrade`', { task: name });
    if (this.d.stopping()) return problem(409, 'the driver is stopping');
    return new Promise<Answer>((resolve) => {
      this.d.applier.enqueue(async () => {
        if (!this.program(name)) return resolve(problem(404, `unknown task ${JSON.stringify(name)}`, { task: name }));
        const online = cfg.source.isOnline(name);
        const next = cfg.source.remove(name, this.d.applier.release);
        this.d.log.info(`[${name}] removed through the HTTP API (DELETE /${name}): stopping its processes`);
        this.d.applier.applyRelease(next, null, `DELETE /${name}`);
        resolve(this.ok(name, 'delete', online ? 'stopping and removed' : 'stopping and removed (the config file still has it: `update` brings it back)'));
      });
    });
  }
}
