/**
 * Latency and lost capacity around each upgrade under load, computed the way the shared
 * bench's upgrade_window.py does (pure: records and times in, figures out).
 *
 * - window of an upgrade: requests *started* in [trigger - preMs, done + postMs];
 * - lost capacity of an upgrade: the sum over the 100 ms buckets of its window of
 *   max(0, M - completions), M the median bucket of the run outside every window (the first
 *   and last second skipped), divided by M per ms: milliseconds of full capacity lost;
 * - noise floor: what a window of the same length gives without an upgrade (the mean
 *   shortfall of the buckets outside the windows, times the window's buckets);
 * - p99: nearest rank, of the requests started in the windows (pooled) and per window;
 * - the same in a fixed window, [trigger - preMs, trigger - preMs + fixedMs), as long for
 *   every tool (upgrade_window.py's second table): a tool's own window is as long as its
 *   upgrade, so a fast upgrade's slow requests weigh more in its p99 than the same slow
 *   requests in a long window that also holds normal traffic.
 */

export const BUCKET_MS = 100;

export interface UpgradeTimes {
  /** When the upgrade was asked for, and when it was done (old workers gone, N new ready), ms since the load's mark. */
  triggerMs: number;
  doneMs: number;
}

export interface WindowFigures {
  windowMs: number;
  requests: number;
  p99Ms: number;
  maxMs: number;
  lostMs: number;
  floorMs: number;
  /** The same figures in the fixed window (see above). */
  fixP99Ms: number;
  fixLostMs: number;
  fixFloorMs: number;
}

export interface WindowAnalysis {
  /** Median completions per 100 ms outside the windows. */
  medianBucket: number;
  upgrades: WindowFigures[];
  /** p99 of every request started in any window. */
  pooledP99Ms: number;
  /** p99 of the requests outside the windows (first and last second skipped). */
  outsideP99Ms: number;
  /** p99 of every request started in any fixed window. */
  fixPooledP99Ms: number;
}

export function percentile(xs: ArrayLike<number>, q: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

export function medianOf(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * @param starts   per request: start, ms since the mark
 * @param lats     per request: latency, ms
 * @param buckets  completions per 100 ms bucket since the mark
 * @param runMs    length of the run (ms since the mark)
 */
export function analyseWindows(
  starts: ArrayLike<number>,
  lats: ArrayLike<number>,
  buckets: readonly number[],
  runMs: number,
  ups: readonly UpgradeTimes[],
  preMs = 250,
  postMs = 500,
  fixedMs = 2500,
): WindowAnalysis {
  const nb = Math.floor(runMs / BUCKET_MS);
  const b = Array.from({ length: nb }, (_, i) => buckets[i] ?? 0);
  const wins = ups.map((u) => [u.triggerMs - preMs, u.doneMs + postMs] as const);
  const fixed = ups.map((u) => [u.triggerMs - preMs, u.triggerMs - preMs + fixedMs] as const);
  const inWin = (t: number) => wins.some(([s, e]) => s <= t && t < e);
  const skip = 1000 / BUCKET_MS;
  const outside: number[] = [];
  for (let i = skip; i < nb - skip; i++) if (!inWin((i + 0.5) * BUCKET_MS)) outside.push(b[i] as number);
  const M = medianOf(outside);
  const floorPerBucket = outside.length ? outside.reduce((a, x) => a + Math.max(0, M - x), 0) / outside.length : NaN;
  const perWin: number[][] = wins.map(() => []);
  const perFix: number[][] = fixed.map(() => []);
  const pooled: number[] = [];
  const fixPooled: number[] = [];
  const out: number[] = [];
  for (let r = 0; r < starts.length; r++) {
    const t = starts[r] as number;
    const lat = lats[r] as number;
    let inFixed = false;
    for (let w = 0; w < fixed.length; w++) {
      const [s, e] = fixed[w] as readonly [number, number];
      if (s <= t && t < e) {
        (perFix[w] as number[]).push(lat);
        inFixed = true;
      }
    }
    if (inFixed) fixPooled.push(lat);
    let hit = false;
    for (let w = 0; w < wins.length; w++) {
      const [s, e] = wins[w] as readonly [number, number];
      if (s <= t && t < e) {
        (perWin[w] as number[]).push(lat);
        hit = true;
      }
    }
    if (hit) pooled.push(lat);
    else if (t >= 1000 && t < runMs - 1000) out.push(lat);
  }
  /** Shortfall (ms of full capacity) and noise floor of the buckets of [s, e). */
  const shortfall = (s: number, e: number) => {
    const i0 = Math.max(0, Math.floor(s / BUCKET_MS));
    const i1 = Math.min(nb, Math.ceil(e / BUCKET_MS));
    let lost = 0;
    for (let i = i0; i < i1; i++) lost += Math.max(0, M - (b[i] as number));
    return {
      lostMs: M > 0 ? lost / (M / BUCKET_MS) : NaN,
      floorMs: M > 0 ? (floorPerBucket * Math.max(0, i1 - i0)) / (M / BUCKET_MS) : NaN,
    };
  };
  const upgrades = wins.map(([s, e], w) => {
    const own = shortfall(s, e);
    const [fs, fe] = fixed[w] as readonly [number, number];
    const fix = shortfall(fs, fe);
    const lats = perWin[w] as number[];
    return {
      windowMs: e - s,
      requests: lats.length,
      p99Ms: percentile(lats, 0.99),
      maxMs: lats.length ? lats.reduce((a, x) => (x > a ? x : a), -Infinity) : NaN,
      lostMs: own.lostMs,
      floorMs: own.floorMs,
      fixP99Ms: percentile(perFix[w] as number[], 0.99),
      fixLostMs: fix.lostMs,
      fixFloorMs: fix.floorMs,
    };
  });
  return {
    medianBucket: M,
    upgrades,
    pooledP99Ms: percentile(pooled, 0.99),
    outsideP99Ms: percentile(out, 0.99),
    fixPooledP99Ms: percentile(fixPooled, 0.99),
  };
}
