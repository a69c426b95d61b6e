import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';

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
  if (unusable) throw unusable;
  // `-- app.sh` for ./app.sh: say what is here, rather than only "not found".
  const local = examine(resolve(cwd, word), `./${word}`);
  if (local instanceof ProgramError && /not executable/.test(local.message)) {
    throw new ProgramError(`program not found in PATH: ${word}; ./${word} is here but not executable (chmod +x ${word}, and run it as ./${word})`);
  }
  if (typeof local === 'string') throw new ProgramError(`program not found in PATH: ${word} (to run the one here, write ./${word})`);
  throw new ProgramError(`program not found in PATH: ${word}`);
}

/** The first line of `path` when it starts with `#!`, else null. */
function shebang(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null; // unreadable but executable: let exec decide
  }
  try {
    const buf = Buffer.alloc(256);
    const n = readSync(fd, buf, 0, buf.length, 0);
    if (n < 2 || buf[0] !== 0x23 || buf[1] !== 0x21) return null;
    const end = buf.indexOf(0x0a);
    return buf.toString('utf8', 2, end < 0 || end > n ? n : end);
  } finally {
    closeSync(fd);
  }
}

/**
 * Check that what runs `word` exists: the interpreter of a `#!` script (and, for
 * `#!/usr/bin/env CMD`, CMD in PATH).
 * Without this, exec fails with ENOENT for a file that exists, at every start.
 * @throws ProgramError naming the missing interpreter.
 */
export function checkInterpreter(word: string, pathEnv: string | undefined, cwd: string): void {
  const path = resolveProgram(word, pathEnv, cwd);
  const line = shebang(path);
  // An ELF program's own loader (PT_INTERP) is not checked: under qemu-user or a
  // binfmt handler the kernel does not look for it where the file says.
  if (line === null) return;
  const trimmed = line.trim();
  const space = trimmed.search(/[ \t]/);
  const interp = space < 0 ? trimmed : trimmed.slice(0, space);
  const args = space < 0 ? '' : trimmed.slice(space).trim();
  if (interp === '') throw new ProgramError(`cannot run ${word}: its #! line names no interpreter`);
  const found = examine(resolve(cwd, interp), interp);
  if (found === null) throw new ProgramError(`cannot run ${word}: its interpreter ${interp} (#!${line.trimEnd()}) is not found`);
  if (found instanceof ProgramError) throw new ProgramError(`cannot run ${word}: its interpreter ${found.message.replace(/^program /, '')}`);
  if (basename(interp) !== 'env') return;
  // #!/usr/bin/env [-S] [VAR=value...] CMD [ARGS]: CMD is looked up in PATH.
  const cmd = args.split(/\s+/).find((w) => w !== '' && !w.startsWith('-') && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w));
  if (cmd === undefined) return;
  try {
    resolveProgram(cmd, pathEnv, cwd);
  } catch (err) {
    throw new ProgramError(`cannot run ${word}: its interpreter ${cmd} (#!${line.trimEnd()}): ${(err as Error).message}`);
  }
}
