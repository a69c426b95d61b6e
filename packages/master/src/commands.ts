import type { ConfigChanges, Event } from '@einhyrningsins/core';
import { describeValue, isPlainMapping, parseDocumentText, stripSymbolKeys, type Request } from '@einhyrningsins/protocol';
import type { ControlConnection, ReplyFields } from './control-server.js';
import { normalizeSignal } from './signals.js';
import { arityProblem } from './arity.js';

/** What a command may use of the running master. */
export interface CommandContext {
  /** Re-execute the master in place (einhorn's reload); replies on `conn` itself; then upgrade the workers if asked. */
  reload: (conn: ControlConnection, req: Request, then?: 'upgrade') => void;
  /** `upgrade` re-executes the master first (einhorn's, with --reexec-as). */
  upgradeReexecs: boolean;
  /** Feed an event to the core; replies it produces go to `route`. */
  feed(event: Event): void;
  /** A reply route for this request (streams only when the request has an id). */
  route(conn: ControlConnection, req: Request): number;
  stateYaml(): string;
  statusText(): string;
  stateObject(): unknown;
  masterPid: number;
  /** --stop-signal: what `die` sends by default. */
  stopSignal: string;
  version: string;
  commandName: string | null;
  verbosity: number;
  setVerbosity(v: number): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
}

interface Command {
  help?: string;
  run(ctx: CommandContext, conn: ControlConnection, req: Request): void;
}

const say = (conn: ControlConnection, req: Request, message: string, extra: Omit<ReplyFields, 'message'> = {}) =>
  conn.send({ message, ...extra }, req.id);

function signalsFrom(args: string[]): { ok: string[] } | { bad: string } {
  const ok: string[] = [];
  for (const a of args) {
    const s = normalizeSignal(a);
    if (!s) return { bad: a };
    ok.push(s);
  }
  return { ok };
}

interface ConfigKey {
  what: string;
  min: number;
  integer: boolean;
  apply: (c: ConfigChanges, n: number) => void;
}

/** What `config` may change at run time (einhorn merges any key; we check them). */
const CONFIG_KEYS: Readonly<Record<string, ConfigKey>> = {
  seconds: { what: 'seconds > 0', min: 0.001, integer: false, apply: (c, n) => (c.respawnDelayMs = n * 1000) },
  signal_timeout: {
    what: 'seconds, 0: never',
    min: 0,
    integer: false,
    apply: (c, n) => (c.signalTimeoutMs = n > 0 ? n * 1000 : null),
  },
  max_unacked: { what: 'an integer >= 1', min: 1, integer: true, apply: (c, n) => (c.maxUnacked = n) },
  max_upgrade_additional: { what: 'an integer >= 1', min: 1, integer: true, apply: (c, n) => (c.maxUpgradeAdditional = n) },
  retries: { what: 'an integer >= 0', min: 0, integer: true, apply: (c, n) => ((c.retries = n), (c.upgradeRetries = n)) },
  verbosity: { what: 'an integer 0-3', min: 0, integer: true, apply: () => undefined },
};

/**
 * worker:ack and worker:ping speak for a worker: only that process, one in its process
 * group, or its own -g connection may send them (SO_PEERCRED). Anyone else gets an error
 * reply and a log line; true when refused.
 */
export function refuseForeignWorkerCommand(
  log: (level: 'warn', message: string) => void,
  conn: ControlConnection,
  req: Request,
  pid: number,
): boolean {
  if (conn.mayActFor(pid)) return false;
  log('warn', `Refusing ${req.command} for pid ${pid} from ${conn.describePeer()}: neither that process nor in its process group`);
  conn.send({ message: `Refusing ${req.command} for pid ${pid}: not sent by that process or its process group`, error: true });
  conn.end();
  return true;
}

