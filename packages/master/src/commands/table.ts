/**
 * The one command table of the runtime's control socket: every command of either
 * program is an entry (a program offers the entries that name it), with its help, its
 * arity and how its trailing words name groups. With groups that have names (the dyno
 * driver's process types), commands that act on workers take them (`upgrade web`,
 * `signal TERM worker`, `inc web`); with the master's one unnamed group there are none,
 * so every einhorn form, and every reply, is what it always was.
 */
import type { FleetEvent } from '@einhyrningsins/core';
import type { Request } from '@einhyrningsins/protocol';
import type { ControlConnection, ReplyFields } from '../control-server.js';

export type Program = 'master' | 'dyno';

/** What a command may use of the running program. */
export interface CommandHost {
  readonly program: Program;
  /** Its groups have names: trailing words of worker commands may name them. */
  readonly named: boolean;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
  feed(event: FleetEvent<unknown>): void;
  /** A reply route for this request (streams only when the request has an id). */
  route(conn: ControlConnection, req: Request): number;
  /** The wanted groups' names. */
  names(): string[];
  ehlo(user: string): string;
  /** `einhyrningsins 0.1.0` */
  versionText(): string;
  /** What `die` sends by default. */
  readonly stopSignal: string;
  state(): { text: string; state: unknown };
  status(): { text: string; state: unknown };
  /** Re-execute in place; replies on `conn` itself. */
  reload(conn: ControlConnection, req: Request): void;
  /** Roll these groups (none: every one); the dyno reads its app again first. */
  upgrade(groups: readonly string[], mode: 'smooth' | 'fleet', conn: ControlConnection, req: Request): void;
  die(signal: string, replyTo: number): void;
  verbosity: number;
  /** supervisorctl's commands over a config file's programs (the dyno driver's, with --config). */
  readonly programs?: ProgramCommands | null;
  /** `scale`'s TYPE=N (the dyno driver's); throws with the reason. */
  parseScale?(word: string): { type: string; quantity: number };
}

/** `start|stop|restart NAME|GROUP:*|all`, `reopen`, `tail NAME [stdout|stderr]`. */
export interface ProgramCommands {
  start(words: readonly string[], conn: ControlConnection, req: Request): void;
  stop(words: readonly string[], conn: ControlConnection, req: Request): void;
  restart(words: readonly string[], conn: ControlConnection, req: Request): void;
  reopen(conn: ControlConnection, req: Request): void;
  tail(args: readonly string[], conn: ControlConnection, req: Request): void;
  reread(conn: ControlConnection, req: Request): void;
  /** The programs NAME|GROUP:*|all name (for `signal`), or why not. */
  resolveNames(words: readonly string[]): { names: string[]; slots: Record<string, readonly number[]> } | { error: string };
  update(conn: ControlConnection, req: Request): void;
  /** `status NAME...`: those processes' lines, or why not. */
  statusOf(words: readonly string[]): { text: string } | { error: string };
  /** supervisorctl's `add NAME...` and `remove NAME...` (process groups). */
  add(words: readonly string[], conn: ControlConnection, req: Request): void;
  remove(words: readonly string[], conn: ControlConnection, req: Request): void;
}

/** How a command's trailing words name groups, where groups have names. */
export type GroupWords = 'none' | 'optional' | 'one';

export interface CommandEntry {
  /** The programs that offer it. */
  programs: readonly Program[];
  /** Its line in `help` (none: not listed), per program when they differ. */
  help?: string | Partial<Record<Program, string>>;
  /** [min, max, usage] of its own arguments (before any group names), per program when they differ. */
  arity: readonly [number, number, string] | Partial<Record<Program, readonly [number, number, string]>>;
  /** Trailing group names (per program when they differ); default none. */
  groups?: GroupWords | Partial<Record<Program, GroupWords>>;
  /** How many of the words are the command's own arguments (the rest name groups); default: up to its max. */
  own?: (args: readonly string[]) => number;
  run(host: CommandHost, conn: ControlConnection, req: Request, groups: readonly string[]): void;
}

