/**
 * Where the app comes from: a Procfile (+ .env + formation), or hsup's
 * control directory. Reading only: renaming control files is the driver's.
 */
import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LOADED_FILE, MAX_CONTROL_FILE_BYTES, NEW_FILE, parseRelease, ReleaseError } from './control-dir.js';
import { parseDotenv } from './dotenv.js';
import { AppError, UsageError } from './errors.js';
import { parseProcfile, type ProcfileEntry } from './procfile.js';
import { RELEASE_TYPE, releaseFromProcfile, type Release } from './release.js';
import type { AppSource } from './app-location.js';

export type { AppSource } from './app-location.js';

function readText(path: string, what: string): string {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new AppError(`${what} ${path} does not exist`);
  }
  if (!st.isFile()) throw new AppError(`${what} ${path} is not a regular file`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AppError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** Where the warnings of tolerant parsing go (a line each). */
export type Warn = (message: string) => void;

/** The .env variables (an absent default .env is no variables). */
export function readDotenv(path: string | null, explicit: boolean, warn: Warn): Record<string, string> {
  if (path === null) return {};
  if (!explicit && !existsSync(path)) return {};
  const parsed = parseDotenv(readText(path, '.env file'), path);
  parsed.warnings.forEach(warn);
  return parsed.value;
}

export function readProcfile(path: string, warn: Warn): ProcfileEntry[] {
  const parsed = parseProcfile(readText(path, 'Procfile'), path);
  parsed.warnings.forEach(warn);
  return parsed.value;
}

/** Check that the named process types exist (start web worker; --formation); `prefix` starts the message. */
export function checkTypes(known: readonly string[], named: Iterable<string>, prefix: string, where: string): void {
  for (const t of named) {
    if (!known.includes(t)) {
      throw new UsageError(`${prefix}unknown process type '${t}' (${where} has: ${known.join(', ') || 'none'})`);
    }
  }
}

/** A Procfile app as release `version`. */
export function loadProcfileApp(src: Extract<AppSource, { kind: 'procfile' }>, version: number, warn: Warn): Release {
  const entries = readProcfile(src.procfile, warn);
  const env = readDotenv(src.envFile, src.envExplicit, warn);
  checkTypes(
    entries.map((e) => e.type).filter((t) => t !== RELEASE_TYPE),
    src.formation.keys(),
    '--formation: ',
    src.procfile,
  );
  return releaseFromProcfile(version, entries, env, src.formation);
}

export function procfileDir(src: Extract<AppSource, { kind: 'procfile' }>): string {
  return dirname(src.procfile);
}

/** Check that the control directory is a directory. */
export function checkControlDir(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new AppError(`control directory ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new AppError(`control directory ${dir} is not a directory`);
}

/** Read and check one control file; a ReleaseError says what is wrong. */
export function readControlFile(path: string): Release {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    throw new ReleaseError(`cannot read: ${(err as Error).message}`);
  }
  // Not followed: a link would have the driver read (and report on) a file of the link's choosing.
  if (st.isSymbolicLink()) throw new ReleaseError('a symbolic link, not a regular file (write the release itself, to a temporary name, then rename it)');
  if (!st.isFile()) throw new ReleaseError(`not a regular file (${st.isDirectory() ? 'a directory' : 'a special file'})`);
  if (st.size > MAX_CONTROL_FILE_BYTES) throw new ReleaseError(`larger than ${MAX_CONTROL_FILE_BYTES} bytes`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ReleaseError(`cannot read: ${(err as Error).message}`);
  }
  return parseRelease(text);
}

/**
 * The release a control directory holds, without changing anything: a valid
 * DIR/new, else DIR/loaded; null when there is neither.
 */
export function peekControlDir(dir: string): { release: Release; file: string } | { release: null; problems: string[] } {
  const problems: string[] = [];
  for (const name of [NEW_FILE, LOADED_FILE]) {
    const file = join(dir, name);
    if (!existsSync(file)) continue;
    try {
      return { release: readControlFile(file), file };
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message}`);
    }
  }
  return { release: null, problems };
}
