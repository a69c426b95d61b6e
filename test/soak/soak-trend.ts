import { PER_WORKER_FROM, PER_WORKER_LIMIT_KB, flatVerdict, perWorkerVerdict } from '../bench/rss-base.js';

/**
 * The soak's figures (pure: readings in, trend and verdict out): the least-squares slope of
 * the master's RSS over the upgrades, and whether that is a leak.
 */

export interface SoakReading {
  /** After this many upgrades (negative: before the warm-up ones). */
  upgrade: number;
  rssKb: number;
  /** (RSS - the master's RSS with one worker) / (N - 1) (test/bench/rss-base.ts). */
  perWorkerKb: number;
  fds: number;
  live: number;
  zombies: number;
}

export interface SoakTrend {
  /** The first upgrade the fit uses (the first tenth of the run is left out: caches filling). */
  fromUpgrade: number;
  points: number;
  /** RSS growth in KB per 100 upgrades. */
  kbPer100: number;
  /** The slope's standard error, same unit (0 with fewer than 3 readings). */
  sePer100: number;
  /** The slope times the upgrades the fit spans. */
  spanGrowthKb: number;
}

/** Least-squares slope of RSS over the readings from the first tenth of `upgrades` on. */
export function fitSlope(readings: readonly SoakReading[], upgrades: number): SoakTrend {
  const from = Math.ceil(upgrades / 10);
  let pts = readings.filter((r) => r.upgrade >= from && Number.isFinite(r.rssKb));
  if (pts.length < 3) pts = readings.filter((r) => r.upgrade >= 0 && Number.isFinite(r.rssKb));
  const n = pts.length;
  if (n < 2) return { fromUpgrade: pts[0]?.upgrade ?? 0, points: n, kbPer100: 0, sePer100: 0, spanGrowthKb: 0 };
  const mx = pts.reduce((a, r) => a + r.upgrade, 0) / n;
  const my = pts.reduce((a, r) => a + r.rssKb, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const r of pts) {
    sxy += (r.upgrade - mx) * (r.rssKb - my);
    sxx += (r.upgrade - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  let sse = 0;
  for (const r of pts) sse += (r.rssKb - (my + slope * (r.upgrade - mx))) ** 2;
  const se = n > 2 && sxx > 0 ? Math.sqrt(sse / (n - 2) / sxx) : 0;
  const span = (pts.at(-1) as SoakReading).upgrade - (pts[0] as SoakReading).upgrade;
  return { fromUpgrade: (pts[0] as SoakReading).upgrade, points: n, kbPer100: slope * 100, sePer100: se * 100, spanGrowthKb: slope * span };
}

/** RSS growth over the trend's span above which the soak fails whatever N (issue 11: 6 MiB from upgrade 50 to 350). */
export const GROWTH_LIMIT_KB = 6 * 1024;
/** Issue 24's targets, as the scale phase of `npm run bench` states them too (test/bench/rss-base.ts). */
export { PER_WORKER_FROM, PER_WORKER_LIMIT_KB } from '../bench/rss-base.js';

export function soakVerdict(x: {
  n: number;
  upgrades: number;
  first: SoakReading;
  readings: readonly SoakReading[];
  trend: SoakTrend;
}): { problems: string[]; projectedPerWorkerKb: number; growthPer100: number; targets: string[] } {
  const problems: string[] = [];
  const last = x.readings.at(-1) as SoakReading;
  const start = x.readings[0] as SoakReading;
  if (last.fds > start.fds) problems.push(`open fds grew from ${start.fds} to ${last.fds}`);
  if (last.zombies > 0) problems.push(`${last.zombies} zombie children at the end`);
  if (last.live !== x.n) problems.push(`${last.live} live children at the end, expected ${x.n}`);
  if (x.trend.spanGrowthKb > GROWTH_LIMIT_KB) {
    problems.push(`RSS grew by ${(x.trend.spanGrowthKb / 1024).toFixed(1)} MiB over upgrades ${x.trend.fromUpgrade}..${last.upgrade} (limit ${GROWTH_LIMIT_KB / 1024} MiB)`);
  }
  // Growth that the readings' noise does not explain (slope minus two standard errors): a
  // short run's sawtooth alone must not project into a failure at 1,000 upgrades.
  const growthPer100 = Math.max(0, x.trend.kbPer100 - 2 * x.trend.sePer100);
  const projectedPerWorkerKb = last.perWorkerKb + (growthPer100 * Math.max(0, 1000 - last.upgrade)) / 100 / x.n;
  // Every reading counts, the one before the warm-up upgrades too.
  const all = [x.first, ...x.readings];
  const worst = all.reduce((a, r) => (r.perWorkerKb > a.perWorkerKb ? r : a));
  if (x.n >= PER_WORKER_FROM) {
    if (worst.perWorkerKb > PER_WORKER_LIMIT_KB) {
      problems.push(`RSS per worker ${worst.perWorkerKb.toFixed(1)} KB ${worst.upgrade < 0 ? 'at the start' : `after ${worst.upgrade} upgrades`} (limit ${PER_WORKER_LIMIT_KB})`);
    } else if (projectedPerWorkerKb > PER_WORKER_LIMIT_KB) {
      problems.push(`RSS per worker ${last.perWorkerKb.toFixed(1)} KB, growing at least ${(growthPer100 / x.n).toFixed(3)} KB per 100 upgrades: ${projectedPerWorkerKb.toFixed(1)} KB at 1,000 upgrades (limit ${PER_WORKER_LIMIT_KB})`);
    }
  }
  const per = perWorkerVerdict(
    x.n,
    all.map((r) => ({ label: r.upgrade < 0 ? 'start' : `after ${r.upgrade}`, kb: r.perWorkerKb })),
  );
  const flat = flatVerdict({ n: x.n, upgrades: x.upgrades, kbPer100: x.trend.kbPer100, sePer100: x.trend.sePer100 });
  if (flat.met === false) problems.push(`RSS not flat: ${flat.beyondNoiseKbPerWorker.toFixed(2)} KB per worker over 1,000 upgrades beyond the noise`);
  return { problems, projectedPerWorkerKb, growthPer100, targets: [per.line, flat.line] };
}
