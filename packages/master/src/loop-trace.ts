/**
 * The loop trace (EINHYRNINGSINS_LOOP_TRACE=FILE; loaded only then): what the master's
 * event-loop thread did, to tell a long turn of the loop (and which task ran in it) from
 * a wait for a CPU. Every TICK_MS a timer notes how late it fired and what the thread did
 * since the last tick, from /proc/thread-self/schedstat: time on a CPU, time runnable but
 * waiting for one. The busy places report their tasks through loop-probe.ts (counted and
 * summed per tick; each one of TASK_MS or more, and every ehlo, also on its own); V8's
 * garbage collections come from a PerformanceObserver. At exit, all of it goes to FILE as
 * JSON, times in monotonic ms (CLOCK_MONOTONIC, as process.hrtime: another process can
 * line its own times up with them). test/bench/scale.ts reads it (BENCH_SCALE_TRACE=1).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { monotonicMs } from './clock.js';
import { setProbe } from './loop-probe.js';
import { runnableThreads } from './proc-stat.js';

const TICK_MS = 5;
/** A task this long is noted on its own, not only in its tick's sums. */
const TASK_MS = 2;

export interface TraceTick {
  /** When the tick fired; the window is (previous tick's t, t]. */
  t: number;
  gapMs: number;
  runMs: number;
  waitMs: number;
  /** Threads runnable on the machine when the tick fired (/proc/loadavg), this one included. */
  runnable: number;
  /** name -> [count, total ms, longest ms] of the tasks that ended in the window. */
  tasks: Record<string, [number, number, number]>;
}

export interface LoopTraceFile {
  tickMs: number;
  ticks: TraceTick[];
  /** [name, start, ms] of every task of TASK_MS or more, and of every ehlo. */
  tasks: Array<[string, number, number]>;
  /** [start, ms, kind] of every garbage collection. */
  gcs: Array<[number, number, number]>;
}

/** [on a CPU, waiting for one] in ns, of the calling thread (the event loop's). */
function schedstat(): [number, number] {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    return [Number(run), Number(wait)];
  } catch {
    return [NaN, NaN];
  }
}

export function startLoopTrace(file: string): void {
  const out: LoopTraceFile = { tickMs: TICK_MS, ticks: [], tasks: [], gcs: [] };
  let sums = new Map<string, [number, number, number]>();
  setProbe({
    task(name, t0) {
      const ms = monotonicMs() - t0;
      let s = sums.get(name);
      if (!s) sums.set(name, (s = [0, 0, 0]));
      s[0] += 1;
      s[1] += ms;
      if (ms > s[2]) s[2] = ms;
      if (ms >= TASK_MS || name === 'request:ehlo') out.tasks.push([name, t0, ms]);
    },
  });
  // performance.now() and monotonicMs() are both CLOCK_MONOTONIC, from different origins.
  const offset = monotonicMs() - performance.now();
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) out.gcs.push([e.startTime + offset, e.duration, ((e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0)]);
  });
  gc.observe({ entryTypes: ['gc'] });
  let t = monotonicMs();
  let s = schedstat();
  const timer = setInterval(() => {
    const t1 = monotonicMs();
    const s1 = schedstat();
    out.ticks.push({ t: t1, gapMs: t1 - t, runMs: (s1[0] - s[0]) / 1e6, waitMs: (s1[1] - s[1]) / 1e6, runnable: runnableThreads(), tasks: Object.fromEntries(sums) });
    sums = new Map();
    t = t1;
    s = s1;
  }, TICK_MS);
  timer.unref();
  process.once('exit', () => {
    clearInterval(timer);
    gc.disconnect();
    setProbe(null);
    try {
      writeFileSync(file, JSON.stringify(out));
    } catch (err) {
      process.stderr.write(`einhyrningsins: could not write the loop trace to ${file}: ${(err as Error).message}\n`);
    }
  });
}
