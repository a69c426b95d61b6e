/**
 * hsup's control directory: a JSON release written to DIR/new is checked,
 * then renamed to DIR/loaded and run; a bad one is renamed to DIR/rejected,
 * its reason written to DIR/last_error (hsup's names).
 *
 *   {"Version": 3, "Env": {"K": "v"}, "Slug": "app.tgz", "Stack": "cedar-14",
 *    "Processes": [{"Type": "web", "Args": ["./web", "-x"], "Quantity": 2}]}
 */
import { watch, existsSync, lstatSync, renameSync, rmSync, unlinkSync, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { TYPE_NAME } from './procfile.js';
import { MAX_QUANTITY } from './formation.js';
import { RELEASE_TYPE, type ProcessDef, type Release } from './release.js';

export const NEW_FILE = 'new';
export const LOADED_FILE = 'loaded';
/** hsup's names: a file that fails is renamed to `rejected`, the reason written to `last_error`. */
export const REJECTED_FILE = 'rejected';
export const LAST_ERROR_FILE = 'last_error';
/** Larger control files are refused unread. */
export const MAX_CONTROL_FILE_BYTES = 4 * 1024 * 1024;

export class ReleaseError extends Error {
  override name = 'ReleaseError';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * `obj[key]` matched case-insensitively, as Go's encoding/json (hsup's
 * parser) does: `version`, `VERSION` and `Version` are one key; the last one
 * in the object wins.
 */
function field(obj: Record<string, unknown>, key: string): unknown {
  let out: unknown = undefined;
  const k = key.toLowerCase();
  for (const [name, v] of Object.entries(obj)) if (name.toLowerCase() === k) out = v;
  return out;
}

function optionalString(obj: Record<string, unknown>, key: string): string {
  const v = field(obj, key);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new ReleaseError(`${key} must be a string, got ${describe(v)}`);
  if (v.includes('\0')) throw new ReleaseError(`${key} must not contain NUL`);
  return v;
}

/**
 * A process's argv as hsup's simple driver runs it: one element is a shell
 * command line (`bash -c ARGS[0]`, what hsup's API poller writes); more are
 * the program and its arguments.
 */
export function processArgv(args: readonly string[]): string[] {
  return args.length === 1 ? ['bash', '-c', args[0] as string] : [...args];
}

/**
 * Check a parsed control file as hsup reads it (keys in any case; a missing
 * Version is 0, Env none, Processes none, Quantity 0); returns the release or
 * throws a ReleaseError saying what is wrong.
 */
export function validateRelease(value: unknown): Release {
  if (!isObject(value)) throw new ReleaseError(`the release must be a JSON object, got ${describe(value)}`);
  const version = field(value, 'Version') ?? 0;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw new ReleaseError(`Version must be an integer >= 0, got ${describe(version)}`);
  }
  const env: Record<string, string> = {};
  const rawEnv = field(value, 'Env');
  if (rawEnv !== undefined && rawEnv !== null) {
    if (!isObject(rawEnv)) throw new ReleaseError(`Env must be an object of strings, got ${describe(rawEnv)}`);
    for (const [k, v] of Object.entries(rawEnv)) {
      if (k === '' || k.includes('=') || k.includes('\0')) throw new ReleaseError(`Env has an invalid variable name ${describe(k)}`);
      if (typeof v !== 'string') throw new ReleaseError(`Env.${k} must be a string, got ${describe(v)}`);
      if (v.includes('\0')) throw new ReleaseError(`Env.${k} must not contain NUL`);
      env[k] = v;
    }
  }
  const slug = optionalString(value, 'Slug');
  const stack = optionalString(value, 'Stack');
  const procs = field(value, 'Processes') ?? [];
  if (!Array.isArray(procs)) throw new ReleaseError(`Processes must be an array, got ${describe(procs)}`);
  const seen = new Set<string>();
  let releaseArgs: string[] | null = null;
  const processes: ProcessDef[] = [];
  procs.forEach((p: unknown, i) => {
    const at = `Processes[${i}]`;
    if (!isObject(p)) throw new ReleaseError(`${at} must be an object, got ${describe(p)}`);
    const type = field(p, 'Type');
    if (typeof type !== 'string' || !TYPE_NAME.test(type)) {
      throw new ReleaseError(`${at}.Type must be a name of letters, digits, '_' and '-', got ${describe(type)}`);
    }
    if (seen.has(type)) throw new ReleaseError(`${at}.Type '${type}' appears more than once`);
    seen.add(type);
    const args = field(p, 'Args');
    if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === 'string' && !a.includes('\0'))) {
      throw new ReleaseError(`${at}.Args (${type}) must be a non-empty array of strings, got ${describe(args)}`);
    }
    if (args[0] === '') throw new ReleaseError(`${at}.Args (${type}) must start with a program, got ""`);
    const q = field(p, 'Quantity') ?? 0;
    if (typeof q !== 'number' || !Number.isInteger(q) || q < 0 || q > MAX_QUANTITY) {
      throw new ReleaseError(`${at}.Quantity (${type}) must be an integer from 0 to ${MAX_QUANTITY}, got ${describe(q)}`);
    }
    const argv = processArgv(args as string[]);
    if (type === RELEASE_TYPE) releaseArgs = argv;
    else processes.push({ type, args: argv, quantity: q });
  });
  return { version, releaseArgs, env, slug, stack, processes };
}

