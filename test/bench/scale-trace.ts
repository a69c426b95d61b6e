/**
 * The scale phase's trace (BENCH_SCALE_TRACE=1): what each slow round trip was. The master
 * runs with EINHYRNINGSINS_LOOP_TRACE (packages/master/src/loop-trace.ts: its event-loop
 * thread's time on a CPU and waiting for one every 5 ms, its long tasks, its GCs, when it
 * handled each ehlo); the bench keeps, for each ehlo, when it was sent and answered and how
 * long its own thread waited for a CPU meanwhile; each tiny worker logs when its ACK
 * started. All on CLOCK_MONOTONIC, so they line up. For every round trip over a threshold:
 * where its time went (the way in, the master's handling, the way back), and what the
 * master's loop thread did over it (on a CPU, waiting for one, its longest gap between
 * ticks, the tasks and GCs in it). Pure: the files are read by scale.ts.
 */

import type { LoopTraceFile } from '@einhyrningsins/master';

/** The master's trace file (packages/master/src/loop-trace.ts writes it). */
export type { LoopTraceFile, TraceTick } from '@einhyrningsins/master';

/** One round trip seen by the bench (ehlo) or by a worker (its ACK); ms on CLOCK_MONOTONIC. */
export interface Trip {
  kind: 'ehlo' | 'ack';
  start: number;
  ms: number;
  /** The bench's own thread over it (ehlo only): waiting for a CPU, ms. */
  clientWaitMs?: number;
  pid?: number;
}

export interface TripExplained {
  trip: Trip;
  /** ehlo: from sending to the master's handling, the handling, from it to the answer read. */
  inMs: number | null;
  handleMs: number | null;
  backMs: number | null;
  /** The master's loop thread over the trip: on a CPU, waiting for one, longest tick gap. */
  runMs: number;
  waitMs: number;
  maxGapMs: number;
  /** The most threads runnable on the machine at a tick in it. */
  maxRunnable: number;
  /** Tasks of 2 ms or more and their sums, GCs, overlapping the trip. */
  longTasks: Array<[string, number]>;
  taskSums: Array<[string, number, number]>;
  gcMs: number;
}

/** What the master's loop did over [start, end] (ticks whose window overlaps it). */
export function explain(trace: LoopTraceFile, trip: Trip): TripExplained {
  const end = trip.start + trip.ms;
  let runMs = 0;
  let waitMs = 0;
  let maxGapMs = 0;
  let maxRunnable = 0;
  const sums = new Map<string, [number, number]>();
  for (const k of trace.ticks) {
    if (k.t < trip.start || k.t - k.gapMs > end) continue;
    runMs += k.runMs;
    waitMs += k.waitMs;
    maxGapMs = Math.max(maxGapMs, k.gapMs);
    maxRunnable = Math.max(maxRunnable, k.runnable);
    for (const [name, [n, ms]] of Object.entries(k.tasks)) {
      const s = sums.get(name) ?? [0, 0];
      s[0] += n;
      s[1] += ms;
      sums.set(name, s);
    }
  }
  const longTasks = trace.tasks.filter(([name, t, ms]) => name !== 'request:ehlo' && t <= end && t + ms >= trip.start).map(([name, , ms]): [string, number] => [name, ms]);
  const gcMs = trace.gcs.filter(([t, ms]) => t <= end && t + ms >= trip.start).reduce((a, [, ms]) => a + ms, 0);
  let inMs: number | null = null;
  let handleMs: number | null = null;
  let backMs: number | null = null;
  if (trip.kind === 'ehlo') {
    const h = trace.tasks.find(([name, t]) => name === 'request:ehlo' && t >= trip.start && t <= end);
    if (h) {
      inMs = h[1] - trip.start;
      handleMs = h[2];
      backMs = end - (h[1] + h[2]);
    }
  }
  const taskSums = [...sums].map(([name, [n, ms]]): [string, number, number] => [name, n, ms]).sort((a, b) => b[2] - a[2]);
  return { trip, inMs, handleMs, backMs, runMs, waitMs, maxGapMs, maxRunnable, longTasks, taskSums, gcMs };
}

const f = (x: number | null | undefined, d = 0) => (x === null || x === undefined || !Number.isFinite(x) ? '?' : x.toFixed(d));

/** One line per slow trip (the slowest first, at most `max`). */
export function traceReport(trace: LoopTraceFile, trips: Trip[], overMs: number, origin: number, max = 20): string[] {
  const slow = trips.filter((t) => t.ms > overMs).sort((a, b) => b.ms - a.ms).slice(0, max);
  return slow.map((trip) => {
    const e = explain(trace, trip);
    const who = trip.kind === 'ehlo' ? 'ehlo' : `ACK ${trip.pid ?? '?'}`;
    const path = trip.kind === 'ehlo' ? `: in ${f(e.inMs)} + master ${f(e.handleMs, 1)} + back ${f(e.backMs)} (bench waited for a CPU ${f(trip.clientWaitMs)})` : '';
    const long = e.longTasks.length ? `; long tasks ${e.longTasks.map(([n, ms]) => `${n} ${f(ms, 1)}`).join(', ')}` : '';
    const sums = e.taskSums.slice(0, 4).map(([n, c, ms]) => `${n} ${c}x ${f(ms)}`).join(', ');
    return (
      `  ${who} ${f(trip.ms)} ms at +${f(trip.start - origin)}${path}; master loop: on CPU ${f(e.runMs)}, waiting for a CPU ${f(e.waitMs)}, ` +
      `longest tick gap ${f(e.maxGapMs)}, up to ${f(e.maxRunnable)} threads runnable${e.gcMs > 0 ? `, GC ${f(e.gcMs, 1)}` : ''}; tasks ${sums || 'none'}${long}`
    );
  });
}
