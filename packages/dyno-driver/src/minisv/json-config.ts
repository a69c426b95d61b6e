/**
 * minisv's JSON config (minisv.json) as a config model (config/model.ts): each task a
 * program (task.ts), the log settings shaping each task's log file, `logreopen` as an
 * interval, `http` as where the API would listen. Errors are one line FILE:LINE, as the
 * INI reader's; unknown keys are warned about once each, naming the key.
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { ConfigError, ValueError, type Loc } from '../config/errors.js';
import type { ConfigModel, ConfigWarning, ProgramConfig } from '../config/model.js';
import { parseGoDuration } from './go-time.js';
import { JsonSyntaxError, jsonKind, parseJsonLoc, type JsonNode } from './json-loc.js';
import { TaskError, readTask, taskName, type MinisvLogSettings } from './task.js';

export interface MinisvConfig {
  model: ConfigModel;
  logs: MinisvLogSettings;
  /** logreopen: reopen every task's log file this often (ms, aligned as minisv); null: never. */
  reopenEveryMs: number | null;
  /** http.address / http.port: where minisv serves its API; here only with --http-token-file. */
  http: { address: string; port: number; loc: Loc } | null;
}

/** Keys of minisv's Config this project does not run: warned about, ignored. */
const UNSUPPORTED: Record<string, string> = {
  logbufferlines: 'the in-memory log buffer is not kept (use `einhyrningsinsctl tail NAME`)',
  graylog: 'GELF output is not supported (send the log files with a shipper)',
  limits: 'rlimits are not set by the driver (set them in the unit or with prlimit)',
};

/** Whether a --config file is minisv's JSON rather than a supervisord INI file. */
export function isMinisvConfig(file: string): boolean {
  return file.toLowerCase().endsWith('.json');
}

