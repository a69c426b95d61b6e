/**
 * The command line of `einhyrningsins`, parsed the einhorn way: options are
 * read only up to the first word that is not an option (or up to `--`);
 * everything from there on is the program and its arguments.
 *
 * One table drives the parser, the --help text and the test that compares
 * them with the man page.
 */
import { normalizeSignal } from './signals.js';
import { parseHandoffs, type HandoffName } from './handoff-names.js';
import { watchPathProblem } from './watch.js';

// The module alone: --version and --help must not evaluate the whole protocol package.
import { shellWords } from '@einhyrningsins/protocol/words';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface OptionSpec {
  short?: string;
  long: string;
  /** Placeholder of the value; absent for flags. */
  arg?: string;
  /** The value may be left out (only -m: `-m`, `-m manual`, `-m 1.5`). */
  optionalArg?: (word: string) => boolean;
  help: string;
  repeatable?: boolean;
}

const isAckModeWord = (w: string): boolean => w === 'manual' || parseSeconds(w) !== null;

export const OPTION_SPECS: readonly OptionSpec[] = [
  { short: 'n', long: 'number', arg: 'COUNT', help: 'How many child processes to run (default 1).' },
  {
    short: 'b',
    long: 'bind',
    arg: 'ADDR:PORT[,OPT...]',
    repeatable: true,
    help:
      'Socket to bind in the master and pass to every child (repeatable; EINHORN_FD_0, _1, ... in order). ' +
      'ADDR is an IPv4 address, a [bracketed] IPv6 address or a host name. OPT: r or so_reuseaddr ' +
      '(SO_REUSEADDR), n or o_nonblock (O_NONBLOCK), p or so_reuseport (SO_REUSEPORT). ' +
      'unix:PATH[,mode=OCTAL] binds a UNIX-domain socket instead, created with that mode; its directory ' +
      'must be the caller\'s or root\'s and not writable by others unless sticky (group-writable: a warning).',
  },
  { short: '4', long: 'ipv4-only', help: 'Resolve -b host names to IPv4 addresses only.' },
  { short: '6', long: 'ipv6-only', help: 'Resolve -b host names to IPv6 only and set IPV6_V6ONLY.' },
  {
    short: 'm',
    long: 'manual',
    optionalArg: isAckModeWord,
    arg: 'manual|SECONDS',
    help:
      'Manual ACK mode: each child must send worker:ack on the control socket. `-m SECONDS` instead ' +
      'selects timer mode with that ACK delay (einhorn\'s -m FLOAT); `-m WORD` where WORD names no program ' +
      'is an unknown mode (`-m -- WORD` runs it). Default: timer, 1 second.',
  },
  { long: 'ack-mode', arg: 'manual|SECONDS', help: 'Same as -m with an argument (einhorn\'s long form).' },
  {
    long: 'ack-timeout',
    arg: 'SECONDS',
    help: 'In manual mode, a child that has not acked after SECONDS is a failed start (default 30).',
  },
  {
    long: 'min-ready',
    arg: 'SECONDS',
    help:
      'During an upgrade, a new child replaces an old one only after it has been up (acked) for SECONDS; ' +
      'one that exits sooner is a failed start of the upgrade and the old children keep serving (default 0: at its ack, ' +
      'as einhorn; e.g. 2 for a release that might crash right after its ack).',
  },
  {
    short: 'r',
    long: 'retries',
    arg: 'COUNT',
    help:
      'Consecutive failed starts tolerated before giving up (default: never give up, back off up to 30 s). ' +
      'An upgrade is abandoned after COUNT failed starts of its new workers (default 3).',
  },
  {
    short: 'd',
    long: 'socket-path',
    arg: 'PATH',
    help: 'Where to create the control socket (default $TMPDIR/einhorn.sock, or einhorn-NAME.sock with -c).',
  },
  { long: 'socket-mode', arg: 'OCTAL', help: 'File mode of the control socket (default 0600).' },
  {
    long: 'control-idle-timeout',
    arg: 'SECONDS',
    help: 'Close a control connection that has sent nothing and awaits no reply for SECONDS (default 60; 0: never).',
  },
  {
    long: 'drop-env-var',
    arg: 'VAR',
    repeatable: true,
    help: 'Remove VAR from the children\'s environment (repeatable).',
  },
  {
    short: 'g',
    long: 'command-socket-as-fd',
    help: 'Give each child an already-connected control connection, its fd in EINHORN_SOCK_FD (one ACK or ping each).',
  },
  {
    long: 'nice',
    arg: 'MASTER[:WORKER]',
    help: 'Niceness of the master and, optionally, of each child (-20..19), set with setpriority(2).',
  },
  {
    long: 'no-subreaper',
    help:
      'Do not make the master a child subreaper (PR_SET_CHILD_SUBREAPER); by default what a child leaves behind ' +
      'is reparented to the master, reaped, and stopped once its child is gone.',
  },
  {
    long: 'upgrade-nice',
    arg: 'N',
    help:
      'During an upgrade, start the new children N nicer (setpriority) and give them their normal priority ' +
      'back once they are up, so that booting takes less CPU from the children serving meanwhile (default 0: off; ' +
      'see the man page for when it helps). Only when the master may raise priorities again (root, or RLIMIT_NICE).',
  },
  { short: 'c', long: 'command-name', arg: 'NAME', help: 'Name used in logs and in the default socket path.' },
  { short: 'e', long: 'pidfile', arg: 'PATH', help: 'Write the master\'s pid to PATH; removed at exit.' },
  {
    short: 'f',
    long: 'lockfile',
    arg: 'PATH',
    help: 'Hold an exclusive lock on PATH while running; another master with the same lockfile refuses to start.',
  },
  { short: 'l', long: 'backlog', arg: 'N', help: 'listen(2) backlog of every -b socket (default 100).' },
  {
    short: 's',
    long: 'seconds',
    arg: 'SECONDS',
    help: 'Base delay before re-spawning after a failed start; doubles per consecutive failure (default 1).',
  },
  {
    short: 't',
    long: 'signal-timeout',
    arg: 'SECONDS',
    help: 'SIGKILL a child still alive SECONDS after it was asked to stop (default 30; 0: never).',
  },
  {
    long: 'stop-signal',
    arg: 'SIG',
    help:
      "The signal that asks a child to drain and exit (upgrades, scale-down, shutdown, die, -k); default USR2, einhorn's. " +
      'A known server that needs another (gunicorn, uvicorn, hypercorn, puma: TERM; unicorn, nginx: QUIT) gets a warning naming it.',
  },
  {
    long: 'handoff',
    arg: 'NAME[,NAME...]',
    repeatable: true,
    help:
      'Also hand the sockets over in the protocol the server already speaks (EINHORN_* are always set): ' +
      'systemd (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), server-starter (SERVER_STARTER_PORT), port ($PORT = the ' +
      "first TCP socket's port, and the bind shim in LD_PRELOAD turns the server's own bind of it into the inherited socket); " +
      'einhorn (the default) adds nothing.',
  },
  {
    short: 'k',
    long: 'kill-children-on-exit',
    help: 'Children get the stop signal (SIGUSR2) if the master dies, even by SIGKILL (PR_SET_PDEATHSIG).',
  },
  { long: 'max-unacked', arg: 'N', help: 'At most N children starting (not yet acked) at once (default: no limit).' },
  {
    long: 'max-upgrade-additional',
    arg: 'N',
    help: 'During an upgrade, at most N processes beyond -n at once (default: all new children at once).',
  },
  {
    short: 'v',
    long: 'verbose',
    repeatable: true,
    help:
      'More detail: -v adds debug lines (each spawn\'s command and the variables set, ACKs and the control ' +
      'connection they came on, signals sent, timers, control commands received); -vv also every request and reply line.',
  },
  {
    short: 'q',
    long: 'quiet',
    repeatable: true,
    help: 'Less: -q only warnings and errors, -qq only errors; the start-up line is always printed.',
  },
  {
    long: 'prefix-output',
    help: "Prefix each line of the children's stdout and stderr with its slot and pid, `worker.0[1234] | ` (NAME.0 with -c). Default: the children write to the master's stdout and stderr directly, as with einhorn.",
  },
  { long: 'prefix-output-time', help: 'Like --prefix-output, with an ISO timestamp first on each line.' },
  { long: 'syslog', help: 'Also send warnings and errors to the local syslog (/dev/log).' },
  {
    long: 'syslog-socket',
    arg: 'PATH',
    help: 'The local syslog socket for --syslog (default /dev/log); implies --syslog.',
  },
  {
    long: 'syslog-to',
    arg: 'URL',
    help: 'Also send warnings and errors to a remote syslog collector, udp://HOST:PORT or tcp://HOST:PORT.',
  },
  {
    long: 'reexec-as',
    arg: 'CMDLINE',
    help:
      'On reload, and first on every upgrade (as einhorn), re-execute the master as CMDLINE (split as a shell does, no expansion) followed by its ' +
      'options, e.g. "env VAR=b einhyrningsins" (default: this node and this program).',
  },
  {
    long: 'upgrade-check',
    help: 'Load the whole program and check the options, then exit 0 without binding anything (what reload runs first).',
  },
  {
    short: 'p',
    long: 'preload',
    arg: 'PATH',
    help: "Accepted for einhorn command lines and ignored with a warning: preloading only means something for Ruby children.",
  },
  {
    long: 'gc-before-fork',
    help: "Accepted for einhorn command lines and ignored with a warning: it only means something for Ruby children.",
  },
  {
    long: 'watch',
    arg: 'PATH',
    repeatable: true,
    help:
      'Upgrade when PATH changes: written in place, renamed over, or a symlink on the way flipped (a Capistrano-style ' +
      '`current` link); once it has been quiet for 0.25 s (inotify, with a poll as the fallback). Repeatable.',
  },
  {
    long: 'fetch',
    arg: 'URL',
    help:
      'Poll URL (http://, https:// or file:///PATH) for new releases of PROGRAM (overseer\'s fetcher): a changed ETag, ' +
      'Last-Modified or size (HEAD; a file\'s inode, size and mtime) is downloaded next to PROGRAM, checked (complete, ' +
      'an executable for this machine, --fetch-max-size), installed in its place (the old one kept as PROGRAM.previous) ' +
      'and rolled out; if that upgrade fails the previous program is put back and that release is not tried again.',
  },
  {
    long: 'fetch-interval',
    arg: 'SECONDS',
    help: 'How often --fetch polls (default 60); after a failed poll the wait doubles, up to 10 minutes.',
  },
  {
    long: 'fetch-max-size',
    arg: 'BYTES',
    help: 'The largest release --fetch downloads, in bytes or with a K, M or G suffix (default 256M).',
  },
  {
    long: 'exit-with-child',
    help:
      'With one child (-n 1): when it exits by itself (not asked to by an upgrade, a scale-down or a stop), stop and exit ' +
      'with its status (128+N for signal N), so that the process manager above (systemd, ...) applies its restart policy.',
  },
  { short: 'h', long: 'help', help: 'Print this help and exit.' },
  { long: 'version', help: 'Print the version and exit.' },
];

