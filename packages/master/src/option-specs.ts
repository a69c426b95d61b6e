/**
 * The table of `einhyrningsins`'s options: one entry per option drives the parser
 * (options.ts), the --help text and the test that compares them with the man page.
 */

/** A non-negative decimal number of seconds, or null. */
export function parseSeconds(word: string): number | null {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(word)) return null;
  const n = Number(word);
  return Number.isFinite(n) ? n : null;
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
    long: 'handover',
    arg: 'at-ack|after-boot',
    help:
      'When a smooth upgrade asks the old children to drain: at-ack, one per new child up (einhorn\'s); after-boot, ' +
      'only once no new child is still starting, so that booting does not compete for the CPU with the new ' +
      'children taking over the connections (default at-ack).',
  },
  {
    long: 'handover-gap',
    arg: 'SECONDS',
    help:
      'During a smooth upgrade, ask at most one old child to drain per SECONDS, so that the new children warm up ' +
      'on part of the load before they carry all of it (default 0: one old child per new one up, at once).',
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
      'and rolled out; if that upgrade fails the previous program is put back and that release is not tried again (not after a reload either).',
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
