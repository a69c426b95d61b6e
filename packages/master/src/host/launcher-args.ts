/** The launcher's command line for one worker (native/launch.c: what each option does). */
export interface LauncherArgs {
  /** The first fd the launcher closes (every one from it on): the child keeps 0 .. closeFrom-1. */
  closeFrom: number;
  /** setpriority before exec, or null. */
  nice: number | null;
  /** -k: PR_SET_PDEATHSIG with this signal number (against this process's pid), or null. */
  deathSignal: number | null;
  /** A config's user= (the runtime is root): setgroups, setgid, setuid. */
  user: { uid: number; gid: number; groups?: readonly number[] } | null;
  /** The spawn runs on another thread: cwd and umask (process-wide) are the launcher's to set. */
  cwd: string;
  /** null: the launcher's own (the shell always passes one: spawner.ts, processUmask). */
  umask: number | null;
  /** The resolved program and its argv (argv[0] first). */
  path: string;
  argv: readonly string[];
}

/** argv for the launcher, its own path not included. */
export function launcherArgs(a: LauncherArgs): string[] {
  const out = ['--setpgid', '--close-from', String(a.closeFrom)];
  if (a.nice !== null) out.push('--nice', String(a.nice));
  if (a.deathSignal !== null) out.push('--pdeathsig', String(a.deathSignal), '--ppid', String(process.pid));
  if (a.user) {
    out.push('--uid', String(a.user.uid), '--gid', String(a.user.gid));
    if (a.user.groups?.length) out.push('--groups', a.user.groups.join(','));
  }
  out.push('--cwd', a.cwd);
  if (a.umask !== null) out.push('--umask', a.umask.toString(8));
  out.push('--', a.path, ...a.argv);
  return out;
}
