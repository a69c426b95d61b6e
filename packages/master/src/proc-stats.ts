import { readFileSync } from 'node:fs';
import { monotonicMs } from './clock.js';
import { statFields } from './proc-stat.js';

/** Linux's USER_HZ: /proc times are in these ticks (100 on every Linux ABI Node runs on). */
const TICKS_PER_SEC = 100;

export interface ProcSample {
  /** CPU use since the previous sample of this pid (or over its life on the first), in % of one core. */
  cpuPercent: number;
  /** Resident set size, KiB. */
  rssKb: number;
}

/** utime + stime of a process, in ticks; null if it is gone. */
function cpuTicks(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : null;
}

function rssKb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0; // a zombie has no VmRSS
  } catch {
    return null;
  }
}

/**
 * CPU% and RSS of workers from /proc, as `ps`/`top` compute them: CPU is the
 * ticks used between two looks at a pid over the wall time between them, so
 * `status --watch` shows the current rate, and a first look the average since
 * the worker started.
 */
export class ProcStats {
  private readonly last = new Map<number, { ticks: number; at: number; result: ProcSample }>();

  constructor(private readonly clock: () => number = () => monotonicMs()) {}

  /** `ageMs`: how long the worker has lived (the first sample's time base). */
  sample(pid: number, ageMs: number): ProcSample | null {
    const now = this.clock();
    const prev = this.last.get(pid);
    // One reply renders the text and the JSON: both get the same numbers.
    if (prev && now - prev.at < 250) return prev.result;
    const ticks = cpuTicks(pid);
    const rss = rssKb(pid);
    if (ticks === null || rss === null) {
      this.last.delete(pid);
      return null;
    }
    const usedMs = ((prev ? ticks - prev.ticks : ticks) * 1000) / TICKS_PER_SEC;
    const overMs = prev ? now - prev.at : ageMs;
    const cpuPercent = overMs > 0 ? Math.max(0, Math.round((usedMs / overMs) * 1000) / 10) : 0;
    const result = { cpuPercent, rssKb: rss };
    this.last.set(pid, { ticks, at: now, result });
    return result;
  }

  /** Forget pids not in `live`. */
  prune(live: ReadonlySet<number>): void {
    for (const pid of [...this.last.keys()]) if (!live.has(pid)) this.last.delete(pid);
  }
}