/** einhorn options we know but refuse, with the reason shown to the user. */
const REFUSED: Readonly<Record<string, string>> = {
  'with-state-fd': 'internal to the master\'s reload, which passes it as the first argument',
};

export type AckModeOption = { kind: 'manual' } | { kind: 'timer'; seconds: number };

export interface Options {
  number: number;
  binds: string[];
  ipv4Only: boolean;
  ipv6Only: boolean;
  ackMode: AckModeOption;
  ackTimeoutSec: number;
  minReadySec: number;
  retries: number | null;
  socketPath: string | null;
  socketMode: number;
  controlIdleTimeoutSec: number;
  subreaper: boolean;
  dropEnv: string[];
  commandName: string | null;
  pidfile: string | null;
  lockfile: string | null;
  backlog: number;
  seconds: number;
  signalTimeoutSec: number;
  /** The drain signal, normalized (SIGUSR2). */
  stopSignal: string;
  killChildrenOnExit: boolean;
  commandSocketAsFd: boolean;
  niceMaster: number | null;
  niceWorker: number | null;
  upgradeNice: number;
  maxUnacked: number | null;
  maxUpgradeAdditional: number | null;
  verbosity: number;
  /** --prefix-output: children's lines prefixed; with a timestamp when 'time'. */
  prefixOutput: false | 'plain' | 'time';
  syslog: boolean;
  syslogSocket: string;
  syslogTo: string | null;
  /** --reexec-as, split into words. */
  reexecAs: string[] | null;
  /** --handoff: how the children get their sockets (einhorn always, first). */
  handoff: HandoffName[];
  upgradeCheck: boolean;
  /** --watch paths, as given. */
  watch: string[];
  /** --fetch URL, checked (http:, https: or file: with an absolute path). */
  fetch: string | null;
  fetchIntervalSec: number;
  fetchMaxBytes: number;
  /** --exit-with-child: the master exits with the status of a worker that exits unasked. */
  exitWithChild: boolean;
  help: boolean;
  version: boolean;
  program: string | null;
  programArgs: string[];
  /** einhorn options accepted but meaningless here (Ruby-only), as given: one warning names them. */
  rubyOnly: string[];
  /**
   * Set when a bare -m was followed directly by the program's word (`-m app`, einhorn's
   * way; no `--` between): if no such program exists, the word was meant as an ack
   * mode (`-m fast`) and the master says so instead of "program not found".
   */
  bareAckModeThenProgram?: string;
}

