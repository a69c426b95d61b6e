/**
 * Reading the main file and its includes into one IniStore, as supervisord's
 * read_config does: after each file, `%(here)s` becomes that file's
 * directory; `[include] files=` is a whitespace-separated list of globs
 * relative to the including file, each pattern's matches read in sorted
 * order, a pattern matching nothing a warning.
 *
 * Beyond supervisord 4.2.5, which reads [include] only in the main file
 * (an included file's [include] is silently ignored there), included files may
 * include others; an include cycle is an error naming the chain, and a file
 * reached twice by other paths is read once (a warning).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ConfigError, ValueError, type Loc, type Warn } from './errors.js';
import { expand, type Expansions } from './expand.js';
import { glob } from './glob.js';
import { expandHere, lookup, newStore, readIni, type IniStore, type RawSection } from './ini.js';

/** Larger config files are refused unread. */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;
/** More files than this (a runaway glob) is refused. */
export const MAX_CONFIG_FILES = 1000;

export interface Loaded {
  store: IniStore;
  /** Absolute paths, in reading order. */
  paths: string[];
  /** As shown in messages. */
  files: string[];
  /** The main file's directory: supervisord's `here` for expansions. */
  here: string;
}

export interface LoadContext {
  cwd: string;
  /** `here`, `host_node_name` and ENV_* for include patterns. */
  expansions: (here: string) => Expansions;
  warn: Warn;
  readText?: (path: string) => string;
}

export function displayPath(cwd: string, abs: string): string {
  const rel = relative(cwd, abs);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

function defaultRead(path: string): string {
  const st = statSync(path);
  if (st.isDirectory()) throw new Error('is a directory');
  if (st.size > MAX_CONFIG_FILE_BYTES) throw new Error(`larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
  return readFileSync(path, 'utf8');
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code ?? e.message;
}

export function loadFiles(mainPath: string, ctx: LoadContext): Loaded {
  const store = newStore();
  const read = ctx.readText ?? defaultRead;
  const mainAbs = resolve(ctx.cwd, mainPath);
  const out: Loaded = { store, paths: [], files: [], here: dirname(mainAbs) };
  const visit = (abs: string, chain: string[], from: Loc | null): void => {
    const shown = displayPath(ctx.cwd, abs);
    if (chain.includes(abs)) {
      const names = [...chain.slice(chain.indexOf(abs)), abs].map((p) => displayPath(ctx.cwd, p));
      throw new ConfigError(from as Loc, `include cycle: ${names.join(' -> ')}`);
    }
    if (out.paths.includes(abs)) {
      ctx.warn(from as Loc, `${shown} is already included; not read twice`);
      return;
    }
    if (out.paths.length >= MAX_CONFIG_FILES) throw new ConfigError(from as Loc, `more than ${MAX_CONFIG_FILES} config files`);
    let text: string;
    try {
      text = read(abs);
    } catch (err) {
      if (from) throw new ConfigError(from, `cannot read included file ${shown}: ${reason(err)}`);
      throw new ConfigError({ file: shown, line: 0 }, `cannot read the config file: ${reason(err)}`);
    }
    if (text.includes('\0')) throw new ConfigError({ file: shown, line: 0 }, 'not a text file (contains NUL)');
    out.paths.push(abs);
    out.files.push(shown);
    const here = dirname(abs);
    const inc = readIni(store, text, shown, ctx.warn);
    expandHere(store, here, inc);
    if (inc) includes(inc, here, [...chain, abs]);
  };
  const includes = (inc: RawSection, here: string, chain: string[]): void => {
    const files = lookup(store, inc, 'files');
    if (!files) throw new ConfigError(inc.loc, '[include] section has no files= setting');
    let patterns: string[];
    try {
      patterns = expand(files.value, ctx.expansions(here), 'include.files').split(/\s+/).filter((p) => p !== '');
    } catch (err) {
      if (err instanceof ValueError) throw new ConfigError(files.loc, `files: ${err.message}`);
      throw err;
    }
    for (const pattern of patterns) {
      const full = isAbsolute(pattern) ? pattern : join(here, pattern);
      const matches = glob(full).sort();
      if (matches.length === 0) {
        ctx.warn(files.loc, `no file matches include ${JSON.stringify(pattern)}`);
        continue;
      }
      for (const m of matches) visit(m, chain, files.loc);
    }
  };
  visit(mainAbs, [], null);
  return out;
}
