/**
 * One [program:x] section into its processes, in the order and with the
 * defaults of supervisord's `_processes_from_section` (so the first bad key
 * reported is the one supervisord would report), plus this project's keys.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ConfigError, ValueError, type Warn } from './errors.js';
import { expand } from './expand.js';
import type { LogConfig, LogTarget, ProcessConfig, ProgramConfig } from './model.js';
import { DEFAULT_ACK, parseAck, parseFetch, parseFetchInterval, parseFetchMaxSize, parseHandoff, parseSocket, parseWatch } from './project-keys.js';
import type { FetchConfig } from './model.js';
import type { SectionReader } from './section-reader.js';
import { keyValuePairs, posixSplit } from './shlex.js';
import type { UserDb } from './users.js';
import {
  autoRestart,
  boolean,
  byteSize,
  exitCodes,
  integer,
  octal,
  processOrGroupName,
  pythonInt,
  signalName,
} from './values.js';

export interface ProgramContext {
  cwd: string;
  here: string;
  hostname: string;
  /** ENV_* of the environment and of [supervisord] environment=. */
  environ: Record<string, string>;
  /** [supervisord] environment=, under every program's own. */
  globalEnv: Record<string, string>;
  users: UserDb;
  warn: Warn;
}

/** The master's --fetch-interval and --fetch-max-size defaults. */
export const FETCH_INTERVAL_SEC = 60;
export const FETCH_MAX_BYTES = 256 * 1024 * 1024;

/** As a Procfile quantity (supervisord has no bound: numprocs=10**9 would exhaust memory here). */
export const MAX_NUMPROCS = 10_000;

/** Per-program keys this project runs. */
export const PROGRAM_KEYS = new Set([
  'command', 'process_name', 'numprocs', 'numprocs_start', 'priority', 'autostart', 'autorestart',
  'startsecs', 'startretries', 'exitcodes', 'stopsignal', 'stopwaitsecs', 'stopasgroup', 'killasgroup',
  'user', 'redirect_stderr', 'stdout_logfile', 'stdout_logfile_maxbytes', 'stdout_logfile_backups',
  'stderr_logfile', 'stderr_logfile_maxbytes', 'stderr_logfile_backups', 'environment', 'directory',
  'umask', 'socket', 'handoff', 'ack', 'fetch', 'fetch_interval', 'fetch_max_size', 'watch', 'onetime',
]);

/** supervisord's other [program:x] keys: valid there, warned about and ignored here. */
export const UNSUPPORTED_PROGRAM_KEYS = new Set([
  'stdout_capture_maxbytes', 'stdout_events_enabled', 'stdout_syslog',
  'stderr_capture_maxbytes', 'stderr_events_enabled', 'stderr_syslog', 'serverurl',
]);

/** `existing_dirpath`: ~ expanded; the directory part must exist. Relative to the cwd, as supervisord. */
function existingDirpath(v: string, cwd: string): string {
  const nv = v === '~' || v.startsWith('~/') ? homedir() + v.slice(1) : v;
  const abs = resolve(cwd, nv);
  if (nv.includes('/')) {
    let ok = false;
    try {
      ok = statSync(dirname(abs)).isDirectory();
    } catch {
      ok = false;
    }
    if (!ok) throw new ValueError(`the directory named as part of the path ${v} does not exist`);
  }
  return abs;
}

/** `logfile_name`: none/off, auto, syslog (deprecated there) or a path. */
function logTarget(v: string, cwd: string): LogTarget | 'syslog' {
  const low = v.toLowerCase();
  if (low === 'none' || low === 'off') return { kind: 'none' };
  if (low === 'auto') return { kind: 'auto' };
  if (low === 'syslog') return 'syslog';
  return { kind: 'file', path: existingDirpath(v, cwd) };
}

