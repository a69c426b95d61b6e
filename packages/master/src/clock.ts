/**
 * Monotonic milliseconds (CLOCK_MONOTONIC, as performance.now() but from an arbitrary
 * origin: only differences mean anything). Not performance.now(): node:perf_hooks, or
 * the global `performance`, costs the master about 1 MB of RSS to load.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
