/**
 * A fake shell for the core: a fake clock, fake timers and fake processes.
 * It carries out effects the way the real master does, so traces can be
 * replayed deterministically.
 */
import { Supervisor } from '../src/supervisor.js';
import type { CoreConfig, Effect, Event } from '../src/types.js';

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
  now = 0;
  readonly sup: Supervisor;
  readonly timers = new Map<string, number>();
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
  private readonly pendingExits = new Map<number, number>();

  constructor(config: Partial<CoreConfig>) {
    this.sup = new Supervisor(config);
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
    const end = this.now + ms;
    for (;;) {
      let nextKey: string | null = null;
      let nextAt = Infinity;
      for (const [k, at] of this.timers) if (at < nextAt) [nextKey, nextAt] = [k, at];
      let exitPid: number | null = null;
      for (const [pid, at] of this.pendingExits) if (at < nextAt) [exitPid, nextAt, nextKey] = [pid, at, null];
      if (nextAt > end) break;
      this.now = nextAt;
      if (exitPid !== null) {
        this.pendingExits.delete(exitPid);
        this.exit(exitPid, 0, null);
      } else if (nextKey !== null) {
        this.timers.delete(nextKey);
        this.feed({ type: 'timer', key: nextKey });
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
        if (!p || !p.alive) return;
        p.signals.push(e.signal);
        if (e.signal === 'SIGKILL') {
          p.alive = false;
          this.pendingExits.delete(p.pid);
          this.queue.push({ type: 'exited', pid: p.pid, code: null, signal: 'SIGKILL' });
        } else if (this.drainExitMs !== null && ['SIGUSR2', 'SIGTERM', 'SIGINT', 'SIGQUIT'].includes(e.signal)) {
          if (!this.pendingExits.has(p.pid)) this.pendingExits.set(p.pid, this.now + this.drainExitMs);
        }
        return;
      }
      case 'setTimer':
        this.timers.set(e.key, this.now + e.ms);
        return;
      case 'clearTimer':
        this.timers.delete(e.key);
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
