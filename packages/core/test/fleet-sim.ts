/**
 * A fake shell for the multi-group engine: a fake clock, fake timers and fake
 * processes per group, carrying out the fleet's effects the way the runtime does,
 * so the dyno driver's scenarios replay deterministically.
 */
import { Fleet, type FleetEffect, type FleetEvent, type FleetOptions, type GroupSpec } from '../src/fleet.js';
import type { CoreConfig } from '../src/types.js';

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

export class FleetSim {
  now = 0;
  fleet: Fleet<string>;
  readonly timers = new Map<string, { gid: number; key: string; at: number }>();
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
  private readonly pendingExits = new Map<number, { at: number; code: number | null; signal: string | null }>();

  constructor(opts: FleetOptions = { noun: 'process type' }) {
    this.fleet = new Fleet<string>(opts);
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
    const end = this.now + ms;
    for (;;) {
      let next: { at: number; timer?: string; pid?: number } = { at: Infinity };
      for (const [k, t] of this.timers) if (t.at < next.at) next = { at: t.at, timer: k };
      for (const [pid, x] of this.pendingExits) if (x.at < next.at) next = { at: x.at, pid };
      if (next.at > end) break;
      this.now = next.at;
      if (next.pid !== undefined) {
        const x = this.pendingExits.get(next.pid) as { code: number | null; signal: string | null };
        this.pendingExits.delete(next.pid);
        this.exit(next.pid, x.code, x.signal);
      } else {
        const t = this.timers.get(next.timer as string) as { gid: number; key: string };
        this.timers.delete(next.timer as string);
        this.feed({ type: 'timer', gid: t.gid, key: t.key });
      }
    }
    this.now = end;
  }

  exit(pid: number, code: number | null, signal: string | null): void {
    const p = this.procs.get(pid);
    if (!p || !p.alive) return;
    p.alive = false;
    this.pendingExits.delete(pid);
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
        for (const [k, t] of this.timers) if (t.gid === e.gid) this.timers.delete(k);
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
          this.pendingExits.set(pid, { at: this.now + this.crashLaunch.afterMs, code: 1, signal: null });
        }
        return;
      }
      case 'kill': {
        const p = this.procs.get(e.pid);
        if (!p || !p.alive) return;
        p.signals.push(e.signal);
        if (e.signal === 'SIGKILL') {
          p.alive = false;
          this.pendingExits.delete(p.pid);
          this.queue.push({ type: 'exited', pid: p.pid, code: null, signal: 'SIGKILL' });
        } else if (this.drainExitMs !== null && ['SIGUSR2', 'SIGTERM', 'SIGINT', 'SIGQUIT'].includes(e.signal)) {
          const x = this.pendingExits.get(p.pid);
          if (!x || x.code === 1) this.pendingExits.set(p.pid, { at: this.now + this.drainExitMs, code: 0, signal: null });
        }
        return;
      }
      case 'setTimer':
        this.timers.set(`${gid}/${e.key}`, { gid, key: e.key, at: this.now + e.ms });
        return;
      case 'clearTimer':
        this.timers.delete(`${gid}/${e.key}`);
        return;
      case 'log':
        this.logs.push(name ? `[${name}] ${e.message}` : e.message);
        return;
    }
  }
}
