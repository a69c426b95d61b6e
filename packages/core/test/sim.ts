/**
 * A fake shell for the core: a fake clock, fake timers and fake processes.
 * It carries out effects the way the real master does, so traces can be
 * replayed deterministically.
 */
import { Supervisor } from '../src/supervisor.js';
import type { CoreConfig, Effect, Event } from '../src/types.js';
import { FakeClock, fakeSignal } from './fake-clock.js';

export interface FakeProc {
  pid: number;
  id: number;
  slot: number;
  generation: number;
  alive: boolean;
  signals: string[];
}

export type SpawnOutcome = 'ok' | { fail: string };

export class Sim {
  readonly clock = new FakeClock();
  readonly sup: Supervisor;
  readonly procs = new Map<number, FakeProc>();
  readonly effects: Effect[] = [];
  readonly replies: Array<{ to: number; message: string; wait: boolean; ok: boolean }> = [];
  exitCode: number | null = null;
  spawnCount = 0;
  /** What happens when a spawn is attempted. */
  onSpawn: (generation: number) => SpawnOutcome = () => 'ok';
  /** ms after which a worker exits on a drain/stop signal; null: it ignores them. */
  drainExitMs: number | null = 0;
  /** Called after every fed event (for invariants). */
  check: (() => void) | null = null;
  private nextPid = 1000;
  private readonly queue: Event[] = [];

  constructor(config: Partial<CoreConfig>) {
    this.sup = new Supervisor(config);
  }

  get now(): number {
    return this.clock.now;
  }

  /** Timers by key: when each is due. */
  get timers(): Map<string, number> {
    return this.clock.timers;
  }

  feed(ev: Event): void {
    this.queue.push(ev);
    while (this.queue.length) {
      const e = this.queue.shift() as Event;
      const effects = this.sup.handle(e, this.now);
      this.effects.push(...effects);
      for (const eff of effects) this.apply(eff);
      this.check?.();
    }
  }

  start(): void {
    this.feed({ type: 'start' });
  }

  /** Advance the fake clock by `ms`, firing timers and scheduled exits in order. */
  advance(ms: number): void {
    this.clock.advance(ms, (due) => ('timer' in due ? this.feed({ type: 'timer', key: due.timer }) : this.exit(due.pid, 0, null)));
  }

  exit(pid: number, code: number | null, signal: string | null): void {
    const p = this.procs.get(pid);
    if (!p || !p.alive) return;
    p.alive = false;
    this.clock.exits.delete(pid);
    this.feed({ type: 'exited', pid, code, signal });
  }

  ack(pid: number): void {
    this.feed({ type: 'ack', pid });
  }

  alive(pred: (p: FakeProc) => boolean = () => true): FakeProc[] {
    return [...this.procs.values()].filter((p) => p.alive && pred(p));
  }

  /** Workers the core considers up and serving (acked, not asked to stop). */
  serving(): number {
    return this.sup.snapshot().workers.filter((w) => w.state === 'up').length;
  }

  repliesTo(to: number): string[] {
    return this.replies.filter((r) => r.to === to).map((r) => r.message);
  }

  private apply(e: Effect): void {
    switch (e.type) {
      case 'spawn': {
        this.spawnCount += 1;
        const outcome = this.onSpawn(e.generation);
        if (outcome !== 'ok') {
          this.queue.push({ type: 'spawnFailed', id: e.id, error: outcome.fail });
          return;
        }
        const pid = this.nextPid++;
        this.procs.set(pid, { pid, id: e.id, slot: e.slot, generation: e.generation, alive: true, signals: [] });
        this.queue.push({ type: 'spawned', id: e.id, pid });
        return;
      }
      case 'kill': {
        const p = this.procs.get(e.pid);
        const got = p ? fakeSignal(p, e.signal, this.drainExitMs) : null;
        if (got === 'killed') {
          this.clock.exits.delete(e.pid);
          this.queue.push({ type: 'exited', pid: e.pid, code: null, signal: 'SIGKILL' });
        } else if (got === 'drains' && !this.clock.exits.has(e.pid)) {
          this.clock.scheduleExit(e.pid, this.drainExitMs as number, undefined);
        }
        return;
      }
      case 'setTimer':
        this.clock.setTimer(e.key, e.ms);
        return;
      case 'clearTimer':
        this.clock.timers.delete(e.key);
        return;
      case 'reply':
        this.replies.push({ to: e.to, message: e.message, wait: e.wait, ok: e.ok });
        return;
      case 'exit':
        this.exitCode = e.code;
        return;
      case 'log':
        return;
    }
  }
}
