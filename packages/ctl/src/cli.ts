import { existsSync, lstatSync, readFileSync, appendFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { ControlClient, ClientError, type Reply } from './client.js';
import { defaultDynoSocketPath, defaultSocketPath } from '@einhyrningsins/protocol';
import { splitCommands } from './words.js';
import { waitOldGone, waitReady } from './waits.js';

export const VERSION = '0.1.0';

/** The commands offered by tab completion (the master's `help` adds any others). */
export const COMMAND_NAMES = [
  'config', 'dec', 'die', 'ehlo', 'help', 'inc', 'louder', 'quieter', 'reload', 'set_workers',
  'signal', 'state', 'status', 'upgrade', 'upgrade_fleet', 'version', 'wait-ready', 'quit', 'exit',
];

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
    '1 the command failed, 2 usage error, 3 no master answered.',
    '',
    'Options:',
  ];
  for (const s of CTL_OPTIONS) {
    const label = `  ${s.short ? `-${s.short}, ` : ''}--${s.long}${s.arg ? ` ${s.arg}` : ''}`;
    lines.push(label.padEnd(30) + s.help);
  }
  lines.push(
    '',
    'Commands: upgrade [--wait-exit], upgrade_fleet, reload, inc, dec, set_workers N, state, status,',
    'signal SIG..., die [SIG], quieter, louder, help, version, ehlo; and wait-ready [--timeout S]',
    '(exit 0 once every wanted worker is up, 1 on timeout). See einhyrningsinsctl(1).',
  );
  return lines.join('\n') + '\n';
}


/** Did this final reply report a failure? (einhyrningsins sets `error`; einhorn's texts are matched.) */
export function failed(reply: Reply): boolean {
  if (reply.error === true) return true;
  return /^(Unrecognized command|Invalid (signal|count)|No "command" parameter|Could not parse command|Args must be|No args provided|Error while processing)/.test(
    reply.message,
  );
}

class Output {
  constructor(private readonly json: boolean) {}
  reply(r: Reply): void {
    if (this.json) {
      // The wire's field names: request_id (the decoder also offers it as requestId).
      const { requestId: _id, ...fields } = r;
      process.stdout.write(JSON.stringify(fields) + '\n');
      return;
    }
    if (r.message === '') return;
    process.stdout.write(r.message.endsWith('\n') ? r.message : `${r.message}\n`);
  }
}

async function runOne(client: ControlClient, words: string[], out: Output): Promise<boolean> {
  let [command, ...args] = words as [string, ...string[]];
  // `upgrade --wait-exit` (and upgrade_fleet): return only once the old workers are gone.
  const waitExit = (command === 'upgrade' || command === 'upgrade_fleet') && args.includes('--wait-exit');
  if (waitExit) args = args.filter((a) => a !== '--wait-exit');
  let ok = true;
  for await (const r of client.request(command, args, { user: process.env.USER ?? 'operator' })) {
    out.reply(r);
    if (!r.wait) ok = !failed(r);
  }
  if (ok && waitExit) ok = await waitOldGone(client, (line) => out.reply({ message: line, wait: false }));
  return ok;
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
    try {
      let ok = true;
      for (const words of batches) ok = (await runOne(client, words, out)) && ok;
      return ok ? 0 : 1;
    } catch (err) {
      process.stderr.write(`einhyrningsinsctl: ${(err as Error).message}\n`);
      return err instanceof ClientError ? 3 : 1;
    } finally {
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

async function shell(path: string, connect: () => Promise<ControlClient>, out: Output, timeoutMs: number): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  const histFile = join(homedir(), '.einhyrningsinsctl_history');
  const history = interactive && existsSync(histFile) ? readFileSync(histFile, 'utf8').split('\n').filter(Boolean).reverse().slice(0, 500) : [];
  const names = new Set(COMMAND_NAMES);
  let client: ControlClient | null = null;
  const ensure = async (): Promise<ControlClient> => {
    if (client && !client.closed) return client;
    // Keep trying (a master restarting) for --timeout, as the one-shot mode's connect does.
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        client = await connect();
        return client;
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  try {
    const c = await ensure();
    if (interactive) {
      for await (const r of c.request('ehlo', [], { user: process.env.USER ?? 'operator' })) out.reply(r);
      process.stderr.write(`Connected to ${path}. Enter 'help' for the commands, 'quit' or Ctrl-D to leave.\n`);
    }
  } catch (err) {
    process.stderr.write(`einhyrningsinsctl: ${(err as Error).message}\n`);
    return 3;
  }
  const rl: Interface = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: interactive,
    history,
    historySize: 500,
    prompt: 'einhyrningsins> ',
    completer: (line: string) => {
      const hits = [...names].filter((n) => n.startsWith(line.trim()));
      return [hits.length ? hits : [...names], line];
    },
  });
  let status = 0;
  if (interactive) rl.prompt();
  rl.on('SIGINT', () => rl.close());
  for await (const line of rl) {
    let batches: string[][];
    try {
      batches = splitCommands(line);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      if (interactive) rl.prompt();
      continue;
    }
    if (interactive && line.trim()) {
      try {
        appendFileSync(histFile, line + '\n', { mode: 0o600 });
      } catch {
        /* no history file */
      }
    }
    let quit = false;
    for (const words of batches) {
      if (words[0] === 'quit' || words[0] === 'exit') {
        quit = true;
        break;
      }
      try {
        let c = await ensure();
        if (c.closed) c = await ensure();
        const ok = await runOne(c, words, out);
        if (!ok) status = 1;
      } catch (err) {
        process.stderr.write(`einhyrningsinsctl: ${(err as Error).message}\n`);
        client = null;
        status = 1;
      }
    }
    if (quit) break;
    if (interactive) rl.prompt();
  }
  rl.close();
  (client as ControlClient | null)?.close();
  if (interactive) process.stderr.write('\n');
  return interactive ? 0 : status;
}
