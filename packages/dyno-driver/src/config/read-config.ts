/**
 * `readConfig(path)`: a supervisord-style INI file (and its includes) into a
 * checked ConfigModel, or a ConfigError whose message is the one line
 * `FILE:LINE: problem`. Warnings (keys and sections supervisord has and this
 * project does not run) come back in the model, one per occurrence, each with
 * FILE:LINE.
 */
import { hostname } from 'node:os';
import { ConfigError, type Loc } from './errors.js';
import type { ConfigModel, ConfigWarning, GroupConfig, ProgramConfig } from './model.js';
import { loadFiles, type LoadContext } from './load.js';
import { PROGRAM_KEYS, UNSUPPORTED_PROGRAM_KEYS, readProgram, type ProgramContext } from './program.js';
import { SectionReader } from './section-reader.js';
import { keyValuePairs } from './shlex.js';
import { systemUsers, type UserDb } from './users.js';
import { integer, listOfStrings, processOrGroupName } from './values.js';
import { ValueError } from './errors.js';
import type { RawSection } from './ini.js';

export interface ReadOptions {
  /** Relative paths (the config file, directory=, log files, unix sockets) are resolved against it. */
  cwd?: string;
  /** For %(ENV_X)s; default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  users?: UserDb;
  /** %(host_node_name)s; default: os.hostname(). */
  hostname?: string;
  readText?: (path: string) => string;
}

const IGNORED_SECTIONS: Readonly<Record<string, string>> = {
  unix_http_server: 'einhyrningsins-dyno has its own control socket (--socket)',
  inet_http_server: 'einhyrningsins-dyno has its own control socket (--socket)',
  supervisorctl: 'use einhyrningsinsctl',
};

const IGNORED_PREFIXES: Readonly<Record<string, string>> = {
  'rpcinterface:': 'XML-RPC plugins do not apply',
  'ctlplugin:': 'supervisorctl plugins do not apply',
  'eventlistener:': 'event listeners are not supported',
  'fcgi-program:': 'use [program:x] with socket= (shared socket, rolling restarts)',
};

const GROUP_KEYS = new Set(['programs', 'priority']);

function sectionKind(name: string): 'supervisord' | 'program' | 'group' | 'ignored' | 'unknown' {
  if (name === 'supervisord') return 'supervisord';
  if (name.startsWith('program:')) return 'program';
  if (name.startsWith('group:')) return 'group';
  if (name in IGNORED_SECTIONS || Object.keys(IGNORED_PREFIXES).some((p) => name.startsWith(p))) return 'ignored';
  return 'unknown';
}

const byPriorityName = <T extends { priority: number; name: string }>(a: T, b: T): number =>
  a.priority !== b.priority ? a.priority - b.priority : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/** The NAME of [program:NAME] or [group:NAME], checked as supervisord's process_or_group_name. */
function sectionName(s: RawSection): string {
  try {
    return processOrGroupName(s.name.slice(s.name.indexOf(':') + 1));
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError(s.loc, `[${s.name}]: ${err.message}`);
    throw err;
  }
}

