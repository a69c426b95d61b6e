/**
 * One command run against a master (or the dyno driver): its replies printed, its
 * client-side flags (status --json/--watch, upgrade --wait-exit) applied. Shared by the
 * command line (cli.ts) and the shell (shell.ts), which import it; it imports neither.
 */
import type { ControlClient, Reply } from './client.js';
import { waitOldGone } from './waits.js';
import { nearest, wrapText } from './ui.js';

/** The commands offered by tab completion (the master's `help` adds any others). */
export const COMMAND_NAMES = [
  'config', 'dec', 'die', 'ehlo', 'help', 'inc', 'louder', 'quieter', 'reload', 'set_workers',
  'signal', 'state', 'status', 'top', 'upgrade', 'upgrade_fleet', 'version', 'wait-ready', 'quit', 'exit',
  // einhyrningsins-dyno --config's (supervisorctl's)
  'start', 'stop', 'restart', 'add', 'remove', 'reread', 'update', 'reopen', 'tail',
];

/** Did this final reply report a failure? (einhyrningsins sets `error`; einhorn's texts are matched.) */
export function failed(reply: Reply): boolean {
  if (reply.error === true) return true;
  return /^(Unrecognized command|Invalid (signal|count)|No "command" parameter|Could not parse command|Args must be|No args provided|Error while processing)/.test(
    reply.message,
  );
}

export class Output {
  constructor(readonly json: boolean) {}
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

/** What a command run found: true ok, false failed, 'usage' refused before it was sent. */
export type RunResult = boolean | 'usage';

const sleepUnless = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** `status --watch` (and `top`): the status screen, redrawn in place every interval until interrupted. */
async function watchStatus(client: ControlClient, intervalMs: number, out: Output, json: boolean, signal: AbortSignal | undefined): Promise<boolean> {
  const tty = process.stdout.isTTY === true;
  while (!signal?.aborted) {
    let last: Reply | null = null;
    for await (const r of client.request('status', [], { user: process.env.USER ?? 'operator' })) last = r;
    if (signal?.aborted) break;
    if (!last || failed(last)) {
      if (last) out.reply(last);
      return false;
    }
    if (json) process.stdout.write(JSON.stringify(last.state ?? null) + '\n');
    else process.stdout.write((tty ? '\x1b[H\x1b[2J' : '') + last.message + (tty ? `\n(every ${intervalMs / 1000}s; Ctrl-C to stop)\n` : '\n'));
    await sleepUnless(intervalMs, signal);
  }
  return true;
}

/** Run one command line's words against a master; `signal` interrupts a streamed or watched command. */
export async function runOne(
  client: ControlClient,
  words: string[],
  out: Output,
  opts: { signal?: AbortSignal; width?: number } = {},
): Promise<RunResult> {
  let [command, ...args] = words as [string, ...string[]];
  const say = (line: string) => process.stderr.write(`einhyrningsinsctl: ${line}\n`);
  // `upgrade --wait-exit` (and upgrade_fleet): return only once the old workers are gone.
  const waitExit = (command === 'upgrade' || command === 'upgrade_fleet') && args.includes('--wait-exit');
  if (waitExit) args = args.filter((a) => a !== '--wait-exit');
  // Client-side flags of status: --json (the structured state), --watch/top (refresh in place).
  let json = false;
  let watch = command === 'top';
  let intervalMs = 1000;
  if (command === 'status' || command === 'top') {
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as string;
      if (a === '--json') json = true;
      else if (a === '--watch' || a === '-w') watch = true;
      else if (a === '--interval' || a.startsWith('--interval=')) {
        const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i];
        if (v === undefined || !/^\d+(\.\d+)?$/.test(v) || Number(v) < 0.1) {
          say(`${command} --interval expects a number of seconds >= 0.1, got '${v ?? ''}'`);
          return 'usage';
        }
        intervalMs = Number(v) * 1000;
        watch = true;
      } else rest.push(a);
    }
    args = rest;
  }
  // status NAME... (a dyno --config's processes, supervisorctl's) goes to the driver; not with the client-side flags.
  const flagged = json || watch;
  if ((command === 'top' || (command === 'status' && flagged)) && args.length) {
    say(`${command}: unknown argument '${args[0]}'; usage: ${command === 'top' ? 'top [--interval SECONDS]' : 'status [--json] [--watch [--interval SECONDS]] | status NAME...'}`);
    return 'usage';
  }
  const abort = () => client.close();
  opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    if (watch) return await watchStatus(client, intervalMs, out, json || out.json, opts.signal);
    let ok = true;
    for await (const r of client.request(command, args, { user: process.env.USER ?? 'operator' })) {
      if (!r.wait && failed(r) && !out.json && /^Unrecognized command/.test(r.message)) {
        // Not the whole help: the nearest commands.
        const hint = nearest(command, COMMAND_NAMES);
        out.reply({ message: `${r.message.split('\n')[0]}\n${hint.length ? `Did you mean ${hint.join(', ')}? ` : ''}('help' lists the commands)`, wait: false });
      } else if (json && command === 'status' && !r.wait) {
        process.stdout.write(JSON.stringify(r.state ?? null, null, 2) + '\n');
      } else if (command === 'help' && opts.width && !out.json) {
        out.reply({ ...r, message: wrapText(r.message, opts.width) });
      } else out.reply(r);
      if (!r.wait) ok = !failed(r);
    }
    if (ok && waitExit) ok = await waitOldGone(client, (line) => out.reply({ message: line, wait: false }));
    return ok;
  } catch (err) {
    if (opts.signal?.aborted) return true;
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', abort);
  }
}

