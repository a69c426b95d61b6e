import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

export class ProgramError extends Error {
  override name = 'ProgramError';
}

/**
 * What `path` is as a program: its path when it can be run, the reason when it is a
 * file or directory that cannot, null when there is nothing there. A miss costs no
 * exception: a PATH search misses in most of its directories, at every spawn.
 */
function examine(path: string, shown: string): string | ProgramError | null {
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch {
    return null; // ENOTDIR, EACCES on a directory on the way, ELOOP: not there either
  }
  if (st === undefined) return null;
  if (!st.isFile()) return new ProgramError(`program is not a regular file: ${shown}`);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return new ProgramError(`program is not executable: ${shown}`);
  }
  return path;
}

/**
 * Find the file to execute for `word`, the way execvp does: a word with a
 * slash is a path (relative to `cwd`), any other is searched in PATH, where a
 * directory entry that cannot be run is passed over (and reported if nothing
 * later in PATH can). Called at every spawn, so a new release installed at the
 * same path is run.
 */
export function resolveProgram(word: string, pathEnv: string | undefined, cwd: string): string {
  if (word.includes('/')) {
    const found = examine(isAbsolute(word) ? word : resolve(cwd, word), word);
    if (typeof found === 'string') return found;
    throw found ?? new ProgramError(`program not found: ${word}`);
  }
  const dirs = (pathEnv ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter);
  let unusable: ProgramError | null = null;
  for (const dir of dirs) {
    // Relative entries (and the empty one: the current directory) are taken from `cwd`,
    // the child's, not from the master's own.
    const found = examine(join(resolve(cwd, dir === '' ? '.' : dir), word), word);
    if (typeof found === 'string') return found;
    unusable ??= found;
  }
  throw unusable ?? new ProgramError(`program not found in PATH: ${word}`);
}
