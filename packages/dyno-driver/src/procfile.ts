/**
 * Procfiles, read as foreman reads them: one `type: command` per line; blank
 * lines and `#` comments are ignored. Type names are [A-Za-z0-9_-]+.
 *
 * What foreman skips (a line without `type:`, an invalid type name, a type
 * without a command) is skipped with a warning naming the file and line; a
 * type defined twice keeps the later definition (as `foreman run` does), with
 * a warning. A Procfile with no entry is not an error: it runs nothing.
 */

export interface ProcfileEntry {
  type: string;
  command: string;
}

export const TYPE_NAME = /^[A-Za-z0-9_-]+$/;

export interface Parsed<T> {
  value: T;
  /** One line each, `FILE:LINE: what was skipped and why`. */
  warnings: string[];
}

export function parseProcfile(text: string, where = 'Procfile'): Parsed<ProcfileEntry[]> {
  const out: ProcfileEntry[] = [];
  const warnings: string[] = [];
  const lineOf = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = `${where}:${i + 1}`;
    const colon = line.indexOf(':');
    if (colon < 0) {
      warnings.push(`${at}: skipped: expected 'type: command', got ${JSON.stringify(line)}`);
      return;
    }
    const type = line.slice(0, colon).trim();
    const command = line.slice(colon + 1).trim();
    if (!TYPE_NAME.test(type)) {
      warnings.push(`${at}: skipped: invalid process type ${JSON.stringify(type)} (letters, digits, '_' and '-' only)`);
      return;
    }
    if (command === '') {
      warnings.push(`${at}: skipped: process type '${type}' has no command`);
      return;
    }
    const before = lineOf.get(type);
    if (before !== undefined) {
      warnings.push(`${at}: process type '${type}' is defined again; this definition replaces the one of line ${before}`);
      out.splice(
        out.findIndex((e) => e.type === type),
        1,
      );
    }
    lineOf.set(type, i + 1);
    out.push({ type, command });
  });
  if (out.length === 0) warnings.push(`${where}: no process types defined; nothing to run`);
  return { value: out, warnings };
}

/** Words a command cannot be exec'd with: shell keywords and builtins that only the shell itself runs. */
const SHELL_ONLY = /^(trap|if|for|while|until|case|exit|cd|export|set|unset|source|\.|eval|exec|ulimit|umask|wait|\{|\(|!)(\s|$)|^[A-Za-z_][A-Za-z0-9_]*=/;

/**
 * The argv a Procfile command runs as. A simple command is exec'd by the
 * shell (`sh -c 'exec CMD'`), so the dyno keeps the pid that was spawned; a
 * command list, a pipeline or one that starts with a shell keyword or
 * builtin (`trap ...; ./server`, `a && b`) runs as `sh -c CMD`, as foreman
 * runs it. Either way the whole process group gets the stop signal.
 */
export function procfileArgs(command: string): string[] {
  const compound = /[;&|\n]/.test(command.replace(/'[^']*'|"(?:\\.|[^"\\])*"/g, '')) || SHELL_ONLY.test(command);
  return ['/bin/sh', '-c', compound ? command : `exec ${command}`];
}