function forProgram<T>(v: T | Partial<Record<Program, T>> | undefined, p: Program, isRecord: (x: unknown) => boolean): T | undefined {
  if (v === undefined) return undefined;
  return isRecord(v) ? (v as Partial<Record<Program, T>>)[p] : (v as T);
}
const isArityRecord = (x: unknown) => !Array.isArray(x);
const isPlainRecord = (x: unknown) => typeof x === 'object' && x !== null;

export const say = (conn: ControlConnection, req: Request, message: string, extra: Omit<ReplyFields, 'message'> = {}) =>
  conn.send({ message, ...extra }, req.id);
export const refuse = (conn: ControlConnection, req: Request, message: string) => conn.send({ message, error: true }, req.id);

export class CommandTable {
  constructor(private readonly entries: Readonly<Record<string, CommandEntry>>) {}

  entry(program: Program, command: string): CommandEntry | undefined {
    const e = Object.hasOwn(this.entries, command) ? this.entries[command] : undefined;
    return e?.programs.includes(program) ? e : undefined;
  }

  /** Which words are the command's own arguments and which name groups (none, with unnamed groups). */
  split(program: Program, named: boolean, command: string, args: readonly string[]): { own: string[]; groups: string[] } {
    const e = this.entry(program, command);
    const words = forProgram<GroupWords>(e?.groups, program, isPlainRecord) ?? 'none';
    if (!e || !named || words === 'none') return { own: [...args], groups: [] };
    const arity = forProgram(e.arity, program, isArityRecord);
    const n = e.own ? e.own(args) : Math.min(args.length, arity?.[1] ?? 0);
    return { own: args.slice(0, n), groups: args.slice(n) };
  }

  /** One line saying what is wrong with a command's own arguments, or null. */
  arityProblem(program: Program, command: string, args: readonly string[]): string | null {
    const e = this.entry(program, command);
    const a = e ? forProgram(e.arity, program, isArityRecord) : undefined;
    if (!a) return null;
    const [min, max, usage] = a;
    if (args.length > max) {
      const extra = args.slice(max).map((x) => `'${x}'`).join(' ');
      return max === 0 ? `${command} takes no arguments (got ${extra}); usage: ${usage}` : `${command}: too many arguments (${extra}); usage: ${usage}`;
    }
    if (args.length < min) return `${command}: missing argument; usage: ${usage}`;
    return null;
  }

  helpMessage(program: Program, header: string): string {
    const rows = Object.entries(this.entries)
      .filter(([, c]) => c.programs.includes(program))
      .map(([name, c]) => [name, forProgram<string>(c.help, program, isPlainRecord)] as const)
      .filter((x): x is readonly [string, string] => x[1] !== undefined)
      // Code-unit order, not localeCompare: its ICU collator costs a master 2.9 MB of RSS.
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, help]) => `${name}: ${help}`);
    return `${header}\n\n${rows.join('\n')}\n`;
  }

  dispatch(host: CommandHost, conn: ControlConnection, req: Request, header: string): void {
    const e = this.entry(host.program, req.command);
    if (!e) {
      conn.send({ message: `Unrecognized command: ${JSON.stringify(req.command)}\n\n${this.helpMessage(host.program, header)}`, error: true }, req.id);
      return;
    }
    const { own, groups } = this.split(host.program, host.named, req.command, req.args);
    const problem = this.arityProblem(host.program, req.command, own);
    if (problem) return refuse(conn, req, problem);
    const words = forProgram<GroupWords>(e.groups, host.program, isPlainRecord) ?? 'none';
    if (host.named && words === 'one' && groups.length !== 1) {
      const noun = host.program === 'dyno' ? 'process type' : 'group';
      return refuse(conn, req, `${req.command} expects one ${noun} (running: ${host.names().join(', ') || 'none'})`);
    }
    e.run(host, conn, { ...req, args: own }, groups);
  }
}