export function readProgram(r: SectionReader, name: string, group: string, ctx: ProgramContext): ProgramConfig {
  const common: Record<string, string | number> = {
    here: ctx.here,
    program_name: name,
    host_node_name: ctx.hostname,
    group_name: group,
    ...ctx.environ,
  };
  const priority = r.get('priority', '999', common, (v) => integer(v));
  const autostart = r.get('autostart', 'true', common, boolean);
  const autorestart = r.get('autorestart', 'unexpected', common, autoRestart);
  const startsecs = r.get('startsecs', '1', common, (v) => integer(v, 0));
  const startretries = r.get('startretries', '3', common, (v) => integer(v, 0));
  const stopsignal = r.get('stopsignal', 'TERM', common, signalName);
  const stopwaitsecs = r.get('stopwaitsecs', '10', common, (v) => integer(v, 0));
  const stopasgroup = r.get('stopasgroup', 'false', common, boolean);
  const killasgroup = r.get('killasgroup', stopasgroup ? 'true' : 'false', common, boolean);
  const exitcodes = r.get('exitcodes', '0', common, exitCodes);
  const redirectStderr = r.get('redirect_stderr', 'false', common, boolean);
  const numprocs = r.get('numprocs', '1', common, (v) => integer(v, 0, MAX_NUMPROCS));
  const numprocsStart = r.get('numprocs_start', '0', common, (v) => integer(v, 0));
  const environmentRaw = r.get('environment', '', null, (v) => v);
  for (const k of ['stdout', 'stderr']) {
    r.get(`${k}_capture_maxbytes`, '0', common, byteSize);
    r.get(`${k}_events_enabled`, 'false', common, boolean);
  }
  const user = r.optional('user', common, (v) => {
    let key = v;
    try {
      key = String(pythonInt(v));
    } catch {
      key = v;
    }
    const entry = ctx.users.user(key);
    if (!entry) throw new ValueError(/^\d+$/.test(key) ? `invalid user id ${v}: no such user` : `invalid user name ${v}: no such user`);
    return entry;
  });
  const umask = r.optional('umask', common, octal);
  const processName = r.get('process_name', '%(program_name)s', null, processOrGroupName);
  if (numprocs > 1 && !processName.includes('%(process_num)')) {
    throw new ConfigError(
      r.loc(r.has('process_name') ? 'process_name' : 'numprocs'),
      `numprocs is ${numprocs}, so process_name must contain %(process_num) (e.g. %(program_name)s_%(process_num)02d)`,
    );
  }
  if (numprocs === 0) ctx.warn(r.loc('numprocs'), `numprocs=0: [${r.section.name}] has no processes`);
  if (stopasgroup && !killasgroup) {
    throw new ConfigError(r.loc('killasgroup'), 'cannot set stopasgroup=true and killasgroup=false');
  }
  const socket = r.optional('socket', common, (v) => parseSocket(v, ctx.cwd));
  const handoff = r.optional('handoff', common, parseHandoff) ?? (socket ? ['einhorn' as const] : []);
  if (handoff.length > 0 && !socket) throw new ConfigError(r.loc('handoff'), 'handoff: needs a socket= to hand off');
  if (handoff.includes('port') && socket?.kind === 'unix') {
    throw new ConfigError(r.loc('handoff'), `handoff: 'port' (PORT=number) needs a tcp:// socket, not ${socket.text}`);
  }
  const ack = r.optional('ack', common, parseAck) ?? DEFAULT_ACK;
  const fetchUrl = r.optional('fetch', common, parseFetch);
  const fetchInterval = r.optional('fetch_interval', common, parseFetchInterval);
  const fetchMaxSize = r.optional('fetch_max_size', common, parseFetchMaxSize);
  for (const [key, v] of [['fetch_interval', fetchInterval], ['fetch_max_size', fetchMaxSize]] as const) {
    if (v !== null && fetchUrl === null) throw new ConfigError(r.loc(key), `${key}: only means something with fetch=URL`);
  }
  const fetch: FetchConfig | null =
    fetchUrl === null ? null : { url: fetchUrl, intervalSec: fetchInterval ?? FETCH_INTERVAL_SEC, maxBytes: fetchMaxSize ?? FETCH_MAX_BYTES };
  const watch = r.optional('watch', common, (v) => parseWatch(v, ctx.cwd)) ?? [];
  // This project's onetime= (minisv's oneTime): run only when asked, to its end, never restarted.
  const oneTime = r.get('onetime', 'false', common, boolean);
  if (oneTime && socket) throw new ConfigError(r.loc('onetime'), 'onetime: a one-time program cannot have a socket= (it is not a server)');
  if (oneTime && autostart && r.has('autostart')) ctx.warn(r.loc('autostart'), 'autostart=true is ignored with onetime=true (a one-time program runs only when asked)');

  const processes: ProcessConfig[] = [];
  const seenDirs = new Set<string>();
  // supervisord mutates one expansions dict across the processes; so does this.
  const exp: Record<string, string | number> = common;
  for (let num = numprocsStart; num < numprocsStart + numprocs; num++) {
    Object.assign(exp, { process_num: num, numprocs }, ctx.environ);
    const environment = r.get('environment', environmentRaw, exp, keyValuePairs);
    for (const [k, v] of Object.entries(environment)) exp[`ENV_${k}`] = v;
    const directory = r.optional('directory', exp, (v) => resolve(ctx.cwd, v));
    if (directory !== null && !seenDirs.has(directory)) {
      seenDirs.add(directory);
      if (!existsSync(directory)) ctx.warn(r.loc('directory'), `directory ${directory} does not exist (yet); a process cannot start without it`);
    }
    const logs: Record<'stdout' | 'stderr', LogConfig> = {} as Record<'stdout' | 'stderr', LogConfig>;
    for (const k of ['stdout', 'stderr'] as const) {
      // supervisord expands the file name twice (saneget, then expand)
      const key = `${k}_logfile`;
      let target = r.get(key, 'auto', exp, (v) => logTarget(expand(v, exp, `${r.section.name}.${key}`), ctx.cwd));
      if (target === 'syslog') {
        if (num === numprocsStart) ctx.warn(r.loc(key), `${key}=syslog is not supported (deprecated in supervisord too); the stream goes where AUTO sends it`);
        target = { kind: 'auto' };
      }
      const backups = r.get(`${k}_logfile_backups`, '10', exp, (v) => integer(v, 0));
      const maxBytes = r.get(`${k}_logfile_maxbytes`, '50MB', exp, byteSize);
      r.get(`${k}_syslog`, 'false', exp, boolean);
      logs[k] = { target, maxBytes, backups };
    }
    if (redirectStderr) {
      if (logs.stderr.target.kind === 'file' && num === numprocsStart) {
        ctx.warn(r.loc('stderr_logfile'), 'redirect_stderr=true, so stderr_logfile is ignored (as supervisord)');
      }
      logs.stderr = { ...logs.stderr, target: { kind: 'none' } };
    }
    const command = r.get('command', '', exp, (v) => v);
    if (!r.has('command')) throw new ConfigError(r.section.loc, `[${r.section.name}] has no command=`);
    const argv = r.check('command', () => posixSplit(command));
    if (argv.length === 0) throw new ConfigError(r.loc('command'), 'command: the command is empty');
    const pname = r.check('process_name', () => processOrGroupName(expand(processName, exp, `${r.section.name}.process_name`)));
    processes.push({
      name: pname, program: name, group, processNum: num, command, argv, directory, umask, priority, autostart,
      autorestart, exitcodes, startsecs, startretries, user, stopsignal, stopwaitsecs, stopasgroup, killasgroup,
      redirectStderr, stdout: logs.stdout, stderr: logs.stderr,
      environment: { ...ctx.globalEnv, ...environment }, socket, handoff, ack, fetch, watch,
      ...(oneTime ? { oneTime: true } : {}),
    });
  }
  processes.sort((a, b) => (a.priority !== b.priority ? a.priority - b.priority : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const seen = new Map<string, number>();
  for (const p of processes) {
    if (seen.has(p.name)) {
      throw new ConfigError(r.loc('process_name'), `process_name: two processes are named ${JSON.stringify(p.name)} (numbers ${seen.get(p.name)} and ${p.processNum})`);
    }
    seen.set(p.name, p.processNum);
  }
  if (fetch !== null && new Set(processes.map((p) => p.argv[0])).size > 1) {
    throw new ConfigError(r.loc('fetch'), `fetch: the processes of [${r.section.name}] run different executables (${[...new Set(processes.map((p) => p.argv[0]))].join(', ')}); fetch replaces one`);
  }
  return { name, group, loc: r.section.loc, priority, fetchLoc: fetch ? r.loc('fetch') : null, processes };
}
