import { readFileSync } from 'node:fs';

/**
 * The fields of /proc/PID/stat after the command name, or null when the process is
 * gone: [0] is field 3 (state), [1] ppid, [2] pgrp, [3] session, [11] utime,
 * [12] stime, [19] starttime (proc(5) numbering minus 3). The command name (field 2)
 * may hold spaces and parentheses, so the split starts after the last ')'.
 */
export function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * Threads runnable on the machine now (/proc/loadavg's fourth field, "running/total"), this
 * one included; NaN when unreadable. `path`: the file (a test's stand-in).
 */
export function runnableThreads(path = '/proc/loadavg'): number {
  try {
    const m = / (\d+)\//.exec(readFileSync(path, 'latin1'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
