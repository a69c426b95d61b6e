/**
 * The interactive shell (einhornsh's): one command line at a time, `;` between
 * commands. Ctrl-C while a command streams (an upgrade) or watches stops
 * following it and comes back to the prompt (the master goes on); Ctrl-C at the
 * prompt drops the line typed, as bash does; Ctrl-D or `quit` leaves.
 */
import { existsSync, readFileSync, appendFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { ControlClient } from './client.js';
import { COMMAND_NAMES, runOne, type Output } from './run-one.js';
import { complete } from './ui.js';
import { splitCommands } from './words.js';

export async function shell(path: string, connect: () => Promise<ControlClient>, out: Output, timeoutMs: number): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  const histFile = join(homedir(), '.einhyrningsinsctl_history');
  const history = interactive && existsSync(histFile) ? readFileSync(histFile, 'utf8').split('\n').filter(Boolean).reverse().slice(0, 500) : [];
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
    completer: (line: string) => complete(line, COMMAND_NAMES),
  });
  let status = 0;
  /** The command running now (Ctrl-C aborts it), or null at the prompt. */
  let current: AbortController | null = null;
  rl.on('SIGINT', () => {
    if (current) {
      current.abort();
      return;
    }
    // At the prompt: forget the line, show ^C, a fresh prompt (bash's behaviour).
    process.stdout.write('^C\n');
    const state = rl as unknown as { line: string; cursor: number };
    state.line = '';
    state.cursor = 0;
    rl.prompt();
  });
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  let closed = false;
  rl.on('line', (l) => {
    lines.push(l);
    wake?.();
  });
  rl.on('close', () => {
    closed = true;
    wake?.();
  });
  if (interactive) rl.prompt();
  for (;;) {
    if (lines.length === 0) {
      if (closed) break;
      await new Promise<void>((r) => (wake = r));
      wake = null;
      continue;
    }
    const line = lines.shift() as string;
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
      const ac = new AbortController();
      current = ac;
      try {
        const c = await ensure();
        const width = interactive ? process.stdout.columns || 80 : undefined;
        const ok = await runOne(c, words, out, { signal: ac.signal, ...(width ? { width } : {}) });
        if (ac.signal.aborted) {
          process.stderr.write(`\nStopped following ${words[0]}; the master goes on.\n`);
          client = null; // that connection was closed to stop the stream
          break;
        }
        if (ok !== true) status = 1;
      } catch (err) {
        process.stderr.write(`einhyrningsinsctl: ${(err as Error).message}\n`);
        client = null;
        status = 1;
      } finally {
        current = null;
      }
    }
    if (quit) break;
    // Lines typed while a command ran are dropped when it was interrupted.
    if (interactive) rl.prompt();
  }
  rl.close();
  (client as ControlClient | null)?.close();
  if (interactive) process.stderr.write('\n');
  return interactive ? 0 : status;
}
