/**
 * The typed result of reading a supervisord-style config: what the runtime
 * needs to run each process, every value checked and expanded (one
 * ProcessConfig per process, as supervisord builds them, because
 * `%(process_num)d` may make each process's command, directory or log file
 * different).
 */
import type { HandoffName } from '@einhyrningsins/master';
import type { Loc } from './errors.js';
import type { AutoRestart } from './values.js';
import type { UserEntry } from './users.js';

/** Where a stream goes: supervisord's AUTO (here: the runtime's default, its own output), NONE, or a file. */
export type LogTarget = { kind: 'auto' } | { kind: 'none' } | { kind: 'file'; path: string };

export interface LogConfig {
  target: LogTarget;
  /** Rotate when the file reaches this size; 0: never. */
  maxBytes: number;
  /** How many rotated files (name.1 .. name.N) to keep; 0: truncate in place. */
  backups: number;
  /** minisv's logsuffixdate: a Go time layout; the file is PATH.<now formatted>, named again at each reopen. */
  dateSuffix?: string;
  /** minisv's logdate: a Go time layout written with ': ' before every line. */
  linePrefix?: string;
}

/** `socket=`: bound once by the runtime, shared by every process of the program. */
export type SocketSpec =
  | { kind: 'tcp'; text: string; host: string; port: number; reuseAddr: boolean; nonBlock: boolean; reusePort: boolean }
  | { kind: 'unix'; text: string; path: string; mode: number | null; nonBlock: boolean };

/** How the processes learn about their socket (`handoff=`): the master's --handoff names. */
export type Handoff = HandoffName;

/**
 * `ack=`: as the master's -m: manual (worker:ack on the control socket) or a timer.
 * `deadlineSec` (`ack=manual:SECONDS`): how long a process may take to ACK before it is a
 * failed start; absent: the driver's --ack-timeout.
 */
export type AckMode = { kind: 'manual'; deadlineSec?: number } | { kind: 'timer'; seconds: number };

/** `fetch=` with `fetch_interval=` and `fetch_max_size=`: the master's --fetch, for this program's executable. */
export interface FetchConfig {
  /** Normalized (http:, https: or file:). */
  url: string;
  intervalSec: number;
  maxBytes: number;
}

export interface ProcessConfig {
  /** The process name (`process_name` expanded); unique within its group. */
  name: string;
  program: string;
  group: string;
  processNum: number;
  command: string;
  /** `command` split as supervisord splits it (shlex.split, POSIX). */
  argv: string[];
  directory: string | null;
  umask: number | null;
  priority: number;
  autostart: boolean;
  autorestart: AutoRestart;
  exitcodes: number[];
  startsecs: number;
  startretries: number;
  user: UserEntry | null;
  /** Canonical name without SIG, e.g. TERM. */
  stopsignal: string;
  stopwaitsecs: number;
  stopasgroup: boolean;
  killasgroup: boolean;
  redirectStderr: boolean;
  stdout: LogConfig;
  /** `{ kind: 'none' }` when redirect_stderr is set. */
  stderr: LogConfig;
  /** [supervisord] environment= overlaid by the program's own. */
  environment: Record<string, string>;
  socket: SocketSpec | null;
  handoff: Handoff[];
  ack: AckMode;
  /** `fetch=`: new releases of the program's executable polled, installed and rolled out (the same for every process). */
  fetch: FetchConfig | null;
  /** `watch=`: absolute paths whose change restarts (rolls) the program. */
  watch: string[];
  /**
   * A one-time task (minisv's oneTime, the INI key onetime=): never started by itself nor
   * restarted; `run` (HTTP) or `start` runs it once to its end.
   */
  oneTime?: boolean;
  /** A rolling restart's new process must be up this long before an old one is stopped (minisv's startTime). */
  minReadySecs?: number;
  /**
   * Restarts start the new process before they stop the old one (minisv's restart) even
   * without `socket=`; otherwise a program without one restarts stop-then-start, as supervisord's.
   */
  newFirst?: boolean;
  /** The first wait after a failed start, doubling (minisv's restartPause); default 1 s. */
  respawnDelaySecs?: number;
}

export interface ProgramConfig {
  name: string;
  group: string;
  /** The [program:x] header. */
  loc: Loc;
  priority: number;
  /** Where `fetch=` is written (messages about the program's executable point there). */
  fetchLoc: Loc | null;
  /** Sorted as supervisord sorts them: by priority, then name. */
  processes: ProcessConfig[];
}

export interface GroupConfig {
  name: string;
  priority: number;
  /** Program names, in the order `programs=` lists them (one for a [program:x] of its own). */
  programs: string[];
  /** True for a [group:x] section. */
  explicit: boolean;
  loc: Loc;
}

export interface ConfigWarning {
  loc: Loc;
  message: string;
}

export interface ConfigModel {
  /** Every file read, the main one first, as shown in messages. */
  files: string[];
  /** Sorted by their group's order, then by the program's priority and name. */
  programs: ProgramConfig[];
  /** Sorted as supervisord starts them: priority, then name. */
  groups: GroupConfig[];
  warnings: ConfigWarning[];
}
