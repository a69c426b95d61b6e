/**
 * A fake shell for the multi-group engine: a fake clock, fake timers and fake
 * processes per group, carrying out the fleet's effects the way the runtime does,
 * so the dyno driver's scenarios replay deterministically.
 */
import { Fleet, type FleetEffect, type FleetEvent, type FleetOptions, type GroupSpec } from '../src/fleet.js';
import type { CoreConfig } from '../src/types.js';
import { FakeClock, fakeSignal } from './fake-clock.js';

export interface FakeProc {
  pid: number;
  gid: number;
  group: string;
  id: number;
  slot: number;
  generation: number;
  /** The launch it was spawned with. */
  launch: string;
  alive: boolean;
  signals: string[];
}

export interface Reply {
  to: number;
  message: string;
  wait: boolean;
  ok: boolean;
}

export const DYNO: Partial<CoreConfig> = {
  ackMode: { kind: 'timer', ms: 1000 },
  slots: 'named',
  drainSignal: 'SIGTERM',
  signalTimeoutMs: 30_000,
};

export function spec(name: string, quantity: number, launch = 'v1', config: Partial<CoreConfig> = DYNO): GroupSpec<string> {
  return { name, quantity, launchKey: launch, launch, config };
}

/** A group's timer on the one clock: `GID/KEY`. */
const timerKey = (gid: number, key: string) => `${gid}/${key}`;

export class FleetSim {
  /** Timers are `GID/KEY`; an exit carries its status. */
  readonly clock = new FakeClock<{ code: number | null; signal: string | null }>();
  fleet: Fleet<string>;
  readonly procs = new Map<number, FakeProc>();
  readonly effects: Array<FleetEffect<string>> = [];
  readonly replies: Reply[] = [];
  readonly logs: string[] = [];
  /** The launch each group spawns with now (changed by `changed`). */
  readonly launches = new Map<number, { name: string; launch: string }>();
  exitCode: number | null = null;
  /** ms after which a worker exits on a stop signal; null: it ignores them. */
  drainExitMs: number | null = 0;
  /** Spawns of this launch fail (a program that is not there). */
  failLaunch: string | null = null;
  /** Workers of this launch exit (status 1) this long after they start. */
  crashLaunch: { launch: string; afterMs: number } | null = null;
  private nextPid = 1000;
  private readonly queue: Array<FleetEvent<string>> = [];

  constructor(opts: FleetOptions = { noun: 'process type' }) {
    this.fleet = new Fleet<string>(opts);
  }

  get now(): number {
    return this.clock.now;
  }

  /** Every group's timers (`GID/KEY`): when each is due. */
  get timers(): Map<string, number> {
    return this.clock.timers;
  }

  feed(ev: FleetEvent<string>): void {
    this.queue.push(ev);
    while (this.queue.length) {
      const e = this.queue.shift() as FleetEvent<string>;
      const effects = this.fleet.handle(e, this.now);
      this.effects.push(...effects);
      for (const eff of effects) this.apply(eff);
    }
  }

  advance(ms: number): void {
    this.clock.advance(ms, (due) => {
      if ('pid' in due) return this.exit(due.pid, due.exit.code, due.exit.signal);
      const slash = due.timer.indexOf('/');
      this.feed({ type: 'timer', gid: Number(due.timer.slice(0, slash)), key: due.timer.slice(slash + 1) });
    });
  }

  exit(pid: number, code: number | null, signal: string | null): void {
    const p = this.procs.get(pid);
    if (!p || !p.alive) return;
    p.alive = false;
    this.clock.exits.delete(pid);
    this.feed({ type: 'exited', pid, code, signal });
  }

  alive(group?: string): FakeProc[] {
    return [...this.procs.values()].filter((p) => p.alive && (group === undefined || p.group === group));
  }

  repliesTo(to: number): Reply[] {
    return this.replies.filter((r) => r.to === to);
  }

  /** Workers of a group the engine counts up. */
  up(group: string): number {
    const g = this.fleet.group(group);
    return g ? g.snapshot.workers.filter((w) => w.state === 'up').length : 0;
  }

  private apply(e: FleetEffect<string>): void {
    switch (e.type) {
      case 'added':
      case 'changed':
        this.launches.set(e.gid, { name: e.name, launch: e.spec.launch });
        return;
      case 'removed':
        for (const k of this.clock.timers.keys()) if (k.startsWith(timerKey(e.gid, ''))) this.clock.timers.delete(k);
        this.launches.delete(e.gid);
        return;
      case 'reply':
        this.replies.push({ to: e.to, message: e.message, wait: e.wait, ok: e.ok });
        return;
      case 'log':
        this.logs.push(e.message);
        return;
      case 'exit':
        this.exitCode = e.code;
        return;
      case 'group':
        return this.groupEffect(e.gid, e.name, e.effect);
    }
  }

  private groupEffect(gid: number, name: string, e: Extract<FleetEffect<string>, { type: 'group' }>['effect']): void {
    switch (e.type) {
      case 'spawn': {
        const launch = this.launches.get(gid)?.launch ?? '?';
        if (launch === this.failLaunch) {
          this.queue.push({ type: 'spawnFailed', gid, id: e.id, error: 'no such program' });
          return;
        }
        const pid = this.nextPid++;
        this.procs.set(pid, { pid, gid, group: name, id: e.id, slot: e.slot, generation: e.generation, launch, alive: true, signals: [] });
        this.queue.push({ type: 'spawned', gid, id: e.id, pid });
        if (this.crashLaunch && this.crashLaunch.launch === launch) {
          this.clock.scheduleExit(pid, this.crashLaunch.afterMs, { code: 1, signal: null });
        }
        return;
      }
      case 'kill': {
        const p = this.procs.get(e.pid);
        const got = p ? fakeSignal(p, e.signal, this.drainExitMs) : null;
        if (got === 'killed') {
          this.clock.exits.delete(e.pid);
          this.queue.push({ type: 'exited', pid: e.pid, code: null, signal: 'SIGKILL' });
        } else if (got === 'drains') {
          // A stop signal wins over a crash scheduled for later.
          const x = this.clock.exits.get(e.pid);
          if (!x || x.exit.code === 1) this.clock.scheduleExit(e.pid, this.drainExitMs as number, { code: 0, signal: null });
        }
        return;
      }
      case 'setTimer':
        this.clock.setTimer(timerKey(gid, e.key), e.ms);
        return;
      case 'clearTimer':
        this.clock.timers.delete(timerKey(gid, e.key));
        return;
      case 'log':
        this.logs.push(name ? `[${name}] ${e.message}` : e.message);
        return;
    }
  }
}
