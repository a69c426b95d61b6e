/**
 * minisv's `logreopen`: every task's log file reopened at each multiple of the interval
 * (with `logsuffixdate`, a file of a new name), as minisv's rotateEveryPeriod.
 */
import type { Cleanup, Logger } from '@einhyrningsins/master';
import { nextAligned } from './go-time.js';

export function startLogReopen(everyMs: number, reopen: () => Promise<string>, log: Logger, cleanup: Cleanup, now: () => number = Date.now): void {
  let timer: NodeJS.Timeout | null = null;
  const arm = () => {
    const t = now();
    timer = setTimeout(() => {
      void reopen().then(
        (m) => log.debug(`logreopen: ${m}`),
        (err: Error) => log.warn(`logreopen: ${err.message}`),
      );
      arm();
    }, nextAligned(t, everyMs) - t);
    timer.unref();
  };
  arm();
  cleanup.add(() => {
    if (timer) clearTimeout(timer);
  });
}