export function readConfig(path: string, opts: ReadOptions = {}): ConfigModel {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const host = opts.hostname ?? hostname();
  const warnings: ConfigWarning[] = [];
  const warn = (loc: Loc, message: string): void => void warnings.push({ loc, message });
  const environ: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) environ[`ENV_${k}`] = v;
  const ctx: LoadContext = { cwd, warn, expansions: (here) => ({ here, host_node_name: host, ...environ }), ...(opts.readText ? { readText: opts.readText } : {}) };
  const loaded = loadFiles(path, ctx);
  const { store } = loaded;

  for (const [key, v] of store.defaults) {
    if (!PROGRAM_KEYS.has(key) && !UNSUPPORTED_PROGRAM_KEYS.has(key) && !GROUP_KEYS.has(key)) {
      warn(v.loc, `[DEFAULT] ${key} is not a [program:x] key; ignored`);
    }
  }

  // [supervisord]: environment= applies under every program (and to ENV_*); the rest is the driver's command line.
  let globalEnv: Record<string, string> = {};
  const sections = [...store.sections.values()];
  const programSections = new Map<string, RawSection>();
  const groupSections: RawSection[] = [];
  for (const s of sections) {
    const kind = sectionKind(s.name);
    const r = new SectionReader(store, s);
    if (kind === 'supervisord') {
      globalEnv = r.get('environment', '', { here: loaded.here, host_node_name: host, ...environ }, keyValuePairs);
      for (const [k, v] of Object.entries(globalEnv)) environ[`ENV_${k}`] = v;
      const others = r.ownKeys().filter(([k]) => k !== 'environment');
      if (others.length > 0) {
        warn(others[0]![1].loc, `[supervisord] ${others.map(([k]) => k).join(', ')}: ignored (only environment= is used; the rest is einhyrningsins-dyno's command line)`);
      }
    } else if (kind === 'ignored') {
      const why = IGNORED_SECTIONS[s.name] ?? Object.entries(IGNORED_PREFIXES).find(([p]) => s.name.startsWith(p))![1];
      warn(s.loc, `[${s.name}] is not supported and is ignored: ${why}`);
    } else if (kind === 'unknown') {
      throw new ConfigError(s.loc, `unknown section type [${s.name}] (known: program:NAME, group:NAME, include, supervisord)`);
    } else {
      const name = sectionName(s);
      if (kind === 'program') {
        programSections.set(name, s);
        for (const [key, v] of r.ownKeys()) {
          if (UNSUPPORTED_PROGRAM_KEYS.has(key)) warn(v.loc, `${key} is not supported; ignored`);
          else if (!PROGRAM_KEYS.has(key)) warn(v.loc, `unknown key ${key} in [${s.name}]; ignored`);
        }
      } else {
        groupSections.push(s);
        for (const [key, v] of r.ownKeys()) if (!GROUP_KEYS.has(key)) warn(v.loc, `unknown key ${key} in [${s.name}]; ignored`);
      }
    }
  }

  const pctx: ProgramContext = { cwd, here: loaded.here, hostname: host, environ, globalEnv, users: opts.users ?? systemUsers(), warn };
  const groups: GroupConfig[] = [];
  const programs: ProgramConfig[] = [];
  const memberOf = new Map<string, string>();
  const groupExp = { here: loaded.here, ...environ };
  for (const s of groupSections) {
    const r = new SectionReader(store, s);
    const name = sectionName(s);
    const members = r.get('programs', '', groupExp, listOfStrings);
    const priority = r.get('priority', '999', groupExp, (v) => integer(v));
    for (const p of members) {
      if (!programSections.has(p)) {
        const fcgi = store.sections.has(`fcgi-program:${p}`);
        throw new ConfigError(r.loc('programs'), `[${s.name}] names ${fcgi ? 'an fcgi-program, which is not supported:' : 'unknown program'} ${p}`);
      }
      const other = memberOf.get(p);
      if (other !== undefined) {
        throw new ConfigError(r.loc('programs'), other === name ? `[${s.name}] lists ${p} twice` : `program ${p} is in two groups: ${other} and ${name}`);
      }
      memberOf.set(p, name);
    }
    groups.push({ name, priority, programs: members, explicit: true, loc: s.loc });
  }
  for (const [name, s] of programSections) {
    const group = memberOf.get(name);
    const program = readProgram(new SectionReader(store, s), name, group ?? name, pctx);
    programs.push(program);
    if (group === undefined) {
      const clash = groups.find((g) => g.name === name);
      if (clash) throw new ConfigError(clash.loc, `group name ${name} is also the name of [program:${name}], which is not in it`);
      groups.push({ name, priority: program.priority, programs: [name], explicit: false, loc: s.loc });
    }
  }
  for (const g of groups.filter((x) => x.explicit)) {
    const owner = new Map<string, string>();
    for (const p of programs.filter((x) => x.group === g.name)) {
      for (const proc of p.processes) {
        const first = owner.get(proc.name);
        if (first !== undefined) {
          throw new ConfigError(p.loc, `process name ${proc.name} of [program:${p.name}] is also a process of [program:${first}] in group ${g.name}`);
        }
        owner.set(proc.name, p.name);
      }
    }
  }
  groups.sort(byPriorityName);
  const order = new Map(groups.map((g, i) => [g.name, i]));
  programs.sort((a, b) => (order.get(a.group) as number) - (order.get(b.group) as number) || byPriorityName(a, b));
  return { files: loaded.files, programs, groups, warnings };
}
