/**
 * The command line of `einhyrningsins-dyno`:
 *
 *   einhyrningsins-dyno start [OPTIONS] [TYPE...]
 *   einhyrningsins-dyno run [OPTIONS] [--] COMMAND [ARGS...]
 *
 * One table drives the parser, --help and the man-page test.
 */
import { parseBindSpec, BindError } from '@einhyrningsins/master/bind-spec';
import { UsageError } from './errors.js';
import { normalizeSignal } from '@einhyrningsins/master/signals';
import { FormationError, parseFormation, parseScale } from './formation.js';

/** hsup's dyno drivers (its -d). */
const HSUP_DRIVERS = ['simple', 'docker', 'libcontainer', 'abspath'];
import { TYPE_NAME } from './procfile.js';

export type Command = 'start' | 'run';

export interface DynoOptionSpec {
  short?: string;
  long: string;
  arg?: string;
  help: string;
  /** The commands it applies to. */
  for: readonly Command[];
}

const BOTH: readonly Command[] = ['start', 'run'];
const START: readonly Command[] = ['start'];

export const DYNO_OPTIONS: readonly DynoOptionSpec[] = [
  { short: 'f', long: 'procfile', arg: 'PATH', for: BOTH, help: 'The Procfile (default ./Procfile). Its directory is where the processes run.' },
  { long: 'env', arg: 'PATH', for: BOTH, help: 'The .env file (default ./.env when it exists).' },
  { long: 'formation', arg: 'TYPE=N[,TYPE=N...]', for: START, help: 'How many processes of each type (default 1 each). Procfile apps only.' },
  {
    short: 'c',
    long: 'control-dir',
    arg: 'DIR',
    for: BOTH,
    help: 'Run the releases written to DIR/new (hsup\'s control directory; default $HSUP_CONTROL_DIR) instead of a Procfile.',
  },
  {
    long: 'config',
    arg: 'FILE',
    for: START,
    help:
      "Run the [program:x] sections of a supervisord-style config FILE instead of a Procfile (one process type per program; " +
      'besides supervisord\'s keys: socket=, handoff=, ack=manual[:SECONDS]|SECONDS, fetch=URL with fetch_interval= and fetch_max_size=, watch=PATH[,PATH]).',
  },
  {
    long: 'http',
    arg: 'ADDR:PORT',
    for: START,
    help: "Also serve the HTTP API (minisv's verbs, hsup's) on this TCP address; needs --http-token-file.",
  },
  {
    long: 'http-token-file',
    arg: 'FILE',
    for: START,
    help: 'The bearer token TCP requests must carry (Authorization: Bearer TOKEN); a regular file others cannot read.',
  },
  { long: 'state-dir', arg: 'DIR', for: BOTH, help: 'Where slugs are unpacked (default DIR/.state with -c, else ./.einhyrningsins-dyno).' },
  {
    short: 'b',
    long: 'bind',
    arg: 'ADDR:PORT[,OPT...]',
    for: START,
    help: 'The listening socket every web process inherits (default 0.0.0.0:$PORT when PORT is set). OPT: r, n, p as in einhyrningsins.',
  },
  { short: 'd', long: 'socket-path', arg: 'PATH', for: START, help: 'The control socket (default $TMPDIR/einhyrningsins-dyno.sock).' },
  {
    short: 'm',
    long: 'ack-mode',
    arg: 'manual|SECONDS',
    for: START,
    help: 'manual: a process is up once it sends worker:ack; SECONDS: once it has run that long or acked (default 1).',
  },
  {
    long: 'ack-timeout',
    arg: 'SECONDS',
    for: START,
    help: 'In manual mode, a process that has not acked after SECONDS is a failed start (default 30; with --config, for ack=manual programs without their own ack=manual:SECONDS).',
  },
  { short: 't', long: 'signal-timeout', arg: 'SECONDS', for: START, help: 'SIGKILL a process still alive SECONDS after it was asked to stop (default 30; 0: never).' },
  {
    long: 'stop-signal',
    arg: 'SIG',
    for: START,
    help: "Asks a process to stop: sent to its whole process group, then SIGKILL after -t (default TERM, as Heroku's).",
  },
  { short: 'k', long: 'kill-children-on-exit', for: START, help: 'Processes get the stop signal if the driver dies, even by SIGKILL.' },
  { long: 'oneshot', for: START, help: "hsup's: processes are not restarted; exit once all have ended, with the highest exit status." },
  { long: 'start-number', arg: 'N', for: START, help: "hsup's: the number of each type's first process (default 1: web.1)." },
  { long: 'dynodriver', arg: 'NAME', for: BOTH, help: "hsup's: only 'simple' (processes of the driver's user); docker, libcontainer and abspath are refused." },
  { short: 'v', long: 'verbose', for: START, help: 'More verbose logging (repeatable).' },
  { short: 'q', long: 'quiet', for: START, help: 'Less verbose logging (repeatable).' },
  { short: 'h', long: 'help', for: BOTH, help: 'Print this help and exit.' },
  { long: 'version', for: BOTH, help: 'Print the version and exit.' },
];

