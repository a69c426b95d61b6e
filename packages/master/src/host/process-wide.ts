/**
 * What a host does once per process: reap what the workers leave behind (as a child
 * subreaper, or as PID 1), keep its memory from creeping, and never leave files behind
 * on a bug or at exit.
 */
import type { Cleanup } from '../cleanup.js';
import type { Logger } from '../log.js';
import { MemoryKeeper } from '../memory.js';

export { capMallocArenas } from '../memory.js';
import { Reaper } from '../reaper.js';

export interface ReaperSetup {
  /** PR_SET_CHILD_SUBREAPER (else only as PID 1, where every orphan is ours anyway). */
  subreaper: boolean;
  isWorker(pid: number): boolean;
  workers(): Iterable<number>;
  signalTimeoutMs: number | null;
  log: Logger;
}

/**
 * What workers leave behind is reparented to us as a subreaper or as PID 1 (a
 * container's entrypoint, where every orphan of the container is ours): reap it all.
 */
export function startReaper(setup: ReaperSetup, cleanup: Cleanup): Reaper | null {
  if (!setup.subreaper && process.pid !== 1) return null;
  const reaper = new Reaper({ isWorker: setup.isWorker, workers: setup.workers, signalTimeoutMs: setup.signalTimeoutMs, log: setup.log });
  try {
    reaper.start(setup.subreaper);
  } catch (err) {
    setup.log.warn(`cannot become a child subreaper: ${(err as Error).message}`);
    reaper.start(false);
  }
  cleanup.add(() => reaper.stop());
  return reaper;
}

/** `settled`: whether the workers are settled (a compaction waits for it, see MemoryKeeper). */
export function startMemoryKeeper(cleanup: Cleanup, settled?: () => boolean): MemoryKeeper {
  const memory = new MemoryKeeper(settled);
  cleanup.add(() => memory.stop());
  return memory;
}

/**
 * A bug must not leave files behind: log it, run `last` (remove the control socket,
 * pidfile and lockfile), and exit 70. The children are left running, as after a
 * SIGKILL of the master (with -k they get their death signal from the kernel).
 */
export function installLastResort(log: Logger, last: () => void): void {
  const fatal = (err: unknown) => {
    try {
      log.error(`internal error, exiting: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    } catch {
      /* logging is best effort here */
    }
    last();
    process.exit(70);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}

/**
 * Exit with `code`: first what the workers left behind (it would outlive us), then the
 * files; output and replies get a moment to flush, but a stray handle never holds us.
 */
export function exitProcess(code: number, reaper: Reaper | null, drainTimeoutMs: number, cleanup: Cleanup, last?: () => void): void {
  const finish = () => {
    cleanup.run();
    last?.();
    process.exitCode = code;
    setTimeout(() => process.exit(code), 500).unref();
  };
  if (reaper) reaper.drain(drainTimeoutMs).then(finish, finish);
  else finish();
}