export function defaultOptions(): Options {
  return {
    number: 1,
    binds: [],
    ipv4Only: false,
    ipv6Only: false,
    ackMode: { kind: 'timer', seconds: 1 },
    ackTimeoutSec: 30,
    minReadySec: 0,
    retries: null,
    socketPath: null,
    socketMode: 0o600,
    controlIdleTimeoutSec: 60,
    subreaper: true,
    dropEnv: [],
    commandName: null,
    pidfile: null,
    lockfile: null,
    backlog: 100,
    seconds: 1,
    signalTimeoutSec: 30,
    stopSignal: 'SIGUSR2',
    killChildrenOnExit: false,
    commandSocketAsFd: false,
    niceMaster: null,
    niceWorker: null,
    upgradeNice: 0,
    maxUnacked: null,
    maxUpgradeAdditional: null,
    verbosity: 1,
    prefixOutput: false,
    syslog: false,
    syslogSocket: '/dev/log',
    syslogTo: null,
    reexecAs: null,
    handoff: ['einhorn'],
    upgradeCheck: false,
    watch: [],
    fetch: null,
    fetchIntervalSec: 60,
    fetchMaxBytes: 256 * 1024 * 1024,
    exitWithChild: false,
    help: false,
    version: false,
    program: null,
    programArgs: [],
    rubyOnly: [],
  };
}

