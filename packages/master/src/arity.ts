/**
 * How many arguments each of the master's commands takes (the command table's arity,
 * commands/table.ts). einhorn ignores extra ones (`dec 5` silently decrements by one);
 * the master refuses them with the usage, so a mistyped command never does something
 * other than what was asked.
 */
import { COMMAND_TABLE } from './commands/entries.js';

/** One line saying what is wrong with a master command's arguments, or null. */
export function arityProblem(command: string, args: readonly string[]): string | null {
  return COMMAND_TABLE.arityProblem('master', command, args);
}
