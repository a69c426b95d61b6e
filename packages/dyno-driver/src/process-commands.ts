/**
 * supervisorctl's `start`, `stop` and `restart` over a config's processes: a program
 * named whole (NAME, GROUP:*, all) or one process of it (GROUP:PROCESS). Each process
 * is a slot of its program's group, and the group's engine is told which slots are
 * wanted (`setSlots`), so one process starts and stops on its own. Each answers once
 * every process named got there, one line per process in supervisorctl's words
 * (`multi:multi_01: stopped`, `one: ERROR (already started)`).
 *
 * `restart` is stop-then-start, as supervisorctl's, for a program without `socket=`
 * (it may hold a lock or a port) and for single processes; a program with `socket=`
 * (or a minisv task, whose restart is new-first) named whole rolls instead (new processes up before the old stop: the socket is shared,
 * no request is lost).
 */
import type { CoreSnapshot } from '@einhyrningsins/core';
import type { Runtime } from '@einhyrningsins/master';
import type { ProgramConfig } from './config/index.js';
import type { TypeLaunch } from './release-applier.js';

export type SupervisorState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'EXITED' | 'FATAL';

export interface ProcessStatus {
  name: string;
  group: string;
  /** Its program, and its slot there. */
  program: string;
  slot: number;
  state: SupervisorState;
  pid: number | null;
  /** Milliseconds since it was spawned (RUNNING). */
  uptimeMs: number | null;
  /** EXITED: how (`exit 0`, `SIGTERM`). */
  lastExit?: string;
}

/** What a command acts on: a program and the slots of its processes named. */
export interface Target {
  program: ProgramConfig;
  slots: number[];
  /** Named whole (NAME, GROUP:*, all), not by some of its processes. */
  whole: boolean;
}

/** supervisorctl's name of a process: `group:name`, or `name` when they are the same. */
export function fullName(s: { name: string; group: string }): string {
  return s.group === s.name ? s.name : `${s.group}:${s.name}`;
}

const down = (s: ProcessStatus) => s.state === 'STOPPED' || s.state === 'EXITED' || s.state === 'FATAL';
/** supervisord's RUNNING_STATES: a start is refused as ALREADY_STARTED. */
const started = (s: ProcessStatus) => s.state === 'RUNNING' || s.state === 'STARTING' || s.state === 'BACKOFF';

export interface CommandResult {
  lines: string[];
  ok: boolean;
}

export class ProcessCommands {
  private readonly pending = new Set<{ pred: () => boolean; resolve: () => void }>();

  constructor(
    private readonly runtime: Runtime<TypeLaunch>,
    /** Every process of these programs, as status shows it. */
    private readonly statuses: (programs: readonly string[]) => ProcessStatus[],
    /** A one-time program that ran to its end since `since` (it may end before it is seen RUNNING). */
    private readonly ran: (program: string, since: number) => boolean = () => false,
  ) {}

  /** After every batch of events: what waits for processes to get somewhere goes on. */
  check(): void {
    for (const p of [...this.pending]) {
      if (!p.pred()) continue;
      this.pending.delete(p);
      p.resolve();
    }
  }

  private until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => this.pending.add({ pred, resolve }));
  }

  private selected(targets: readonly Target[]): ProcessStatus[] {
    const all = this.statuses(targets.map((t) => t.program.name));
    return all.filter((s) => targets.some((t) => t.program.name === s.program && t.slots.includes(s.slot)));
  }

  private snapshot(program: string): CoreSnapshot | undefined {
    return this.runtime.group(program)?.snapshot;
  }

  /** The slots the program's engine wants now. */
  private wanted(program: string): number[] {
    const snap = this.snapshot(program);
    if (!snap) return [];
    return [...(snap.config.wantedSlots ?? Array.from({ length: snap.config.number }, (_, i) => i))];
  }

  private setSlots(program: string, slots: readonly number[]): void {
    this.runtime.feed({ type: 'request', targets: [program], request: { type: 'setSlots', slots } });
  }

  async stop(targets: readonly Target[]): Promise<CommandResult> {
    const before = this.selected(targets);
    const notRunning = new Set(before.filter(down).map((s) => `${s.program}/${s.slot}`));
    for (const t of targets) this.setSlots(t.program.name, this.wanted(t.program.name).filter((s) => !t.slots.includes(s)));
    await this.until(() => this.selected(targets).every(down));
    return { lines: before.map((s) => `${fullName(s)}: ${notRunning.has(`${s.program}/${s.slot}`) ? 'ERROR (not running)' : 'stopped'}`), ok: true };
  }

  async start(targets: readonly Target[]): Promise<CommandResult> {
    const before = this.selected(targets);
    const already = new Set(before.filter(started).map((s) => `${s.program}/${s.slot}`));
    const asked = Date.now();
    for (const t of targets) this.setSlots(t.program.name, [...new Set([...this.wanted(t.program.name), ...t.slots])]);
    const key = (s: ProcessStatus) => `${s.program}/${s.slot}`;
    const ran = (s: ProcessStatus) => s.state !== 'RUNNING' && this.ran(s.program, asked);
    await this.until(() => this.selected(targets).every((s) => already.has(key(s)) || ran(s) || s.state === 'RUNNING' || s.state === 'FATAL'));
    const now = this.selected(targets);
    const lines = now.map((s) =>
      `${fullName(s)}: ${already.has(key(s)) ? 'ERROR (already started)' : ran(s) ? 'ran to its end (one-time)' : s.state === 'RUNNING' ? 'started' : 'ERROR (spawn error or exited too quickly: FATAL)'}`,
    );
    return { lines, ok: now.every((s) => already.has(key(s)) || ran(s) || s.state === 'RUNNING') };
  }

  /** Rolling for a whole program with a socket and processes up; stop-then-start for the rest. */
  async restart(targets: readonly Target[]): Promise<CommandResult> {
    const rolls: Target[] = [];
    const cycles: Target[] = [];
    for (const t of targets) {
      const live = this.selected([t]).some((s) => !down(s));
      const x = t.program.processes[0];
      (t.whole && (x?.socket || x?.newFirst) && live ? rolls : cycles).push(t);
    }
    const rolled = Promise.all(rolls.map((t) => this.roll(t)));
    let cycled: CommandResult = { lines: [], ok: true };
    if (cycles.length) {
      const stopped = await this.stop(cycles);
      const startedAgain = await this.start(cycles);
      cycled = { lines: [...stopped.lines, ...startedAgain.lines], ok: startedAgain.ok };
    }
    const r = await rolled;
    return { lines: [...r.flatMap((x) => x.lines), ...cycled.lines], ok: cycled.ok && r.every((x) => x.ok) };
  }

  /** The engine's smooth upgrade of one program: answered once it is done or failed. */
  private async roll(t: Target): Promise<CommandResult> {
    const name = t.program.name;
    const gen = (this.snapshot(name)?.generation ?? 0) + 1;
    this.runtime.feed({ type: 'request', targets: [name], request: { type: 'upgrade', mode: 'smooth' } });
    await this.until(() => {
      const s = this.snapshot(name);
      return !s || (s.upgrade === null && (s.lastUpgrade?.generation ?? -1) >= gen) || s.generation > gen;
    });
    const last = this.snapshot(name)?.lastUpgrade;
    if (last && !last.ok) return { lines: [`${name}: ERROR (${last.message})`], ok: false };
    return { lines: [`${name}: restarted (rolling: new processes up before the old ones stopped)`], ok: true };
  }
}