/** A non-negative decimal number of seconds, or null. */
export function parseSeconds(word: string): number | null {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(word)) return null;
  const n = Number(word);
  return Number.isFinite(n) ? n : null;
}

function count(opt: string, word: string, min = 0): number {
  if (!/^\d+$/.test(word)) throw new UsageError(`${opt} expects a non-negative integer, got '${word}'`);
  const n = Number(word);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${opt} expects an integer >= ${min}, got '${word}'`);
  }
  return n;
}

function seconds(opt: string, word: string): number {
  const n = parseSeconds(word);
  if (n === null) throw new UsageError(`${opt} expects a number of seconds, got '${word}'`);
  return n;
}

function ackMode(opt: string, word: string): AckModeOption {
  if (word === 'manual') return { kind: 'manual' };
  const s = parseSeconds(word);
  if (s === null) throw new UsageError(`${opt} expects 'manual' or a number of seconds, got '${word}'`);
  return { kind: 'timer', seconds: s };
}

const EINHORN_VARS = /^EINHORN_/;

/** --fetch's URL: http(s) with a host, or file: with an absolute path; returned normalized. */
function fetchUrl(opt: string, v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new UsageError(`${opt} expects a URL (http://HOST/..., https://HOST/... or file:///PATH), got '${v}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'file:') {
    throw new UsageError(`${opt} ${v}: unsupported scheme '${u.protocol.slice(0, -1)}' (http, https or file)`);
  }
  if (u.protocol === 'file:' && u.host !== '' && u.host !== 'localhost') {
    throw new UsageError(`${opt} ${v}: a file URL names an absolute path, file:///PATH (here '${u.host}' would be a host)`);
  }
  if (u.protocol === 'file:' && (u.pathname === '/' || u.pathname.endsWith('/'))) {
    throw new UsageError(`${opt} ${v}: a file URL must name a file, not a directory`);
  }
  return u.href;
}