export interface DynoOptions {
  command: Command | null;
  help: boolean;
  version: boolean;
  procfile: string | null;
  envFile: string | null;
  formation: Map<string, number> | null;
  formationText: string | null;
  /** hsup's `start TYPE=N` with a control dir: these quantities instead of the release's. */
  quantities: Map<string, number>;
  controlDir: string | null;
  /** --config FILE: a supervisord-style config. */
  config: string | null;
  /** --http ADDR:PORT: the HTTP API on TCP too. */
  http: { host: string; port: number; text: string } | null;
  /** --http-token-file FILE */
  httpTokenFile: string | null;
  stateDir: string | null;
  /** -b as written; null: 0.0.0.0:$PORT when PORT is set. */
  bind: string | null;
  socketPath: string | null;
  ackMode: { kind: 'manual' } | { kind: 'timer'; seconds: number };
  ackTimeoutSec: number;
  signalTimeoutSec: number;
  killChildrenOnExit: boolean;
  /** Asks a process (its whole process group) to stop: SIGTERM, as Heroku. */
  stopSignal: string;
  /** hsup's --oneshot: processes are not restarted; the driver exits when all have, with the highest status. */
  oneshot: boolean;
  /** hsup's --start-number: the first dyno number (web.1). */
  startNumber: number;
  verbosity: number;
  /** start: the process types to run (empty: all). */
  types: string[];
  /** run: the command and its arguments. */
  argv: string[];
}

/** The options `start` hands to the driver as they are (driver-config.ts's DriverConfig has them under these names). */
const DRIVER_SETTINGS = [
  'types',
  'bind',
  'http',
  'ackMode',
  'ackTimeoutSec',
  'signalTimeoutSec',
  'killChildrenOnExit',
  'stopSignal',
  'oneshot',
  'startNumber',
  'quantities',
  'verbosity',
] as const;

export type DriverSettings = Pick<DynoOptions, (typeof DRIVER_SETTINGS)[number]>;

export function driverSettings(o: DynoOptions): DriverSettings {
  return Object.fromEntries(DRIVER_SETTINGS.map((k) => [k, o[k]])) as unknown as DriverSettings;
}

function seconds(name: string, v: string, allowZero: boolean): number {
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || (!allowZero && n <= 0) || n > 86_400) {
    throw new UsageError(`${name} expects a number of seconds${allowZero ? '' : ' > 0'}, got '${v}'`);
  }
  return n;
}

