/**
 * Hooks for the loop trace (EINHYRNINGSINS_LOOP_TRACE=FILE, loop-trace.ts): null, and so
 * free, unless it runs. The busy places of the event loop (a turn of spawns, their pids,
 * reaps, the orphan reaper's scan, a compaction, a control request) say what ran and since
 * when, so that a long turn of the loop can be told apart from a wait for a CPU.
 */
import { monotonicMs } from './clock.js';

export interface LoopProbe {
  /** `name` ran from `t0` (monotonicMs) until now. */
  task(name: string, t0: number): void;
}

export let probe: LoopProbe | null = null;

export function setProbe(p: LoopProbe | null): void {
  probe = p;
}

/** monotonicMs() while tracing, else 0 (no clock read when nobody looks). */
export function probeStart(): number {
  return probe ? monotonicMs() : 0;
}