export function readMinisvConfig(file: string, cwd: string): MinisvConfig {
  const shown = file.startsWith('/') && relative(cwd, file) && !relative(cwd, file).startsWith('..') ? relative(cwd, file) : file;
  let text: string;
  try {
    text = readFileSync(resolve(cwd, file), 'utf8');
  } catch (err) {
    throw new ConfigError({ file: shown, line: 0 }, `cannot read the config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseMinisvConfig(text, shown, dirname(resolve(cwd, file)));
}

/** Pure: the text of minisv.json (`shown` names it in messages; `dir` resolves relative paths). */
export function parseMinisvConfig(text: string, shown: string, dir: string): MinisvConfig {
  const loc = (line: number): Loc => ({ file: shown, line });
  let root: JsonNode;
  try {
    root = parseJsonLoc(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new ConfigError(loc(err.line), `not valid JSON: ${err.message} (column ${err.column})`);
    throw err;
  }
  if (root.kind !== 'object') throw new ConfigError(loc(root.line), `expected a JSON object (minisv's config), got ${jsonKind(root)}`);
  const warnings: ConfigWarning[] = [];
  const warn = (line: number, message: string) => warnings.push({ loc: loc(line), message });
  const top = new Map<string, { node: JsonNode; line: number }>();
  for (const e of root.entries) {
    const k = e.key.toLowerCase();
    if (top.has(k)) warn(e.keyLine, `${JSON.stringify(e.key)} is given twice; the last one counts (as minisv)`);
    top.set(k, { node: e.value, line: e.keyLine });
  }
  const str = (key: string): string | null => {
    const v = top.get(key)?.node;
    if (!v || v.kind === 'null') return null;
    if (v.kind !== 'string') throw new ConfigError(loc(v.line), `${key}: expected a string, got ${jsonKind(v)}`);
    return v.value;
  };
  for (const [k, { line }] of top) {
    if (UNSUPPORTED[k]) warn(line, `${k}: not supported: ${UNSUPPORTED[k]}; ignored`);
    else if (!['logdir', 'logfileprefix', 'logsuffixdate', 'logdate', 'logreopen', 'tasks', 'http'].includes(k)) warn(line, `unknown key ${JSON.stringify(k)}; ignored`);
  }
  const logdir = str('logdir');
  const prefix = str('logfileprefix') ?? '';
  if (prefix.includes('/')) throw new ConfigError(loc(top.get('logfileprefix')?.line ?? 0), `logfileprefix: must not contain '/' (${JSON.stringify(prefix)})`);
  const logs: MinisvLogSettings = {
    dir: logdir === null || logdir === '' ? null : resolve(dir, logdir),
    prefix,
    suffixDate: str('logsuffixdate') || null,
    linePrefix: str('logdate') || null,
  };
  if (logs.suffixDate?.includes('/')) throw new ConfigError(loc(top.get('logsuffixdate')?.line ?? 0), `logsuffixdate: a layout with '/' would name a file in another directory (${JSON.stringify(logs.suffixDate)})`);
  let reopenEveryMs: number | null = null;
  const reopen = str('logreopen');
  if (reopen !== null && reopen !== '') {
    try {
      reopenEveryMs = parseGoDuration(reopen);
    } catch (err) {
      throw new ConfigError(loc(top.get('logreopen')?.line ?? 0), `logreopen: ${(err as Error).message}`);
    }
    if (reopenEveryMs < 1000) throw new ConfigError(loc(top.get('logreopen')?.line ?? 0), `logreopen: ${reopen} is under a second`);
  }
  const programs: ProgramConfig[] = [];
  const tasks = top.get('tasks')?.node;
  if (tasks && tasks.kind !== 'null') {
    if (tasks.kind !== 'object') throw new ConfigError(loc(tasks.line), `tasks: expected an object of tasks by name, got ${jsonKind(tasks)}`);
    const seen = new Map<string, number>();
    for (const e of tasks.entries) {
      let name: string;
      try {
        name = taskName(e.key);
      } catch (err) {
        throw new ConfigError(loc(e.keyLine), `tasks: ${(err as ValueError).message}`);
      }
      if (seen.has(name)) throw new ConfigError(loc(e.keyLine), `tasks: ${name} is defined twice (first at line ${seen.get(name)})`);
      seen.set(name, e.keyLine);
      let p: ProgramConfig;
      try {
        p = readTask(name, e.value, { cwd: dir, logs, unknown: 'warn', warn });
      } catch (err) {
        if (err instanceof TaskError) throw new ConfigError(loc(err.line), err.message);
        throw err;
      }
      programs.push({ ...p, loc: loc(e.keyLine), fetchLoc: p.fetchLoc ? loc(p.fetchLoc.line) : null });
    }
  }
  programs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let http: MinisvConfig['http'] = null;
  const h = top.get('http');
  if (h && h.node.kind !== 'null') {
    if (h.node.kind !== 'object') throw new ConfigError(loc(h.node.line), `http: expected an object, got ${jsonKind(h.node)}`);
    let address = '';
    let port: number | null = null;
    for (const e of h.node.entries) {
      const k = e.key.toLowerCase();
      if (k === 'address') {
        if (e.value.kind !== 'string') throw new ConfigError(loc(e.value.line), `http.address: expected a string, got ${jsonKind(e.value)}`);
        address = e.value.value;
      } else if (k === 'port') {
        if (e.value.kind !== 'number' || !Number.isInteger(e.value.value) || e.value.value < 0 || e.value.value > 65535) {
          throw new ConfigError(loc(e.value.line), `http.port: expected a port number 0..65535, got ${e.value.kind === 'number' ? e.value.text : jsonKind(e.value)}`);
        }
        port = e.value.value;
      } else if (k === 'servercert' || k === 'serverkey' || k === 'clientcert') {
        // Serving in clear what the user asked to be TLS would be worse than not starting.
        if (e.value.kind === 'string' && e.value.value !== '') {
          throw new ConfigError(loc(e.keyLine), `http.${k}: TLS is not supported; serve the API on 127.0.0.1 or a unix socket and put a TLS proxy in front`);
        }
      } else if (k === 'user' || k === 'password') {
        warn(e.keyLine, `http.${k}: basic auth is not supported; the API on TCP needs a bearer token (--http-token-file)`);
      } else warn(e.keyLine, `http: unknown key ${JSON.stringify(e.key)}; ignored`);
    }
    if (port !== null) http = { address: address || '0.0.0.0', port, loc: loc(h.line) };
  }
  const model: ConfigModel = {
    files: [shown],
    programs,
    groups: programs.map((p) => ({ name: p.name, priority: p.priority, programs: [p.name], explicit: false, loc: p.loc })),
    warnings,
  };
  return { model, logs, reopenEveryMs, http };
}