export const COMMANDS: Readonly<Record<string, Command>> = {
  'worker:ack': {
    run(ctx, conn, req) {
      if (req.pid === undefined) {
        ctx.log('warn', `worker:ack without a valid pid: ${describeValue(req.raw['pid'])}`);
      } else if (refuseForeignWorkerCommand(ctx.log, conn, req, req.pid)) {
        return;
      } else ctx.feed({ type: 'ack', pid: req.pid });
      conn.end();
    },
  },
  'worker:ping': {
    run(ctx, conn, req) {
      if (req.pid === undefined) {
        ctx.log('warn', `worker:ping without a valid pid: ${describeValue(req.raw['pid'])}`);
      } else if (refuseForeignWorkerCommand(ctx.log, conn, req, req.pid)) {
        return;
      } else ctx.feed({ type: 'ping', pid: req.pid, requestId: req.requestId ?? null });
      conn.end();
    },
  },
  ehlo: {
    run(ctx, conn, req) {
      const who = req.user ?? 'stranger';
      const name = ctx.commandName ? ` (${ctx.commandName})` : '';
      say(conn, req, `Welcome, ${who}! You are speaking to Einhorn Master Process ${ctx.masterPid}${name}.\nThis is einhyrningsins ${ctx.version}.\n`);
    },
  },
  help: {
    help: 'Print out available commands',
    run(_ctx, conn, req) {
      say(conn, req, helpMessage());
    },
  },
  state: {
    help: "Get a dump of the master's current state (einhorn's format)",
    run(ctx, conn, req) {
      say(conn, req, ctx.stateYaml(), { state: ctx.stateObject() });
    },
  },
  status: {
    help: 'Summary of the workers and settings',
    run(ctx, conn, req) {
      say(conn, req, ctx.statusText(), { state: ctx.stateObject() });
    },
  },
  version: {
    help: 'Print the version of the master',
    run(ctx, conn, req) {
      say(conn, req, `einhyrningsins ${ctx.version}`);
    },
  },
  inc: {
    help: 'Increment the number of child processes',
    run(ctx, conn, req) {
      ctx.feed({ type: 'inc', replyTo: ctx.route(conn, req) });
    },
  },
  dec: {
    help: 'Decrement the number of child processes',
    run(ctx, conn, req) {
      ctx.feed({ type: 'dec', replyTo: ctx.route(conn, req) });
    },
  },
  set_workers: {
    help: 'Set the number of child processes (args: N)',
    run(ctx, conn, req) {
      const word = req.args[0];
      if (word === undefined || !/^\d+$/.test(word)) {
        return say(conn, req, `Invalid count: '${word ?? ''}'. Must be a non-negative integer.`, { error: true });
      }
      ctx.feed({ type: 'setWorkers', count: Number(word), replyTo: ctx.route(conn, req) });
    },
  },
  quieter: {
    help: 'Decrease verbosity',
    run(ctx, conn, req) {
      ctx.setVerbosity(Math.min(3, ctx.verbosity + 1));
      say(conn, req, `Verbosity set to ${ctx.verbosity}`);
    },
  },
  louder: {
    help: 'Increase verbosity',
    run(ctx, conn, req) {
      ctx.setVerbosity(Math.max(0, ctx.verbosity - 1));
      say(conn, req, `Verbosity set to ${ctx.verbosity}`);
    },
  },
  upgrade: {
    help: 'Upgrade all workers smoothly: each new worker that acks retires an old one (with --reexec-as: re-execute the master first, as reload)',
    run(ctx, conn, req) {
      if (ctx.upgradeReexecs) return ctx.reload(conn, req, 'upgrade');
      ctx.feed({ type: 'upgrade', mode: 'smooth', replyTo: ctx.route(conn, req) });
    },
  },
  upgrade_fleet: {
    help: 'Upgrade all workers a fleet at a time: old workers retire once every new one acked',
    run(ctx, conn, req) {
      ctx.feed({ type: 'upgrade', mode: 'fleet', replyTo: ctx.route(conn, req) });
    },
  },
  signal: {
    help: 'Send one or more signals to all workers (args: SIG1 [SIG2 ...])',
    run(ctx, conn, req) {
      if (req.args.length === 0) return say(conn, req, 'No signal given (args: SIG1 [SIG2 ...])', { error: true });
      const sigs = signalsFrom(req.args);
      if ('bad' in sigs) return say(conn, req, `Invalid signal: ${JSON.stringify(sigs.bad)}`, { error: true });
      ctx.feed({ type: 'signal', signals: sigs.ok, replyTo: ctx.route(conn, req) });
    },
  },
  die: {
    help: 'Send SIGNAL (default: the stop signal, SIGUSR2) to all workers, stop spawning new ones, and exit once all workers die (args: [SIGNAL])',
    run(ctx, conn, req) {
      const sigs = signalsFrom(req.args.slice(0, 1));
      if ('bad' in sigs) return say(conn, req, `Invalid signal: ${JSON.stringify(sigs.bad)}`, { error: true });
      ctx.feed({ type: 'shutdown', signal: sigs.ok[0] ?? ctx.stopSignal, replyTo: ctx.route(conn, req) });
    },
  },
  reload: {
    help: 'Re-execute the master in place (new code, --reexec-as environment), keeping its sockets and workers; then `upgrade` replaces the workers',
    run(ctx, conn, req) {
      ctx.reload(conn, req);
    },
  },
  config: {
    help:
      'Merge in config options, a YAML hash (args: "{seconds: 2, signal_timeout: 10}"); keys: ' +
      `${Object.keys(CONFIG_KEYS).join(', ')}`,
    run(ctx, conn, req) {
      const text = req.args.join(' ');
      if (text.trim() === '') return say(conn, req, 'Must pass in a YAML-encoded hash', { error: true });
      const parsed = parseDocumentText(text);
      if (!parsed.ok) return say(conn, req, 'Could not parse argument. Must be a YAML-encoded hash', { error: true });
      const hash = stripSymbolKeys(parsed.value);
      if (!isPlainMapping(hash)) return say(conn, req, `Parsed argument is not a hash: ${text}`, { error: true });
      const changes: ConfigChanges = {};
      let verbosity: number | null = null;
      for (const [key, value] of Object.entries(hash)) {
        const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
        if (!spec) return say(conn, req, `Unknown config key '${key}' (known: ${Object.keys(CONFIG_KEYS).join(', ')})`, { error: true });
        const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
        const tooBig = key === 'verbosity' && n > 3;
        if (!Number.isFinite(n) || n < spec.min || tooBig || (spec.integer && !Number.isInteger(n))) {
          return say(conn, req, `Invalid value for ${key}: ${describeValue(value)} (${spec.what})`, { error: true });
        }
        if (key === 'verbosity') verbosity = n;
        else spec.apply(changes, n);
      }
      if (verbosity !== null) ctx.setVerbosity(verbosity);
      if (Object.keys(changes).length === 0) return say(conn, req, `Successfully merged in config: verbosity=${verbosity}`);
      ctx.feed({ type: 'configure', changes, replyTo: ctx.route(conn, req) });
    },
  },
};

export function helpMessage(): string {
  const lines = Object.entries(COMMANDS)
    .filter(([, c]) => c.help)
    // Code-unit order, not localeCompare: its ICU collator costs a master 2.9 MB of RSS.
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, c]) => `${name}: ${c.help}`);
  return `You are speaking to the Einhorn command socket. You can run the following commands:\n\n${lines.join('\n')}\n`;
}

export function dispatch(ctx: CommandContext, conn: ControlConnection, req: Request): void {
  const cmd = Object.hasOwn(COMMANDS, req.command) ? COMMANDS[req.command] : undefined;
  if (!cmd) {
    conn.send({ message: `Unrecognized command: ${JSON.stringify(req.command)}\n\n${helpMessage()}`, error: true }, req.id);
    return;
  }
  const problem = arityProblem(req.command, req.args);
  if (problem) {
    conn.send({ message: problem, error: true }, req.id);
    return;
  }
  cmd.run(ctx, conn, req);
}