function apply(o: Options, spec: OptionSpec, name: string, value: string | undefined): void {
  const v = value as string;
  switch (spec.long) {
    case 'number':
      o.number = count(name, v);
      return;
    case 'bind':
      o.binds.push(v);
      return;
    case 'ipv4-only':
      o.ipv4Only = true;
      return;
    case 'ipv6-only':
      o.ipv6Only = true;
      return;
    case 'manual':
      o.ackMode = value === undefined ? { kind: 'manual' } : ackMode(name, v);
      return;
    case 'ack-mode':
      o.ackMode = ackMode(name, v);
      return;
    case 'ack-timeout': {
      const s = seconds(name, v);
      if (s <= 0) throw new UsageError(`${name} must be greater than 0`);
      o.ackTimeoutSec = s;
      return;
    }
    case 'min-ready':
      o.minReadySec = seconds(name, v);
      return;
    case 'control-idle-timeout':
      o.controlIdleTimeoutSec = seconds(name, v);
      return;
    case 'no-subreaper':
      o.subreaper = false;
      return;
    case 'retries':
      o.retries = count(name, v);
      return;
    case 'socket-path':
      if (v === '') throw new UsageError(`${name} expects a path`);
      o.socketPath = v;
      return;
    case 'socket-mode':
      if (!/^0?[0-7]{3}$/.test(v)) throw new UsageError(`${name} expects an octal mode like 0600, got '${v}'`);
      o.socketMode = parseInt(v, 8);
      return;
    case 'drop-env-var':
      if (!/^[^=\0]+$/.test(v)) throw new UsageError(`${name} expects a variable name, got '${v}'`);
      if (EINHORN_VARS.test(v)) {
        throw new UsageError(`${name} ${v}: the EINHORN_ variables are set by einhyrningsins and cannot be dropped`);
      }
      o.dropEnv.push(v);
      return;
    case 'command-name':
      if (!/^[\w.-]+$/.test(v)) throw new UsageError(`${name} expects a name of letters, digits, '.', '_' or '-', got '${v}'`);
      o.commandName = v;
      return;
    case 'pidfile':
      if (v === '') throw new UsageError(`${name} expects a path`);
      o.pidfile = v;
      return;
    case 'lockfile':
      if (v === '') throw new UsageError(`${name} expects a path`);
      o.lockfile = v;
      return;
    case 'backlog':
      o.backlog = count(name, v, 1);
      return;
    case 'seconds': {
      const s = seconds(name, v);
      if (s <= 0) throw new UsageError(`${name} must be greater than 0`);
      o.seconds = s;
      return;
    }
    case 'signal-timeout':
      o.signalTimeoutSec = seconds(name, v);
      return;
    case 'stop-signal': {
      const sig = normalizeSignal(v);
      if (!sig || sig === 'SIGKILL' || sig === 'SIGSTOP') {
        throw new UsageError(`${name} expects a signal name that can be caught (e.g. TERM, USR2), got '${v}'`);
      }
      o.stopSignal = sig;
      return;
    }
    case 'kill-children-on-exit':
      o.killChildrenOnExit = true;
      return;
    case 'command-socket-as-fd':
      o.commandSocketAsFd = true;
      return;
    case 'nice': {
      const m = /^(-?\d+)?(?::(-?\d+))?$/.exec(v);
      const parts = v.split(':');
      if (parts.length > 2) {
        throw new UsageError(`${name}: a RENICE_CMD part is not supported (einhyrningsins calls setpriority itself); use MASTER[:WORKER]`);
      }
      const ok = (x: string | undefined) => x === undefined || (Number(x) >= -20 && Number(x) <= 19);
      if (!m || (m[1] === undefined && m[2] === undefined) || !ok(m[1]) || !ok(m[2])) {
        throw new UsageError(`${name} expects MASTER[:WORKER] niceness values from -20 to 19, got '${v}'`);
      }
      o.niceMaster = m[1] === undefined ? null : Number(m[1]);
      o.niceWorker = m[2] === undefined ? null : Number(m[2]);
      return;
    }
    case 'upgrade-nice':
      o.upgradeNice = count(name, v);
      if (o.upgradeNice > 39) throw new UsageError(`${name} expects an integer from 0 to 39, got '${v}'`);
      return;
    case 'max-unacked':
      o.maxUnacked = count(name, v, 1);
      return;
    case 'max-upgrade-additional':
      o.maxUpgradeAdditional = count(name, v, 1);
      return;
    case 'verbose':
      o.verbosity = Math.max(-1, o.verbosity - 1);
      return;
    case 'prefix-output':
      if (o.prefixOutput === false) o.prefixOutput = 'plain';
      return;
    case 'prefix-output-time':
      o.prefixOutput = 'time';
      return;
    case 'quiet':
      o.verbosity = Math.min(3, o.verbosity + 1);
      return;
    case 'syslog':
      o.syslog = true;
      return;
    case 'syslog-socket':
      if (v === '') throw new UsageError(`${name} expects a path`);
      o.syslog = true;
      o.syslogSocket = v;
      return;
    case 'syslog-to':
      if (!/^(udp|tcp):\/\/.+:\d+\/?$/.test(v)) throw new UsageError(`${name} expects udp://HOST:PORT or tcp://HOST:PORT, got '${v}'`);
      o.syslogTo = v;
      return;
    case 'handoff':
      try {
        o.handoff = parseHandoffs([...o.handoff, v]);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      return;
    case 'reexec-as': {
      let words: string[];
      try {
        words = shellWords(v);
      } catch (err) {
        throw new UsageError(`${name}: ${(err as Error).message}`);
      }
      if (words.length === 0) throw new UsageError(`${name} expects a command line`);
      o.reexecAs = words;
      return;
    }
    case 'upgrade-check':
      o.upgradeCheck = true;
      return;
    case 'watch': {
      if (v === '') throw new UsageError(`${name} expects a path`);
      const problem = watchPathProblem(v);
      if (problem) throw new UsageError(`${name} ${v}: ${problem}`);
      o.watch.push(v);
      return;
    }
    case 'fetch':
      o.fetch = fetchUrl(name, v);
      return;
    case 'fetch-interval': {
      const s = seconds(name, v);
      if (s <= 0) throw new UsageError(`${name} must be greater than 0`);
      o.fetchIntervalSec = s;
      return;
    }
    case 'fetch-max-size': {
      const m = /^(\d+)([kKmMgG]?)$/.exec(v);
      const n = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
      if (!m || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${name} expects a size in bytes (or with a K, M or G suffix), got '${v}'`);
      o.fetchMaxBytes = n;
      return;
    }
    case 'exit-with-child':
      o.exitWithChild = true;
      return;
    case 'preload':
    case 'gc-before-fork':
      o.rubyOnly.push(value === undefined ? name : `${name} ${value}`);
      return;
    case 'help':
      o.help = true;
      return;
    case 'version':
      o.version = true;
      return;
  }
}

const byLong = new Map(OPTION_SPECS.map((s) => [s.long, s]));
const byShort = new Map(OPTION_SPECS.filter((s) => s.short).map((s) => [s.short as string, s]));

/**
 * A long option by its name or, as Ruby's OptionParser (einhorn's) allows, by a unique
 * prefix of it: `--num 2`, `--sig=5`. An ambiguous prefix is refused with the candidates.
 */
function longOption(given: string): OptionSpec {
  const exact = byLong.get(given);
  if (exact) return exact;
  const hits = given === '' ? [] : OPTION_SPECS.filter((s) => s.long.startsWith(given));
  if (hits.length === 1) return hits[0] as OptionSpec;
  if (hits.length > 1) {
    throw new UsageError(`ambiguous option '--${given}': could be ${hits.map((h) => `--${h.long}`).join(', ')}`);
  }
  throw new UsageError(`unknown option '--${given}' (see --help)`);
}

/** The one warning for einhorn options that only mean something for Ruby children, or null. */
export function rubyOnlyWarning(o: Options): string | null {
  if (o.rubyOnly.length === 0) return null;
  return `ignoring ${o.rubyOnly.join(', ')}: einhorn's preloading and GC options only mean something for Ruby children`;
}

export function parseArgs(argv: readonly string[]): Options {
  const o = defaultOptions();
  const seen = new Set<string>();
  const once = (spec: OptionSpec, name: string) => {
    if (!spec.repeatable && seen.has(spec.long) && spec.long !== 'manual') {
      throw new UsageError(`${name} given more than once`);
    }
    seen.add(spec.long);
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === '--') {
      i += 1;
      break;
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const given = eq < 0 ? word.slice(2) : word.slice(2, eq);
      if (given in REFUSED) throw new UsageError(`--${given}: ${REFUSED[given]}`);
      const spec = longOption(given);
      const name = spec.long;
      once(spec, `--${name}`);
      let value: string | undefined;
      if (eq >= 0) {
        if (!spec.arg) throw new UsageError(`--${name} does not take a value`);
        value = word.slice(eq + 1);
      } else if (spec.arg && !spec.optionalArg) {
        if (i + 1 >= argv.length) throw new UsageError(`--${name} expects a value (${spec.arg})`);
        value = argv[++i];
      }
      apply(o, spec, `--${name}`, value);
      continue;
    }
    if (word.startsWith('-') && word.length > 1) {
      // One or more short options: -vq, -n3, -n 3, -m, -m manual.
      for (let j = 1; j < word.length; j++) {
        const ch = word[j] as string;
        const spec = byShort.get(ch);
        if (!spec) {
          if (ch in REFUSED) throw new UsageError(`-${ch}: ${REFUSED[ch]}`);
          throw new UsageError(`unknown option '-${ch}' (see --help)`);
        }
        once(spec, `-${ch}`);
        if (!spec.arg) {
          apply(o, spec, `-${ch}`, undefined);
          continue;
        }
        const rest = word.slice(j + 1);
        let value: string | undefined;
        if (rest !== '') value = rest;
        else if (spec.optionalArg) {
          const next = argv[i + 1];
          if (next !== undefined && spec.optionalArg(next)) {
            value = next;
            i += 1;
          } else if (next !== undefined && !next.startsWith('-')) {
            o.bareAckModeThenProgram = next;
          }
        } else {
          if (i + 1 >= argv.length) throw new UsageError(`-${ch} expects a value (${spec.arg})`);
          value = argv[++i];
        }
        apply(o, spec, `-${ch}`, value);
        break;
      }
      continue;
    }
    break; // the program
  }
  const rest = argv.slice(i);
  // --upgrade-check alone is what einhorn's own re-exec probe runs: it needs no program.
  if (o.help || o.version || (o.upgradeCheck && rest.length === 0)) return o;
  if (o.ipv4Only && o.ipv6Only) throw new UsageError('-4 and -6 cannot be used together');
  for (const dependent of ['fetch-interval', 'fetch-max-size']) {
    if (seen.has(dependent) && o.fetch === null) throw new UsageError(`--${dependent} only means something with --fetch URL`);
  }
  if (o.exitWithChild && o.number > 1) {
    throw new UsageError(`--exit-with-child passes on the status of one child; it cannot be used with -n ${o.number}`);
  }
  if (rest.length === 0 || rest[0] === '') throw new UsageError('missing program to run (try --help)');
  o.program = rest[0] as string;
  o.programArgs = rest.slice(1);
  return o;
}

function wrap(text: string, width: number, indent: string): string {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.map((l, k) => (k === 0 ? l : indent + l)).join('\n');
}

export function optionLabel(s: OptionSpec): string {
  const names = [s.short ? `-${s.short}` : null, `--${s.long}`].filter(Boolean).join(', ');
  if (!s.arg) return names;
  return s.optionalArg ? `${names} [${s.arg}]` : `${names} ${s.arg}`;
}

export function helpText(): string {
  const lines = [
    'Usage: einhyrningsins [OPTIONS] [--] PROGRAM [PROGRAM_ARGS...]',
    '',
    'Binds each -b socket once, runs COUNT copies of PROGRAM as direct children that inherit',
    'the sockets (EINHORN_FD_COUNT, EINHORN_FD_<n>, ...), and restarts them without dropping',
    'connections on upgrade (SIGHUP or `einhyrningsinsctl upgrade`).',
    '',
    'Options (read up to PROGRAM; everything after it is passed to PROGRAM):',
  ];
  for (const s of OPTION_SPECS) {
    const label = `  ${optionLabel(s)}`;
    const pad = 34;
    const body = wrap(s.help, 62, ' '.repeat(pad));
    lines.push(label.length < pad ? label.padEnd(pad) + body : `${label}\n${' '.repeat(pad)}${body}`);
  }
  lines.push(
    '',
    'Signals: HUP upgrade; INT, TERM, QUIT, USR2 stop the children gracefully (--stop-signal) and exit;',
    'TTIN/TTOU add/remove a child; USR1 is passed on to the children.',
    'See einhyrningsins(1).',
  );
  return lines.join('\n') + '\n';
}
