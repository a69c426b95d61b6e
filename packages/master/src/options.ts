/**
 * The command line of `einhyrningsins`, parsed the einhorn way: options are
 * read only up to the first word that is not an option (or up to `--`);
 * everything from there on is the program and its arguments.
 *
 * One table drives the parser, the --help text and the test that compares
 * them with the man page.
 */
import { normalizeSignal } from './signals.js';
import { OPTION_SPECS, parseSeconds, type OptionSpec } from './option-specs.js';

export { OPTION_SPECS, helpText, optionLabel, parseSeconds, type OptionSpec } from './option-specs.js';
import { parseHandoffs, type HandoffName } from './handoff-names.js';
import { watchPathProblem } from './release-checks.js';
import { parseFetchSize, parseFetchUrl } from './fetch-options.js';

// The module alone: --version and --help must not evaluate the whole protocol package.
import { shellWords } from '@einhyrningsins/protocol/words';

export class UsageError extends Error {
  override name = 'UsageError';
}

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
  /** --handover / --handover-gap: the pacing of a smooth upgrade's handover. */
  handoverAfterBoot: boolean;
  handoverGapSec: number;
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
    handoverAfterBoot: false,
    handoverGapSec: 0,
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
  const got = parseFetchUrl(v);
  if ('problem' in got) throw new UsageError(`${opt} ${got.problem}`);
  return got.url;
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
    case 'handover':
      if (v !== 'at-ack' && v !== 'after-boot') throw new UsageError(`${name} expects at-ack or after-boot, got '${v}'`);
      o.handoverAfterBoot = v === 'after-boot';
      return;
    case 'handover-gap':
      o.handoverGapSec = seconds(name, v);
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
      const n = parseFetchSize(v);
      if (n === null) throw new UsageError(`${name} expects a size in bytes (or with a K, M or G suffix), got '${v}'`);
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
