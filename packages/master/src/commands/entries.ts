/** The entries of the command table (table.ts): einhorn's commands, the master's, the dyno driver's. */
import type { ConfigChanges, GroupRequest, Targets } from '@einhyrningsins/core';
import { describeValue, type Request } from '@einhyrningsins/protocol';
import type { ControlConnection } from '../control-server.js';
import { normalizeSignal } from '../signals.js';
import { configChanges, CONFIG_KEY_NAMES } from './config-keys.js';
import { CommandTable, refuse, say, type CommandEntry, type CommandHost } from './table.js';

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

function ackOrPing(host: CommandHost, conn: ControlConnection, req: Request): void {
  if (req.pid === undefined) {
    host.log('warn', `${req.command} without a valid pid: ${describeValue(req.raw['pid'])}`);
  } else if (refuseForeignWorkerCommand((l, m) => host.log(l, m), conn, req, req.pid)) {
    return;
  } else if (req.command === 'worker:ack') host.feed({ type: 'ack', pid: req.pid });
  else host.feed({ type: 'ping', pid: req.pid, requestId: req.requestId ?? null });
  conn.end();
}

/** Ask the named groups (none named: `all`), one final reply on this request's route. */
function ask(host: CommandHost, conn: ControlConnection, req: Request, groups: readonly string[], all: Targets, request: GroupRequest, none?: { message: string; ok: boolean }) {
  host.feed({ type: 'request', targets: groups.length ? groups : all, request, replyTo: host.route(conn, req), ...(none ? { none } : {}) });
}

/** Leading words that are signals are signal's own; the rest name groups. */
function leadingSignals(args: readonly string[]): number {
  let n = 0;
  while (n < args.length && normalizeSignal(args[n] as string)) n += 1;
  return n === 0 ? Math.min(1, args.length) : n;
}

const BOTH = ['master', 'dyno'] as const;
const MASTER = ['master'] as const;
const DYNO = ['dyno'] as const;

/** A command over a config file's programs, named as supervisorctl names them. */
function programCommand(name: 'start' | 'stop' | 'restart', help: string, usage: string): CommandEntry {
  return {
    programs: ['dyno'],
    help: { dyno: `${help} (args: NAME|GROUP:*|all ...)` },
    arity: [0, 0, usage],
    groups: 'optional',
    run(h, conn, req, groups) {
      if (!h.programs) return refuse(conn, req, `${name} is for programs of a --config file; use ${name === 'restart' ? 'upgrade' : 'scale'}`);
      if (groups.length === 0) return refuse(conn, req, `${name}: missing argument; usage: ${usage}`);
      h.programs[name](groups, conn, req);
    },
  };
}

/** supervisorctl's add/remove: process group names ([group:x], or a program's own). */
function groupCommand(name: 'add' | 'remove', help: string, usage: string): CommandEntry {
  return {
    programs: ['dyno'],
    help: { dyno: `${help} (args: NAME ...)` },
    arity: [0, Infinity, usage],
    run(h, conn, req) {
      if (!h.programs) return refuse(conn, req, `${name} is for programs of a --config file`);
      if (req.args.length === 0) return refuse(conn, req, `${name}: missing argument; usage: ${usage}`);
      h.programs[name](req.args, conn, req);
    },
  };
}

