import { lstatSync } from 'node:fs';
import { ControlClient, ClientError } from './client.js';
import { defaultDynoSocketPath, defaultSocketPath } from '@einhyrningsins/protocol';
import { splitCommands } from './words.js';
import { waitReady } from './waits.js';
import { shell } from './shell.js';
import { Output, runOne } from './run-one.js';

export { COMMAND_NAMES, failed } from './run-one.js';

export const VERSION = '0.1.0';

export class CtlUsageError extends Error {
  override name = 'CtlUsageError';
}

export interface CtlOptions {
  socketPath: string | null;
  commandName: string | null;
  execute: string | null;
  json: boolean;
  framing: 'json' | 'yaml';
  timeoutSec: number;
  help: boolean;
  version: boolean;
  command: string[];
}

export const CTL_OPTIONS: ReadonlyArray<{ short?: string; long: string; arg?: string; help: string }> = [
  { short: 'd', long: 'socket-path', arg: 'PATH', help: 'Control socket of the master (default $TMPDIR/einhorn.sock, or einhorn-NAME.sock with -c).' },
  { short: 'c', long: 'command-name', arg: 'NAME', help: 'Name the master was started with (-c), for the default socket path.' },
  { short: 'e', long: 'execute', arg: 'COMMANDS', help: 'Run COMMANDS ("upgrade", "signal HUP; state"), then exit.' },
  { long: 'json', help: 'Print each reply as one JSON object per line.' },
  { long: 'yaml-requests', help: 'Send requests in einhorn\'s escaped-YAML framing instead of JSON.' },
  { long: 'timeout', arg: 'SECONDS', help: 'Give up connecting after SECONDS (default 5).' },
  { short: 'h', long: 'help', help: 'Print this help and exit.' },
  { long: 'version', help: 'Print the version and exit.' },
];

