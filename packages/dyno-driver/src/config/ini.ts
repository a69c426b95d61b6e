/**
 * The INI dialect of supervisord 4.2.5: Python 3's RawConfigParser as
 * supervisord configures it (`inline_comment_prefixes=(';', '#')`,
 * `strict=False`), ported line by line from configparser._read so that what
 * it accepts, rejects and how it joins lines agree:
 *
 * - a line whose first non-blank character is `;` or `#` is a comment; `;` or
 *   `#` elsewhere starts a comment only after whitespace (`a=b;c` keeps `;c`);
 * - `[header]` takes everything between the first `[` and the last `]`;
 * - `key = value` or `key: value`, split at the first `=` or `:`; keys are
 *   lower-cased, section names are not;
 * - a line indented deeper than its key's line continues the value (joined
 *   with newlines); blank lines inside a value are kept, comment lines are
 *   skipped; trailing blank lines are dropped;
 * - `[DEFAULT]` keys are seen by every section.
 *
 * Where RawConfigParser silently merges a repeated section (in one file or
 * across includes), this reader reports it (see `mergeable`); a key repeated in
 * one section keeps the last value, as supervisord, with a warning.
 */
import { ConfigError, type Loc, type Warn } from './errors.js';

export interface RawValue {
  value: string;
  loc: Loc;
  /** Copied into the section from [DEFAULT] by a `%(here)s` expansion. */
  inherited?: boolean;
}

export interface RawSection {
  name: string;
  loc: Loc;
  keys: Map<string, RawValue>;
}

/** Every section read so far, over all files, in first-seen order. */
export interface IniStore {
  sections: Map<string, RawSection>;
  defaults: Map<string, RawValue>;
}

export const DEFAULT_SECTION = 'DEFAULT';

export function newStore(): IniStore {
  return { sections: new Map(), defaults: new Map() };
}

/** Sections supervisord allows to be merged silently; for the others a second header is an error. */
function mergeable(name: string): boolean {
  return !/^(program|group|fcgi-program|eventlistener):/.test(name);
}

/** Python's str.isspace for one character (what configparser tests before an inline comment). */
const isSpace = (ch: string | undefined): boolean => ch !== undefined && /^\s$/u.test(ch);

/** Where the comment on `line` starts, or null: configparser's inline and full-line rules. */
export function commentStart(line: string): number | null {
  const trimmed = line.trim();
  if (trimmed.startsWith('#') || trimmed.startsWith(';')) return 0;
  let best: number | null = null;
  for (const prefix of [';', '#']) {
    let i = line.indexOf(prefix);
    while (i !== -1) {
      if (i === 0 || isSpace(line[i - 1])) {
        if (best === null || i < best) best = i;
        break;
      }
      i = line.indexOf(prefix, i + 1);
    }
  }
  return best;
}

const SECTION_RE = /^\[(.+)\]/;
const OPTION_RE = /^(.*?)\s*([=:])\s*(.*)$/s;

/**
 * Read one file's text into `store`; returns the file's own [include] section
 * (each file's includes are its own, resolved relative to it), if any.
 */
export function readIni(store: IniStore, text: string, file: string, warn: Warn): RawSection | null {
  // Python reads text files with universal newlines.
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let include: RawSection | null = null;
  let cur: Map<string, RawValue> | null = null;
  let curName: string | null = null;
  let opt: { key: string; parts: string[]; loc: Loc } | null = null;
  let indentLevel = 0;
  const seenHere = new Set<string>();
  const finish = (): void => {
    if (opt && cur) cur.set(opt.key, { value: opt.parts.join('\n').trimEnd(), loc: opt.loc });
    opt = null;
  };
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n] as string;
    const loc: Loc = { file, line: n + 1 };
    const cs = commentStart(line);
    const value = (cs === null ? line : line.slice(0, cs)).trim();
    if (value === '') {
      // empty_lines_in_values: a blank (comment-free) line is part of the value
      if (cs === null && opt) opt.parts.push('');
      continue;
    }
    const indent = line.search(/\S/);
    if (opt && indent > indentLevel) {
      opt.parts.push(value);
      continue;
    }
    finish();
    indentLevel = indent;
    const header = SECTION_RE.exec(value);
    if (header) {
      const name = header[1] as string;
      curName = name;
      if (name === DEFAULT_SECTION) {
        cur = store.defaults;
      } else if (name === 'include') {
        // each file's [include] is its own (supervisord reads only the main file's)
        if (!include) include = { name, loc, keys: new Map() };
        cur = include.keys;
      } else {
        const existing = store.sections.get(name);
        if (existing) {
          if (!mergeable(name)) {
            const first = existing.loc;
            throw new ConfigError(loc, `duplicate section [${name}] (first at ${first.file}:${first.line})`);
          }
          cur = existing.keys;
        } else {
          const section: RawSection = { name, loc, keys: new Map() };
          store.sections.set(name, section);
          cur = section.keys;
        }
      }
      seenHere.clear();
      continue;
    }
    if (cur === null) throw new ConfigError(loc, `a key before any [section] header: ${JSON.stringify(line.trim())}`);
    const m = OPTION_RE.exec(value);
    if (!m || (m[1] as string) === '') {
      throw new ConfigError(loc, `not a section header, a 'key = value' line or a continuation: ${JSON.stringify(line.trim())}`);
    }
    const key = (m[1] as string).trimEnd().toLowerCase();
    if (seenHere.has(key)) warn(loc, `${key} is set twice in [${curName}]; the last one is used (as supervisord)`);
    seenHere.add(key);
    opt = { key, parts: [(m[3] as string).trim()], loc };
  }
  finish();
  return include;
}

/** configparser's `get(section, key)`: the section's own key, else [DEFAULT]'s. */
export function lookup(store: IniStore, section: RawSection, key: string): RawValue | undefined {
  return section.keys.get(key) ?? store.defaults.get(key);
}

/**
 * supervisord's `expand_here(dir)`, run after the main file and after each
 * included file: every value (a section's own or inherited from [DEFAULT])
 * containing `%(here)s` gets `dir` in its place, written into the section.
 */
export function expandHere(store: IniStore, here: string, extra: RawSection | null): void {
  const all = [...store.sections.values(), ...(extra ? [extra] : [])];
  for (const section of all) {
    const keys = new Set([...store.defaults.keys(), ...section.keys.keys()]);
    for (const key of keys) {
      const own = section.keys.get(key);
      const raw = own ?? store.defaults.get(key);
      if (!raw || !raw.value.includes('%(here)s')) continue;
      section.keys.set(key, {
        value: raw.value.split('%(here)s').join(here),
        loc: raw.loc,
        ...(own === undefined || own.inherited ? { inherited: true } : {}),
      });
    }
  }
}
