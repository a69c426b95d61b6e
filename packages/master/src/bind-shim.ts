/**
 * The bind shim (einhyrningsins-bind-shim.so, in LD_PRELOAD): a program that
 * binds its port itself gets the inherited listening socket instead of
 * EADDRINUSE. Used by `--handoff port` and by the dyno driver's web type.
 */
import { existsSync } from 'node:fs';
import * as native from 'native-reuseport';
import { staticExecutable } from './elf.js';

/** A listening socket as the child sees it. */
export interface ShimSocket {
  childFd: number;
  family: 4 | 6 | 'unix';
}

/**
 * The variables that put the shim in front of the program: LD_PRELOAD (the
 * shim first, then what the program had), EINHYRNINGSINS_BIND_FDS (the TCP
 * sockets it may substitute), and a line per substitution when `verbose`.
 */
export function bindShimEnv(sockets: readonly ShimSocket[], inheritedPreload: string | undefined, verbose: boolean): Record<string, string> {
  const tcp = sockets.filter((s) => s.family !== 'unix').map((s) => s.childFd);
  const shim = native.bindShimPath;
  const env: Record<string, string> = {
    LD_PRELOAD: inheritedPreload ? `${shim} ${inheritedPreload}` : shim,
    EINHYRNINGSINS_BIND_FDS: tcp.join(','),
  };
  if (verbose) env.EINHYRNINGSINS_BIND_VERBOSE = '1';
  return env;
}

/** Why the shim cannot be preloaded (missing, or a path LD_PRELOAD cannot name), or null. */
export function bindShimProblem(): string | null {
  const path = native.bindShimPath;
  if (!existsSync(path)) return `The bind shim ${path} is missing`;
  if (/[\s:]/.test(path)) return `The bind shim ${path} has a space or colon in its path, which LD_PRELOAD cannot name`;
  return null;
}

/** The warning for a program the shim cannot reach (a static executable: no dynamic loader), or null. */
export function staticExecutableWarning(who: string, exe: string, fdHint: string): string | null {
  if (!staticExecutable(exe)) return null;
  return (
    `${who} runs ${exe}, a static executable: LD_PRELOAD cannot reach it, so if it binds $PORT itself it cannot share the port ` +
    `(it will fail with EADDRINUSE); have it listen on the inherited socket ${fdHint} instead`
  );
}