export function parseDynoArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): DynoOptions {
  const o: DynoOptions = {
    command: null,
    help: false,
    version: false,
    procfile: null,
    envFile: null,
    formation: null,
    formationText: null,
    quantities: new Map(),
    controlDir: null,
    config: null,
    http: null,
    httpTokenFile: null,
    stateDir: null,
    bind: null,
    socketPath: null,
    ackMode: { kind: 'timer', seconds: 1 },
    ackTimeoutSec: 30,
    signalTimeoutSec: 30,
    killChildrenOnExit: false,
    stopSignal: 'SIGTERM',
    oneshot: false,
    startNumber: 1,
    verbosity: 1,
    types: [],
    argv: [],
  };
  const given = new Set<string>();
  const positional: string[] = [];
  let i = 0;
  let rest = false;
  for (; i < argv.length; i++) {
    const w = argv[i] as string;
    if (rest || w === '-' || !w.startsWith('-')) {
      if (o.command === null && !rest) {
        if (w !== 'start' && w !== 'run') throw new UsageError(`unknown command '${w}' (expected start or run)`);
        o.command = w;
        continue;
      }
      positional.push(w);
      // run: the command starts at the first word that is not an option.
      if (o.command === 'run') {
        positional.push(...argv.slice(i + 1));
        break;
      }
      continue;
    }
    if (w === '--') {
      if (o.command === 'run') {
        positional.push(...argv.slice(i + 1));
        break;
      }
      rest = true;
      continue;
    }
    const long = w.startsWith('--');
    const eq = long ? w.indexOf('=') : -1;
    const shortFlags = long ? [w] : [...w.slice(1)].map((c) => `-${c}`);
    // Short flags may be grouped (-vk); one taking a value takes the rest of the word or the next one.
    for (let j = 0; j < shortFlags.length; j++) {
      const name = long ? (eq > 0 ? w.slice(0, eq) : w) : (shortFlags[j] as string);
      const spec = DYNO_OPTIONS.find((s) => (long ? `--${s.long}` === name : s.short !== undefined && `-${s.short}` === name));
      if (!spec) throw new UsageError(`unknown option '${name}'`);
      let value: string | undefined;
      if (spec.arg) {
        if (long) value = eq > 0 ? w.slice(eq + 1) : undefined;
        else if (j + 1 < shortFlags.length) value = w.slice(j + 2);
        if (value === undefined) {
          value = argv[++i];
          if (value === undefined) throw new UsageError(`${name} expects a value (${spec.arg})`);
        }
        j = shortFlags.length;
      } else if (long && eq > 0) {
        throw new UsageError(`${name} does not take a value`);
      }
      const key = spec.long;
      if (spec.arg && given.has(key)) throw new UsageError(`${name} given more than once`);
      given.add(key);
      apply(o, key, name, value);
    }
  }
  if (o.help || o.version) return o;
  if (o.command === null) throw new UsageError('missing command: start [TYPE...] or run -- COMMAND [ARGS...]');
  for (const key of given) {
    const spec = DYNO_OPTIONS.find((s) => s.long === key) as DynoOptionSpec;
    if (!spec.for.includes(o.command)) throw new UsageError(`--${key} does not apply to ${o.command}`);
  }
  if (o.config !== null) {
    if (o.procfile !== null || o.controlDir !== null) throw new UsageError('--config cannot be used with -f or -c');
    if (o.formation !== null) throw new UsageError('--formation is for Procfile apps; with --config the quantities are the programs\' numprocs');
    if (o.envFile !== null) throw new UsageError('--env is for Procfile apps; with --config use environment= in the config');
  }
  if (o.http !== null && o.httpTokenFile === null) {
    throw new UsageError(`--http ${o.http.text}: needs --http-token-file FILE (the bearer token every TCP request must carry); the API is not served on TCP without one`);
  }
  if (o.config === null && o.controlDir === null && o.procfile === null && env.HSUP_CONTROL_DIR) o.controlDir = env.HSUP_CONTROL_DIR;
  if (o.controlDir !== null && o.procfile !== null) throw new UsageError('-f and -c cannot be used together');
  if (o.controlDir !== null && o.formation !== null) {
    throw new UsageError('--formation is for Procfile apps; with -c the quantities come from the release');
  }
  if (o.command === 'run') {
    if (positional.length === 0) throw new UsageError('run: missing command (run [OPTIONS] -- COMMAND [ARGS...])');
    o.argv = positional;
  } else {
    // TYPE, or hsup's TYPE=N (a quantity for this start).
    const counts = new Map<string, number>();
    for (const t of positional) {
      if (t.includes('=')) {
        let sc;
        try {
          sc = parseScale(t);
        } catch (err) {
          if (err instanceof FormationError) throw new UsageError(err.message);
          throw err;
        }
        counts.set(sc.type, sc.quantity);
        o.types.push(sc.type);
        continue;
      }
      if (!TYPE_NAME.test(t)) throw new UsageError(`invalid process type '${t}'`);
      o.types.push(t);
    }
    o.types = [...new Set(o.types)];
    if (counts.size > 0) {
      // hsup's `start web=2 worker`: these quantities instead of the release's (or the formation's).
      if (o.controlDir !== null) o.quantities = counts;
      else o.formation = new Map([...(o.formation ?? []), ...counts]);
    }
  }
  return o;
}

