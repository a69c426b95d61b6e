/**
 * What the option checks and the master's start-up need of --watch and --fetch before any
 * release machinery runs (releases.ts, watch.ts, the fetcher are loaded only when asked for:
 * start-up RSS): whether there is anything to run, and the file a fetcher would replace.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StartupError } from './errors.js';
import { resolveProgram } from './program.js';

export interface ReleaseOptions {
  /** --watch paths. */
  watch: readonly string[];
  /** --fetch URL (checked by the option parser), --fetch-interval, --fetch-max-size. */
  fetch: string | null;
  fetchIntervalSec: number;
  fetchMaxBytes: number;
  /** The group's program word (resolved through PATH from `cwd`, as a spawn does). */
  program: string | null;
}

/** Whether there is anything to run (no watch, no fetch: the master needs no Releases). */
export function releasesWanted(opts: Pick<ReleaseOptions, 'watch' | 'fetch'>): boolean {
  return opts.watch.length > 0 || opts.fetch !== null;
}

/**
 * The file a fetcher replaces: the program's resolved executable, symlinks followed. It
 * must be in a directory this process may write (the download goes next to it, then a
 * rename), and must not be the Node that runs it. A problem is one phrase (no prefix).
 */
export function fetchTargetOf(word: string, env: NodeJS.ProcessEnv, cwd: string): { target: string } | { problem: string } {
  let real: string;
  try {
    real = realpathSync(resolveProgram(word, env.PATH, cwd));
  } catch (err) {
    return { problem: (err as Error).message };
  }
  if (real === realpathSync(process.execPath)) {
    return { problem: `the program ${word} is the node executable itself; fetch releases of a program file, not of its interpreter` };
  }
  try {
    accessSync(dirname(real), constants.W_OK);
  } catch {
    return { problem: `cannot write to ${dirname(real)}, where the program ${real} is replaced` };
  }
  return { target: real };
}

/** The master's --fetch target (a problem: a StartupError). */
export function fetchTarget(opts: ReleaseOptions, env: NodeJS.ProcessEnv, cwd: string): string {
  const word = opts.program as string;
  const got = fetchTargetOf(word, env, cwd);
  // (checkMaster resolved the program before: what is left are this check's own problems)
  if ('problem' in got) throw new StartupError(`--fetch: ${got.problem}`);
  return got.target;
}

/** The check --watch makes at start: the directory that holds PATH exists. Returns the reason if not. */
export function watchPathProblem(path: string): string | null {
  const dir = dirname(resolve(path));
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
  } catch {
    return `directory ${dir} does not exist`;
  }
  return null;
}
