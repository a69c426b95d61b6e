/** The dyno driver's control commands (einhorn's protocol; process types name the groups). */
import type { Request } from '@einhyrningsins/protocol';
import { normalizeSignal, refuseForeignWorkerCommand, type ControlConnection, type Logger, type ReplyFields, type Runtime } from '@einhyrningsins/master';
import { parseScale } from './formation.js';
import { TYPE_NAME } from './procfile.js';
import { VERSION } from './version.js';

/** What the commands may use of the driver. */
export interface DriverCommands {
  readonly log: Logger;
  readonly runtime: Runtime<unknown>;
  readonly stopSignal: string;
  route(conn: ControlConnection, req: Request): number;
  upgradeApp(types: readonly string[], replyTo: number | undefined, mode: 'smooth' | 'fleet'): void;
  shutdown(signal: string, replyTo: number | undefined): void;
  state(): { text: string; state: unknown };
  status(): { text: string; state: unknown };
}

interface Command {
  help?: string;
  run(d: DriverCommands, conn: ControlConnection, req: Request): void;
}

const say = (conn: ControlConnection, req: Request, message: string, extra: Omit<ReplyFields, 'message'> = {}) => conn.send({ message, ...extra }, req.id);
const refuse = (conn: ControlConnection, req: Request, message: string) => conn.send({ message, error: true }, req.id);

function foreign(d: DriverCommands, conn: ControlConnection, req: Request): boolean {
  return req.pid !== undefined && refuseForeignWorkerCommand((level, m) => d.log.log(level, m), conn, req, req.pid);
}

function ackOrPing(d: DriverCommands, conn: ControlConnection, req: Request, ping: boolean): void {
  if (foreign(d, conn, req)) return;
  const pid = req.pid;
  if (pid === undefined) d.log.warn('worker:ack or worker:ping without a valid pid');
  else d.runtime.feed(ping ? { type: 'ping', pid, requestId: req.requestId ?? null } : { type: 'ack', pid });
  conn.end();
}

function upgrade(d: DriverCommands, conn: ControlConnection, req: Request, mode: 'smooth' | 'fleet'): void {
  for (const t of req.args) {
    if (!TYPE_NAME.test(t)) return refuse(conn, req, `Invalid process type ${JSON.stringify(t)}`);
  }
  d.log.info(`Asked to upgrade ${req.args.length ? req.args.join(', ') : 'every process type'}: reading the app again`);
  d.upgradeApp([...new Set(req.args)], d.route(conn, req), mode);
}

const COMMANDS: Readonly<Record<string, Command>> = {
  'worker:ack': { run: (d, conn, req) => ackOrPing(d, conn, req, false) },
  'worker:ping': { run: (d, conn, req) => ackOrPing(d, conn, req, true) },
  ehlo: {
    run(_d, conn, req) {
      say(conn, req, `Welcome, ${req.user ?? 'stranger'}! You are speaking to Einhorn Master Process ${process.pid} (einhyrningsins-dyno).\nThis is einhyrningsins-dyno ${VERSION}.\n`);
    },
  },
  help: {
    help: 'Print out available commands',
    run: (_d, conn, req) => say(conn, req, helpMessage()),
  },
  state: {
    help: 'The state of every process type, as JSON (also in the `state` field)',
    run(d, conn, req) {
      const { text, state } = d.state();
      say(conn, req, text, { state });
    },
  },
  status: {
    help: 'Summary of every process type and its processes',
    run(d, conn, req) {
      const { text, state } = d.status();
      say(conn, req, text, { state });
    },
  },
  version: {
    help: 'Print the version of the driver',
    run: (_d, conn, req) => say(conn, req, `einhyrningsins-dyno ${VERSION}`),
  },
  upgrade: {
    help: 'Roll the named process types (all when none) smoothly; waits for every one (args: [TYPE...])',
    run: (d, conn, req) => upgrade(d, conn, req, 'smooth'),
  },
  upgrade_fleet: {
    help: 'Roll the named process types (all when none) a fleet at a time (args: [TYPE...])',
    run: (d, conn, req) => upgrade(d, conn, req, 'fleet'),
  },
  scale: {
    help: 'Set the number of processes of types (args: TYPE=N [TYPE=N...])',
    run(d, conn, req) {
      if (req.args.length === 0) return refuse(conn, req, 'scale expects TYPE=N [TYPE=N...]');
      const wanted = new Map<string, number>();
      for (const a of req.args) {
        try {
          const s = parseScale(a);
          wanted.set(s.type, s.quantity);
        } catch (err) {
          return refuse(conn, req, `scale: ${(err as Error).message}`);
        }
      }
      d.runtime.feed({
        type: 'request',
        targets: [...wanted.keys()],
        request: (type) => ({ type: 'setWorkers', count: wanted.get(type) as number }),
        replyTo: d.route(conn, req),
      });
    },
  },
  inc: {
    help: 'One more process of a type (args: TYPE)',
    run: (d, conn, req) => incDec(d, conn, req, 'inc'),
  },
  dec: {
    help: 'One process fewer of a type (args: TYPE)',
    run: (d, conn, req) => incDec(d, conn, req, 'dec'),
  },
  signal: {
    help: 'Send signals to every process (args: SIG1 [SIG2 ...])',
    run(d, conn, req) {
      if (req.args.length === 0) return refuse(conn, req, 'No signal given (args: SIG1 [SIG2 ...])');
      const signals: string[] = [];
      for (const a of req.args) {
        const s = normalizeSignal(a);
        if (!s) return refuse(conn, req, `Invalid signal: ${JSON.stringify(a)}`);
        signals.push(s);
      }
      d.runtime.feed({
        type: 'request',
        targets: 'every',
        request: { type: 'signal', signals },
        replyTo: d.route(conn, req),
        none: { message: 'No processes are running.', ok: true },
      });
    },
  },
  die: {
    help: 'Stop every process (SIGNAL, default the stop signal, SIGTERM) and exit once all are gone (args: [SIGNAL])',
    run(d, conn, req) {
      const first = req.args[0];
      const sig = first === undefined ? d.stopSignal : normalizeSignal(first);
      if (!sig) return refuse(conn, req, `Invalid signal: ${JSON.stringify(first)}`);
      d.log.info(`Asked to stop (die ${sig}): stopping every process`);
      d.shutdown(sig, d.route(conn, req));
    },
  },
};

function incDec(d: DriverCommands, conn: ControlConnection, req: Request, how: 'inc' | 'dec'): void {
  if (req.args.length !== 1) {
    return refuse(conn, req, `${how} expects one process type (running: ${d.runtime.names().join(', ') || 'none'})`);
  }
  d.runtime.feed({ type: 'request', targets: req.args, request: { type: how }, replyTo: d.route(conn, req) });
}

export function helpMessage(): string {
  const rows = Object.entries(COMMANDS)
    .filter(([, c]) => c.help)
    // Code-unit order, not localeCompare: its ICU collator costs a master 2.9 MB of RSS.
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, c]) => `${name}: ${c.help}`);
  return `You are speaking to the einhyrningsins-dyno command socket. You can run the following commands:\n\n${rows.join('\n')}\n`;
}

export function dispatchDriver(d: DriverCommands, conn: ControlConnection, req: Request): void {
  const cmd = Object.hasOwn(COMMANDS, req.command) ? COMMANDS[req.command] : undefined;
  if (!cmd) {
    conn.send({ message: `Unrecognized command: ${JSON.stringify(req.command)}\n\n${helpMessage()}`, error: true }, req.id);
    return;
  }
  cmd.run(d, conn, req);
}
