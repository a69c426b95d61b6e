/**
 * How many arguments each of the master's commands takes. einhorn ignores extra ones
 * (`dec 5` silently decrements by one); the master refuses them with the usage, so a
 * mistyped command never does something other than what was asked.
 */
const ARITY: Readonly<Record<string, readonly [number, number, string]>> = {
  config: [1, Infinity, 'config "{KEY: VALUE, ...}"'],
  dec: [0, 0, 'dec'],
  die: [0, 1, 'die [SIGNAL]'],
  ehlo: [0, 0, 'ehlo'],
  help: [0, 0, 'help'],
  inc: [0, 0, 'inc'],
  louder: [0, 0, 'louder'],
  quieter: [0, 0, 'quieter'],
  reload: [0, 0, 'reload'],
  set_workers: [0, 1, 'set_workers N'], // none: its own "Invalid count" (einhorn's text)
  signal: [0, Infinity, 'signal SIG [SIG...]'], // none: its own message
  state: [0, 0, 'state'],
  status: [0, 0, 'status'],
  upgrade: [0, 0, 'upgrade'],
  upgrade_fleet: [0, 0, 'upgrade_fleet'],
  version: [0, 0, 'version'],
};

/** One line saying what is wrong with a command's arguments, or null. */
export function arityProblem(command: string, args: readonly string[]): string | null {
  const a = Object.hasOwn(ARITY, command) ? ARITY[command] : undefined;
  if (!a) return null;
  const [min, max, usage] = a;
  if (args.length > max) {
    const extra = args.slice(max).map((x) => `'${x}'`).join(' ');
    return max === 0 ? `${command} takes no arguments (got ${extra}); usage: ${usage}` : `${command}: too many arguments (${extra}); usage: ${usage}`;
  }
  if (args.length < min) return `${command}: missing argument; usage: ${usage}`;
  return null;
}