/**
 * Why JSON.parse failed, without its quote of the text (V8 copies the first bytes of the
 * input into the message, and the log is no place for a file's content): where, not what.
 */
function jsonError(err: Error): string {
  if (/^Unexpected end of JSON input/.test(err.message)) return 'invalid JSON: it ends too early';
  const at = /at position (\d+)/.exec(err.message);
  return at ? `invalid JSON at byte ${at[1]}` : 'invalid JSON';
}

/** Parse and check the text of a control file. */
export function parseRelease(text: string): Release {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ReleaseError(jsonError(err as Error));
  }
  return validateRelease(value);
}

/**
 * Calls `onChange` when DIR/new may have appeared: fs.watch on the directory,
 * and a poll every `pollMs` for file systems where watching misses events.
 */
export class ControlDirWatcher {
  private watcher: FSWatcher | null = null;
  private readonly poll: NodeJS.Timeout;

  constructor(
    readonly dir: string,
    onChange: () => void,
    onWarning: (message: string) => void,
    pollMs = 1000,
  ) {
    try {
      this.watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || name === NEW_FILE) onChange();
      });
      this.watcher.on('error', (err) => {
        onWarning(`watching ${dir} failed (${err.message}); polling only`);
        this.watcher?.close();
        this.watcher = null;
      });
    } catch (err) {
      onWarning(`cannot watch ${dir} (${(err as Error).message}); polling only`);
    }
    this.poll = setInterval(() => {
      if (existsSync(join(dir, NEW_FILE))) onChange();
    }, pollMs);
  }

  close(): void {
    clearInterval(this.poll);
    this.watcher?.close();
    this.watcher = null;
  }
}

/**
 * Move a rejected DIR/new to DIR/rejected, whatever either is: what an earlier rejection
 * left there (a directory that was `new`, a link) is removed first, without following
 * a link, so that rename() cannot fail with EISDIR or ENOTEMPTY and leave `new` in place.
 */
export function setAside(file: string, rejected: string): void {
  let st;
  try {
    st = lstatSync(rejected);
  } catch {
    st = null;
  }
  if (st?.isDirectory()) rmSync(rejected, { recursive: true, force: true });
  else if (st) unlinkSync(rejected);
  renameSync(file, rejected);
}

/**
 * DIR/last_error: the reason, replacing the one before (read-only, as hsup writes it).
 * Written aside and renamed over, so a reader never finds it missing or half written.
 */
export function writeLastError(path: string, reason: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    unlinkSync(tmp);
  } catch {
    /* none left over */
  }
  writeFileSync(tmp, `${reason}\n`, { mode: 0o400, flag: 'wx' });
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
    throw err;
  }
}

/** The file operations of a rejection (a test seam). */
export interface RejectOps {
  writeLastError(path: string, reason: string): void;
  setAside(file: string, rejected: string): void;
}

/**
 * Reject DIR/new hsup's way: the reason goes to DIR/last_error FIRST, then the file is
 * moved to DIR/rejected, so whoever sees `rejected` appear reads this rejection's reason
 * (a deploy script waits for `rejected`, then reads `last_error`). Returns where things
 * went, for the log line, and whether `new` could not be moved (it is then skipped
 * until it changes).
 */
export function rejectRelease(dir: string, file: string, reason: string, ops: RejectOps = { writeLastError, setAside }): { where: string; stuck: boolean } {
  let where = `moved to ${REJECTED_FILE}, reason in ${LAST_ERROR_FILE}`;
  let stuck = false;
  let lastError = '';
  try {
    ops.writeLastError(join(dir, LAST_ERROR_FILE), reason);
  } catch (err) {
    lastError = ` (cannot write ${LAST_ERROR_FILE}: ${(err as Error).message})`;
  }
  try {
    ops.setAside(file, join(dir, REJECTED_FILE));
  } catch (err) {
    stuck = true;
    where = `could not be moved to ${REJECTED_FILE}: ${(err as Error).message}; reason in ${LAST_ERROR_FILE}`;
  }
  return { where: where + lastError, stuck };
}
