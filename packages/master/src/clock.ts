/**
 * Monotonic milliseconds (CLOCK_MONOTONIC, as performance.now() but from an arbitrary
 * origin: only differences mean anything). Not performance.now(): node:perf_hooks, or
 * the global `performance`, costs the master about 1 MB of RSS to load.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/**
 * `2026-12-01T18:33:02.918Z`, what Date.prototype.toISOString() writes, made from the
 * UTC getters. Not toISOString() itself: its first call brings in about 0.8 MB of the
 * node binary (ICU's date and time-zone code and data, seen in /proc/PID/pagemap), an
 * eighth of the master's start-up memory, where the UTC getters need none of it.
 * Years outside 0..9999 (written +YYYYYY) and invalid dates go to toISOString.
 */
export function isoTime(ms: number = Date.now()): string {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  if (!(y >= 0 && y <= 9999)) return d.toISOString();
  return (
    `${pad(y, 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${pad(d.getUTCMilliseconds(), 3)}Z`
  );
}