export function parseCtlArgs(argv: readonly string[]): CtlOptions {
  const o: CtlOptions = {
    socketPath: null,
    commandName: null,
    execute: null,
    json: false,
    framing: 'json',
    timeoutSec: 5,
    help: false,
    version: false,
    command: [],
  };
  let i = 0;
  const value = (name: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = argv[++i];
    if (v === undefined) throw new CtlUsageError(`${name} expects a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const w = argv[i] as string;
    if (w === '--') {
      i += 1;
      break;
    }
    if (!w.startsWith('-') || w === '-') break;
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const name = eq > 0 ? w.slice(0, eq) : w.startsWith('--') ? w : w.slice(0, 2);
    const inline = eq > 0 ? w.slice(eq + 1) : !w.startsWith('--') && w.length > 2 ? w.slice(2) : undefined;
    switch (name) {
      case '-d':
      case '--socket-path':
        o.socketPath = value(name, inline);
        break;
      case '-c':
      case '--command-name':
        o.commandName = value(name, inline);
        break;
      case '-e':
      case '--execute':
        o.execute = value(name, inline);
        break;
      case '--json':
        o.json = true;
        break;
      case '--yaml-requests':
        o.framing = 'yaml';
        break;
      case '--timeout': {
        const v = value(name, inline);
        if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new CtlUsageError(`--timeout expects a number of seconds, got '${v}'`);
        o.timeoutSec = Number(v);
        break;
      }
      case '-h':
      case '--help':
        o.help = true;
        break;
      case '--version':
        o.version = true;
        break;
      default:
        throw new CtlUsageError(`unknown option '${name}' (see --help)`);
    }
  }
  o.command = argv.slice(i);
  if (o.execute !== null && o.command.length) throw new CtlUsageError('give either -e COMMANDS or a COMMAND, not both');
  return o;
}

export function ctlHelpText(): string {
  const lines = [
    'Usage: einhyrningsinsctl [OPTIONS] [COMMAND [ARGS...]]',
    '',
    'Sends COMMAND to a running einhyrningsins (or einhorn) master and prints the replies as',
    'they arrive; without a COMMAND, starts an interactive shell. Exit status: 0 success,',
    '1 the command failed, 2 usage error, 3 no master answered (or its socket belongs to',
    'neither root nor you, or a reply was over 64 MiB).',
    '',
    'Options:',
  ];
  for (const s of CTL_OPTIONS) {
    const label = `  ${s.short ? `-${s.short}, ` : ''}--${s.long}${s.arg ? ` ${s.arg}` : ''}`;
    lines.push(label.padEnd(30) + s.help);
  }
  lines.push(
    '',
    'Commands: upgrade [--wait-exit], upgrade_fleet, reload, inc, dec, set_workers N, state,',
    'status [--json] [--watch [--interval S]] (per worker: uptime, CPU%, RSS, restarts, last exit;',
    'top is status --watch), signal SIG..., die [SIG], quieter, louder, help, version, ehlo; and',
    'wait-ready [--timeout S] (exit 0 once every wanted worker is up, 1 on timeout).',
    'In the shell, Ctrl-C stops following a streamed or watched command. See einhyrningsinsctl(1).',
  );
  return lines.join('\n') + '\n';
}


/** `einhyrningsinsctl ...`; returns the exit status. */
// Node opens its inspector on SIGUSR1 (anyone local could then attach and run code as the
// user) unless the signal has a listener: the ctl ignores it.
process.on('SIGUSR1', () => undefined);

export async function ctlMain(argv: readonly string[]): Promise<number> {
  // `einhyrningsinsctl state | head`: a closed stdout ends the output quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });
  let o: CtlOptions;
  try {
    o = parseCtlArgs(argv);
  } catch (err) {
    if (!(err instanceof CtlUsageError)) throw err;
    process.stderr.write(`einhyrningsinsctl: ${err.message}\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(ctlHelpText());
    return 0;
  }
  if (o.version) {
    process.stdout.write(`einhyrningsinsctl ${VERSION}\n`);
    return 0;
  }
  const path = o.socketPath ?? defaultPath(o.commandName);
  const out = new Output(o.json);
  const connect = () => ControlClient.connect(path, { timeoutMs: o.timeoutSec * 1000, framing: o.framing });

  if (o.command[0] === 'wait-ready') {
    // `wait-ready [--timeout S]` (default 60 s): 0 once every wanted worker is up, 1 on timeout.
    const rest = o.command.slice(1);
    let secs = 60;
    if (rest.length) {
      const m = rest.length === 2 && rest[0] === '--timeout' ? rest[1] : /^--timeout=(.*)$/.exec(rest.join(' '))?.[1];
      if (m === undefined || !/^\d+(\.\d+)?$/.test(m) || Number(m) <= 0) {
        process.stderr.write('einhyrningsinsctl: usage: wait-ready [--timeout SECONDS]\n');
        return 2;
      }
      secs = Number(m);
    }
    const once = () => ControlClient.connect(path, { timeoutMs: 1000, framing: o.framing });
    return await waitReady(once, secs * 1000, (line) => out.reply({ message: line, wait: false }));
  }

  if (o.command.length || o.execute !== null) {
    let batches: string[][];
    try {
      batches = o.command.length ? [o.command] : splitCommands(o.execute as string);
    } catch (err) {
      process.stderr.write(`einhyrningsinsctl: ${(err as Error).message}\n`);
      return 2;
    }
    if (batches.length === 0) {
      process.stderr.write('einhyrningsinsctl: -e needs at least one command\n');
      return 2;
    }
    let client: ControlClient;
    try {
      client = await connect();
    } catch (err) {
      process.stderr.write(`einhyrningsinsctl: ${(err as Error).message}\n`);
      return 3;
    }
    // Ctrl-C (or TERM) during `status --watch` or a streamed command: stop following, exit 0.
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    try {
      let ok = true;
      for (const words of batches) {
        if (ac.signal.aborted) break;
        const r = await runOne(client, words, out, { signal: ac.signal, ...(process.stdout.isTTY ? { width: process.stdout.columns || 80 } : {}) });
        if (r === 'usage') return 2;
        ok = r && ok;
      }
      return ok ? 0 : 1;
    } catch (err) {
      process.stderr.write(`einhyrningsinsctl: ${(err as Error).message}\n`);
      return err instanceof ClientError ? 3 : 1;
    } finally {
      process.off('SIGINT', stop);
      client.close();
    }
  }
  return await shell(path, connect, out, o.timeoutSec * 1000);
}

const isSocket = (p: string) => {
  try {
    return lstatSync(p).isSocket();
  } catch {
    return false;
  }
};

/**
 * Without -d: the master's default socket (einhorn.sock), or, when there is
 * none and -c was not given, the dyno driver's (einhyrningsins-dyno.sock).
 */
export function defaultPath(commandName: string | null, env: NodeJS.ProcessEnv = process.env): string {
  const master = defaultSocketPath(commandName, env);
  if (commandName !== null || isSocket(master)) return master;
  const dyno = defaultDynoSocketPath(env);
  return isSocket(dyno) ? dyno : master;
}