const ENTRIES: Readonly<Record<string, CommandEntry>> = {
  'worker:ack': { programs: BOTH, arity: [0, Infinity, ''], run: (h, conn, req) => ackOrPing(h, conn, req) },
  'worker:ping': { programs: BOTH, arity: [0, Infinity, ''], run: (h, conn, req) => ackOrPing(h, conn, req) },
  ehlo: { programs: BOTH, arity: [0, 0, 'ehlo'], run: (h, conn, req) => say(conn, req, h.ehlo(req.user ?? 'stranger')) },
  help: { programs: BOTH, help: 'Print out available commands', arity: [0, 0, 'help'], run: (h, conn, req) => say(conn, req, helpMessage(h.program)) },
  state: {
    programs: BOTH,
    help: { master: "Get a dump of the master's current state (einhorn's format)", dyno: 'The state of every process type, as JSON (also in the `state` field)' },
    arity: [0, 0, 'state'],
    run(h, conn, req) {
      const { text, state } = h.state();
      say(conn, req, text, { state });
    },
  },
  status: {
    programs: BOTH,
    help: { master: 'Summary of the workers and settings', dyno: 'Summary of every process type and its processes' },
    arity: { master: [0, 0, 'status'], dyno: [0, Infinity, 'status [NAME|GROUP:*|GROUP:PROCESS ...]'] },
    run(h, conn, req) {
      if (req.args.length > 0) {
        // supervisorctl's status NAME...: only those processes (a config file's).
        if (!h.programs) return refuse(conn, req, 'status takes names only for programs of a --config file');
        const r = h.programs.statusOf(req.args);
        return 'error' in r ? refuse(conn, req, r.error) : say(conn, req, r.text);
      }
      const { text, state } = h.status();
      say(conn, req, text, { state });
    },
  },
  version: {
    programs: BOTH,
    help: { master: 'Print the version of the master', dyno: 'Print the version of the driver' },
    arity: [0, 0, 'version'],
    run: (h, conn, req) => say(conn, req, h.versionText()),
  },
  inc: {
    programs: BOTH,
    help: { master: 'Increment the number of child processes', dyno: 'One more process of a type (args: TYPE)' },
    arity: { master: [0, 0, 'inc'], dyno: [0, 0, 'inc TYPE'] },
    groups: { master: 'optional', dyno: 'one' },
    run: (h, conn, req, groups) => ask(h, conn, req, groups, 'active', { type: 'inc' }),
  },
  dec: {
    programs: BOTH,
    help: { master: 'Decrement the number of child processes', dyno: 'One process fewer of a type (args: TYPE)' },
    arity: { master: [0, 0, 'dec'], dyno: [0, 0, 'dec TYPE'] },
    groups: { master: 'optional', dyno: 'one' },
    run: (h, conn, req, groups) => ask(h, conn, req, groups, 'active', { type: 'dec' }),
  },
  set_workers: {
    programs: MASTER,
    help: 'Set the number of child processes (args: N)',
    arity: [0, 1, 'set_workers N'], // none: its own "Invalid count" (einhorn's text)
    groups: 'optional',
    run(h, conn, req, groups) {
      const word = req.args[0];
      if (word === undefined || !/^\d+$/.test(word)) return refuse(conn, req, `Invalid count: '${word ?? ''}'. Must be a non-negative integer.`);
      ask(h, conn, req, groups, 'active', { type: 'setWorkers', count: Number(word) });
    },
  },
  scale: {
    programs: DYNO,
    help: 'Set the number of processes of types (args: TYPE=N [TYPE=N...])',
    arity: [0, Infinity, 'scale TYPE=N [TYPE=N...]'], // none: its own message
    run(h, conn, req) {
      if (req.args.length === 0) return refuse(conn, req, 'scale expects TYPE=N [TYPE=N...]');
      const wanted = new Map<string, number>();
      for (const a of req.args) {
        try {
          const { type, quantity } = (h.parseScale as NonNullable<CommandHost['parseScale']>)(a);
          wanted.set(type, quantity);
        } catch (err) {
          return refuse(conn, req, `scale: ${(err as Error).message}`);
        }
      }
      h.feed({ type: 'request', targets: [...wanted.keys()], request: (g) => ({ type: 'setWorkers', count: wanted.get(g) as number }), replyTo: h.route(conn, req) });
    },
  },
  quieter: {
    programs: MASTER,
    help: 'Decrease verbosity',
    arity: [0, 0, 'quieter'],
    run(h, conn, req) {
      h.verbosity = Math.min(3, h.verbosity + 1);
      say(conn, req, `Verbosity set to ${h.verbosity}`);
    },
  },
  louder: {
    programs: MASTER,
    help: 'Increase verbosity',
    arity: [0, 0, 'louder'],
    run(h, conn, req) {
      h.verbosity = Math.max(0, h.verbosity - 1);
      say(conn, req, `Verbosity set to ${h.verbosity}`);
    },
  },
  upgrade: {
    programs: BOTH,
    help: {
      master: 'Upgrade all workers smoothly: each new worker that acks retires an old one (with --reexec-as: re-execute the master first, as reload)',
      dyno: 'Roll the named process types (all when none) smoothly; waits for every one (args: [TYPE...])',
    },
    arity: [0, 0, 'upgrade'],
    groups: 'optional',
    run: (h, conn, req, groups) => h.upgrade(groups, 'smooth', conn, req),
  },
  restart: programCommand('restart', "Restart programs of a --config file: a rolling upgrade of each, a new process up before an old one stops", 'restart NAME|GROUP:*|all ...'),
  start: programCommand('start', 'Start programs of a --config file; answers once each process is RUNNING or FATAL', 'start NAME|GROUP:*|all ...'),
  stop: programCommand('stop', 'Stop programs of a --config file (each with its stopsignal); answers once each process is gone', 'stop NAME|GROUP:*|all ...'),
  reopen: {
    programs: ['dyno'],
    help: { dyno: 'Reopen the log files of a --config file (after logrotate renamed them; also SIGUSR2)' },
    arity: [0, 0, 'reopen'],
    run(h, conn, req) {
      if (!h.programs) return refuse(conn, req, 'reopen is for the log files of a --config file');
      h.programs.reopen(conn, req);
    },
  },
  reread: {
    programs: ['dyno'],
    help: { dyno: 'Read the --config file again and say what changed, changing nothing' },
    arity: [0, 0, 'reread'],
    run(h, conn, req) {
      if (!h.programs) return refuse(conn, req, 'reread is for a --config file; upgrade reads a Procfile again');
      h.programs.reread(conn, req);
    },
  },
  update: {
    programs: ['dyno'],
    help: { dyno: 'Apply the --config file: added programs start, removed ones stop, changed ones roll, the others are untouched' },
    arity: [0, 0, 'update'],
    run(h, conn, req) {
      if (!h.programs) return refuse(conn, req, 'update is for a --config file; upgrade reads a Procfile again');
      h.programs.update(conn, req);
    },
  },
  add: groupCommand('add', 'Start process groups of the --config file that are not running yet (what reread calls available), nothing else', 'add NAME ...'),
  remove: groupCommand('remove', 'Take stopped process groups out of the running config (their sockets close); stop them first', 'remove NAME ...'),
  tail: {
    programs: ['dyno'],
    help: { dyno: "The end of a --config process's log file; -f: and every line written later (args: [-f] NAME [stdout|stderr])" },
    arity: [1, 3, 'tail [-f] NAME [stdout|stderr]'],
    run(h, conn, req) {
      if (!h.programs) return refuse(conn, req, 'tail is for the log files of a --config file');
      h.programs.tail(req.args, conn, req);
    },
  },
  upgrade_fleet: {
    programs: BOTH,
    help: {
      master: 'Upgrade all workers a fleet at a time: old workers retire once every new one acked',
      dyno: 'Roll the named process types (all when none) a fleet at a time (args: [TYPE...])',
    },
    arity: [0, 0, 'upgrade_fleet'],
    groups: 'optional',
    run: (h, conn, req, groups) => h.upgrade(groups, 'fleet', conn, req),
  },
  signal: {
    programs: BOTH,
    help: { master: 'Send one or more signals to all workers (args: SIG1 [SIG2 ...])', dyno: 'Send signals to every process, or to those of the named types (args: SIG1 [SIG2 ...] [TYPE...])' },
    arity: [0, Infinity, 'signal SIG [SIG...]'], // none: its own message
    groups: 'optional',
    own: leadingSignals,
    run(h, conn, req, groups) {
      if (req.args.length === 0) return refuse(conn, req, 'No signal given (args: SIG1 [SIG2 ...])');
      const signals: string[] = [];
      for (const a of req.args) {
        const s = normalizeSignal(a);
        if (!s) return refuse(conn, req, `Invalid signal: ${JSON.stringify(a)}`);
        signals.push(s);
      }
      if (h.programs && groups.length) {
        const r = h.programs.resolveNames(groups);
        if ('error' in r) return refuse(conn, req, r.error);
        // GROUP:PROCESS: only that process of its program.
        const slots = r.slots;
        const request = (g: string): GroupRequest => ({ type: 'signal', signals, ...(slots[g] ? { slots: slots[g] } : {}) });
        return h.feed({ type: 'request', targets: r.names, request, replyTo: h.route(conn, req) });
      }
      ask(h, conn, req, groups, 'every', { type: 'signal', signals }, { message: 'No processes are running.', ok: true });
    },
  },
  die: {
    programs: BOTH,
    help: {
      master: 'Send SIGNAL (default: the stop signal, SIGUSR2) to all workers, stop spawning new ones, and exit once all workers die (args: [SIGNAL])',
      dyno: 'Stop every process (SIGNAL, default the stop signal, SIGTERM) and exit once all are gone (args: [SIGNAL])',
    },
    arity: [0, 1, 'die [SIGNAL]'],
    run(h, conn, req) {
      const first = req.args[0];
      const sig = first === undefined ? h.stopSignal : normalizeSignal(first);
      if (!sig) return refuse(conn, req, `Invalid signal: ${JSON.stringify(first)}`);
      h.die(sig, h.route(conn, req));
    },
  },
  reload: {
    programs: BOTH,
    help: {
      master: 'Re-execute the master in place (new code, --reexec-as environment), keeping its sockets and workers; then `upgrade` replaces the workers',
      dyno: 'Re-execute the driver in place (new code), keeping its sockets and every process of every type',
    },
    arity: [0, 0, 'reload'],
    run: (h, conn, req) => h.reload(conn, req),
  },
  config: {
    programs: MASTER,
    help: 'Merge in config options, a YAML hash (args: "{seconds: 2, signal_timeout: 10}"); keys: ' + `${CONFIG_KEY_NAMES.join(', ')}`,
    arity: [1, Infinity, 'config "{KEY: VALUE, ...}"'],
    run(h, conn, req) {
      const r = configChanges(req.args.join(' '));
      if ('error' in r) return refuse(conn, req, r.error);
      if (r.verbosity !== null) h.verbosity = r.verbosity;
      const changes: ConfigChanges = r.changes;
      if (Object.keys(changes).length === 0) return say(conn, req, `Successfully merged in config: verbosity=${r.verbosity}`);
      ask(h, conn, req, [], 'active', { type: 'configure', changes });
    },
  },
};

export const COMMAND_TABLE = new CommandTable(ENTRIES);

const HEADERS = {
  master: 'You are speaking to the Einhorn command socket. You can run the following commands:',
  dyno: 'You are speaking to the einhyrningsins-dyno command socket. You can run the following commands:',
} as const;

export function helpMessage(program: 'master' | 'dyno' = 'master'): string {
  return COMMAND_TABLE.helpMessage(program, HEADERS[program]);
}

export function dispatch(host: CommandHost, conn: ControlConnection, req: Request): void {
  COMMAND_TABLE.dispatch(host, conn, req, HEADERS[host.program]);
}
