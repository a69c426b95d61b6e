import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

export class ProgramError extends Error {
  override name = 'ProgramError';
}

function check(path: string, shown: string): string {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ProgramError(`program not found: ${shown}`);
  }
  if (!st.isFile()) throw new ProgramError(`program is not a regular file: ${shown}`);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new ProgramError(`program is not executable: ${shown}`);
  }
  return path;
}

/**
 * Find the file to execute for `word`, the way execvp does: a word with a
 * slash is a path (relative to `cwd`), any other is searched in PATH.
 * Called at every spawn, so a new release installed at the same path is run.
 */
export function resolveProgram(word: string, pathEnv: string | undefined, cwd: string): string {
  if (word.includes('/')) return check(isAbsolute(word) ? word : resolve(cwd, word), word);
  const dirs = (pathEnv ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter);
  let lastError: ProgramError | null = null;
  for (const dir of dirs) {
    const candidate = join(dir === '' ? '.' : isAbsolute(dir) ? dir : resolve(cwd, dir), word);
    try {
      return check(candidate, word);
    } catch (err) {
      if ((err as Error).message.startsWith('program not found')) continue;
      lastError = err as ProgramError;
    }
  }
  throw lastError ?? new ProgramError(`program not found in PATH: ${word}`);
}