function apply(o: DynoOptions, key: string, name: string, value: string | undefined): void {
  const v = value as string;
  switch (key) {
    case 'procfile':
      o.procfile = v;
      return;
    case 'env':
      o.envFile = v;
      return;
    case 'formation':
      try {
        o.formation = parseFormation(v);
        o.formationText = v;
      } catch (err) {
        if (err instanceof FormationError) throw new UsageError(`--formation: ${err.message}`);
        throw err;
      }
      return;
    case 'control-dir':
      if (v === '') throw new UsageError(`${name} expects a directory`);
      o.controlDir = v;
      return;
    case 'config':
      if (v === '') throw new UsageError(`${name} expects a file`);
      o.config = v;
      return;
    case 'state-dir':
      o.stateDir = v;
      return;
    case 'http':
      o.http = { ...parseHttpAddress(name, v), text: v };
      return;
    case 'http-token-file':
      if (v === '') throw new UsageError(`${name} expects a file`);
      o.httpTokenFile = v;
      return;
    case 'bind':
      try {
        parseBindSpec(v);
      } catch (err) {
        if (err instanceof BindError) throw new UsageError(err.message);
        throw err;
      }
      o.bind = v;
      return;
    case 'socket-path':
      if (HSUP_DRIVERS.includes(v)) {
        throw new UsageError(`${name} is the control socket path; to choose hsup's dyno driver use --dynodriver ${v}`);
      }
      if (v === '') throw new UsageError(`${name} expects a path`);
      o.socketPath = v;
      return;
    case 'stop-signal': {
      const sig = normalizeSignal(v);
      if (!sig || sig === 'SIGKILL' || sig === 'SIGSTOP') {
        throw new UsageError(`${name} expects a signal name that can be caught (e.g. TERM, INT, USR2), got '${v}'`);
      }
      o.stopSignal = sig;
      return;
    }
    case 'oneshot':
      o.oneshot = true;
      return;
    case 'start-number':
      if (!/^\d+$/.test(v) || Number(v) > 1_000_000) throw new UsageError(`${name} expects an integer from 0 to 1000000, got '${v}'`);
      o.startNumber = Number(v);
      return;
    case 'dynodriver':
      if (v === 'simple') return;
      if (HSUP_DRIVERS.includes(v)) {
        throw new UsageError(`${name} ${v}: not supported (containers are out of scope); only 'simple' is`);
      }
      throw new UsageError(`${name}: unknown dyno driver '${v}' (only 'simple' is supported)`);
    case 'ack-mode':
      o.ackMode = v === 'manual' ? { kind: 'manual' } : { kind: 'timer', seconds: seconds(name, v, true) };
      return;
    case 'ack-timeout':
      o.ackTimeoutSec = seconds(name, v, false);
      return;
    case 'signal-timeout':
      o.signalTimeoutSec = seconds(name, v, true);
      return;
    case 'kill-children-on-exit':
      o.killChildrenOnExit = true;
      return;
    case 'verbose':
      o.verbosity = Math.max(0, o.verbosity - 1);
      return;
    case 'quiet':
      o.verbosity = Math.min(3, o.verbosity + 1);
      return;
    case 'help':
      o.help = true;
      return;
    case 'version':
      o.version = true;
      return;
  }
}

/** --http ADDR:PORT: an IPv4 address, [IPv6] or a host name, and a port (0: any free one). */
export function parseHttpAddress(name: string, v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`${name} expects ADDR:PORT (e.g. 127.0.0.1:3443, [::1]:3443), got '${v}'`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export function dynoHelpText(): string {
  const label = (s: DynoOptionSpec) => (s.short ? `-${s.short}, ` : '    ') + `--${s.long}` + (s.arg ? ` ${s.arg}` : '');
  const width = Math.max(...DYNO_OPTIONS.map((s) => label(s).length));
  const lines = [
    'Usage: einhyrningsins-dyno start [OPTIONS] [TYPE...]',
    '       einhyrningsins-dyno start --config FILE [OPTIONS]',
    '       einhyrningsins-dyno run [OPTIONS] [--] COMMAND [ARGS...]',
    '',
    "Runs an app's process types (a Procfile, hsup's control directory, or the programs of a",
    "supervisord-style --config file) with einhorn's socket handling and zero-downtime",
    'rolling upgrades per type.',
    '',
    'Options:',
    ...DYNO_OPTIONS.map((s) => `  ${label(s).padEnd(width)}  ${s.help}${s.for.length === 1 ? ` (${s.for[0]})` : ''}`),
    '',
    'Control: einhyrningsinsctl -d PATH state|status|upgrade [TYPE...]|scale TYPE=N...|inc TYPE|dec TYPE|signal SIG [TYPE...]|reload|die',
    '  with --config also: status [NAME...], start|stop|restart NAME|GROUP:*|GROUP:PROCESS|all, add|remove NAME,',
    '  reread, update, reopen, tail [-f] NAME [stdout|stderr], signal SIG NAME...',
    "HTTP on the control socket (and on --http with a token): minisv's GET /, GET /NAME/stop|restart|term|hup|kill|run|rotate|status,",
    "  POST /NAME (a JSON task; --config), DELETE /NAME (--config); hsup's GET /health, GET /status, POST /control/stop.",
    '--config FILE.json reads minisv\'s JSON config (tasks, logdir, logfileprefix, logsuffixdate, logdate, logreopen).',
    'See einhyrningsins-dyno(1).',
  ];
  return lines.join('\n') + '\n';
}
