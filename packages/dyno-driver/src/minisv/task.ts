/**
 * One minisv task (its JSON object, in minisv.json's "tasks" or the body of `POST /NAME`)
 * as a program of the runtime (config/model.ts), with minisv's meanings:
 *
 *   command, args   argv (no shell), as Go's exec.Command
 *   workdir         the working directory (default: the config file's, or the driver's)
 *   wait            seconds between SIGTERM and SIGKILL when stopping (stopwaitsecs)
 *   restartPause    seconds before a start after a failed one (doubling, at most 30 s)
 *   startTime       seconds a restarted task's new process must live before the old one
 *                   is stopped (the rolling restart's readiness), and a start must last
 *   oneTime         run only when asked (`GET /NAME/run`), to its end, never restarted
 *
 * and this project's own: env (an object of strings over the driver's environment),
 * socket / handoff / ack (as the INI keys socket=, handoff=, ack=, so "manual:SECONDS" for
 * an ACK deadline of its own), fetch / fetchInterval / fetchMaxSize (as fetch=,
 * fetch_interval=, fetch_max_size=: a number or a string) and watch (a path or an array
 * of paths, as watch=). Keys are matched case-insensitively, as Go's encoding/json does.
 */
import { ValueError } from '../config/errors.js';
import type { FetchConfig, LogConfig, ProcessConfig, ProgramConfig } from '../config/model.js';
import { FETCH_INTERVAL_SEC, FETCH_MAX_BYTES } from '../config/program.js';
import { DEFAULT_ACK, parseAck, parseFetch, parseFetchInterval, parseFetchMaxSize, parseHandoff, parseSocket, watchPaths } from '../config/project-keys.js';
import { processOrGroupName } from '../config/values.js';
import { jsonKind, type JsonNode } from './json-loc.js';

/** minisv.json's log settings that shape each task's log file. */
export interface MinisvLogSettings {
  /** logdir; null: no files, the driver's own output with the task's name in front. */
  dir: string | null;
  /** logfileprefix */
  prefix: string;
  /** logsuffixdate (Go layout) */
  suffixDate: string | null;
  /** logdate (Go layout) */
  linePrefix: string | null;
}

export const NO_LOG_FILES: MinisvLogSettings = { dir: null, prefix: '', suffixDate: null, linePrefix: null };

/** A problem with one field, at its line (0: not known). */
export class TaskError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

const KNOWN = [
  'command', 'args', 'workdir', 'wait', 'restartPause', 'startTime', 'oneTime', 'env', 'socket', 'handoff', 'ack',
  'fetch', 'fetchInterval', 'fetchMaxSize', 'watch',
] as const;
type Field = (typeof KNOWN)[number];

/** Seconds as minisv's int fields: whole, not negative, at most a day (a typo of ms would wait for years). */
const MAX_SECONDS = 86_400;
/** What a task that never gives up means in the engine's terms (startretries). */
const FOREVER = 1_000_000_000;
/** stopwaitsecs when `wait` is not given (minisv's zero value would SIGKILL at once). */
export const DEFAULT_WAIT = 10;

/** The task's name as a URL or a config key gives it: a program name (no ':', no spaces, no '/'). */
export function taskName(name: string): string {
  if (name.includes('/')) throw new ValueError(`invalid task name ${JSON.stringify(name)}: '/' is not allowed`);
  try {
    return processOrGroupName(name);
  } catch (err) {
    throw new ValueError(`invalid task name ${JSON.stringify(name)}: ${(err as Error).message}`);
  }
}

export interface TaskOptions {
  /** Where a relative workdir, log dir and unix socket are resolved, and the default workdir. */
  cwd: string;
  logs: MinisvLogSettings;
  /** Unknown keys: warned (config file) or refused (a request). */
  unknown: 'warn' | 'error';
  warn: (line: number, message: string) => void;
}

/** The log file of a task (minisv: LOGDIR/PREFIXNAME.log). */
export function taskLog(name: string, logs: MinisvLogSettings): LogConfig {
  if (logs.dir === null) return { target: { kind: 'auto' }, maxBytes: 0, backups: 0 };
  return {
    target: { kind: 'file', path: `${logs.dir.replace(/\/+$/, '')}/${logs.prefix}${name}.log` },
    maxBytes: 0,
    backups: 0,
    ...(logs.suffixDate ? { dateSuffix: logs.suffixDate } : {}),
    ...(logs.linePrefix ? { linePrefix: logs.linePrefix } : {}),
  };
}

export function readTask(name: string, node: JsonNode, opts: TaskOptions): ProgramConfig {
  if (node.kind !== 'object') throw new TaskError(node.line, `task ${name}: expected an object, got ${jsonKind(node)}`);
  const fields = new Map<Field, JsonNode>();
  for (const e of node.entries) {
    const k = KNOWN.find((f) => f === e.key) ?? KNOWN.find((f) => f.toLowerCase() === e.key.toLowerCase());
    if (!k) {
      const msg = `task ${name}: unknown field ${JSON.stringify(e.key)} (known: ${KNOWN.join(', ')})`;
      if (opts.unknown === 'error') throw new TaskError(e.keyLine, msg);
      opts.warn(e.keyLine, `${msg}; ignored`);
      continue;
    }
    // Go's decoder: the last of repeated keys wins.
    fields.set(k, e.value);
  }
  const at = (f: Field) => fields.get(f)?.line ?? node.line;
  const bad = (f: Field, what: string): never => {
    throw new TaskError(at(f), `task ${name}: field ${JSON.stringify(f)}: ${what}`);
  };
  const str = (f: Field): string | null => {
    const v = fields.get(f);
    if (!v || v.kind === 'null') return null;
    if (v.kind !== 'string') return bad(f, `expected a string, got ${jsonKind(v)}`);
    if (v.value.includes('\0')) return bad(f, 'contains NUL');
    return v.value;
  };
  const seconds = (f: Field): number | null => {
    const v = fields.get(f);
    if (!v || v.kind === 'null') return null;
    if (v.kind !== 'number' || !Number.isInteger(v.value)) return bad(f, `expected a whole number of seconds, got ${v.kind === 'number' ? v.text : jsonKind(v)}`);
    if (v.value < 0 || v.value > MAX_SECONDS) return bad(f, `expected 0..${MAX_SECONDS} seconds, got ${v.text}`);
    return v.value;
  };
  const command = str('command');
  if (command === null || command === '') {
    throw new TaskError(fields.get('command')?.line ?? node.line, `task ${name}: "command" is required (the program to run, e.g. "/usr/bin/redis-server")`);
  }
  const args: string[] = [];
  const a = fields.get('args');
  if (a && a.kind !== 'null') {
    if (a.kind !== 'array') bad('args', `expected an array of strings, got ${jsonKind(a)}`);
    else
      for (const item of a.items) {
        if (item.kind !== 'string') bad('args', `expected an array of strings, one is ${jsonKind(item)}`);
        else if (item.value.includes('\0')) bad('args', 'an argument contains NUL');
        else args.push(item.value);
      }
  }
  const env: Record<string, string> = {};
  const e = fields.get('env');
  if (e && e.kind !== 'null') {
    if (e.kind !== 'object') bad('env', `expected an object of strings, got ${jsonKind(e)}`);
    else
      for (const x of e.entries) {
        if (x.value.kind !== 'string') bad('env', `${x.key}: expected a string, got ${jsonKind(x.value)}`);
        else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(x.key)) bad('env', `${JSON.stringify(x.key)} is not a variable name`);
        else if (x.value.value.includes('\0')) bad('env', `${x.key}: contains NUL`);
        else env[x.key] = x.value.value;
      }
  }
  const o = fields.get('oneTime');
  if (o && o.kind !== 'boolean' && o.kind !== 'null') bad('oneTime', `expected true or false, got ${jsonKind(o)}`);
  const oneTime = o?.kind === 'boolean' && o.value;
  const workdir = str('workdir');
  const wait = seconds('wait') ?? DEFAULT_WAIT;
  const restartPause = seconds('restartPause');
  const startTime = seconds('startTime') ?? 0;
  const project = <T>(f: Field, parse: (v: string) => T): T | null => {
    const v = str(f);
    if (v === null) return null;
    try {
      return parse(v);
    } catch (err) {
      return bad(f, (err as Error).message);
    }
  };
  const socket = project('socket', (v) => parseSocket(v, opts.cwd));
  const handoff = project('handoff', parseHandoff) ?? (socket ? ['einhorn' as const] : []);
  if (handoff.length && !socket) bad('handoff', 'needs a "socket" to hand off');
  if (handoff.includes('port') && socket?.kind === 'unix') bad('handoff', `'port' (PORT=number) needs a tcp:// socket, not ${socket.text}`);
  const ack = project('ack', parseAck) ?? DEFAULT_ACK;
  if (oneTime && socket) bad('socket', 'a one-time task cannot have a socket (it is not a server)');
  const directory = workdir === null ? null : workdir.startsWith('/') ? workdir : `${opts.cwd.replace(/\/+$/, '')}/${workdir}`;
  // fetch, fetchInterval, fetchMaxSize: as fetch=, fetch_interval=, fetch_max_size= (a JSON number is read as its text).
  const numberOrString = <T>(f: Field, parse: (v: string) => T): T | null => {
    const v = fields.get(f);
    if (!v || v.kind === 'null') return null;
    if (v.kind !== 'number' && v.kind !== 'string') return bad(f, `expected a number or a string, got ${jsonKind(v)}`);
    try {
      return parse(v.kind === 'number' ? v.text : v.value);
    } catch (err) {
      return bad(f, (err as Error).message);
    }
  };
  const fetchUrl = project('fetch', parseFetch);
  const fetchInterval = numberOrString('fetchInterval', parseFetchInterval);
  const fetchMaxSize = numberOrString('fetchMaxSize', parseFetchMaxSize);
  for (const [f, v] of [['fetchInterval', fetchInterval], ['fetchMaxSize', fetchMaxSize]] as const) {
    if (v !== null && fetchUrl === null) bad(f, 'only means something with "fetch"');
  }
  const fetch: FetchConfig | null =
    fetchUrl === null ? null : { url: fetchUrl, intervalSec: fetchInterval ?? FETCH_INTERVAL_SEC, maxBytes: fetchMaxSize ?? FETCH_MAX_BYTES };
  // watch: a path or an array of paths; a relative one against the config file's directory (as workdir and a unix socket).
  let watch: string[] = [];
  const wn = fields.get('watch');
  if (wn && wn.kind !== 'null') {
    const items = wn.kind === 'array' ? wn.items : [wn];
    const paths = items.map((item) => {
      if (item.kind !== 'string') return bad('watch', `expected a path or an array of paths, ${wn.kind === 'array' ? 'one is' : 'got'} ${jsonKind(item)}`);
      if (item.value === '') return bad('watch', 'a path is empty');
      if (item.value.includes('\0')) return bad('watch', 'a path contains NUL');
      return item.value;
    });
    if (paths.length === 0) bad('watch', 'expected a path or an array of paths, got an empty array');
    try {
      watch = watchPaths(paths, opts.cwd);
    } catch (err) {
      bad('watch', (err as Error).message);
    }
  }
  const stdout = taskLog(name, opts.logs);
  const x: ProcessConfig = {
    name,
    program: name,
    group: name,
    processNum: 0,
    command: [command, ...args].map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'"'"'`)}'`)).join(' '),
    argv: [command, ...args],
    directory,
    umask: null,
    priority: 999,
    autostart: !oneTime,
    // minisv restarts a task whatever its exit; a one-time task never.
    autorestart: oneTime ? 'false' : 'true',
    // minisv's restart: the new process first, the old one stopped once it has lived startTime.
    newFirst: true,
    exitcodes: [0],
    startsecs: oneTime ? 0 : startTime,
    startretries: oneTime ? 0 : FOREVER,
    user: null,
    stopsignal: 'TERM',
    stopwaitsecs: wait,
    stopasgroup: false,
    killasgroup: false,
    // minisv writes stdout and stderr into the one file.
    redirectStderr: true,
    stdout,
    stderr: { target: { kind: 'none' }, maxBytes: 0, backups: 0 },
    environment: env,
    socket,
    handoff,
    ack: oneTime ? { kind: 'timer', seconds: 0 } : ack,
    fetch,
    watch,
    ...(oneTime ? { oneTime: true } : {}),
    ...(startTime > 0 && !oneTime ? { minReadySecs: startTime } : {}),
    ...(restartPause !== null ? { respawnDelaySecs: restartPause } : {}),
  };
  return { name, group: name, loc: { file: '', line: node.line }, priority: 999, fetchLoc: fetch ? { file: '', line: at('fetch') } : null, processes: [x] };
}
