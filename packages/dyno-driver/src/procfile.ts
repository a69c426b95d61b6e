/**
 * Procfiles: one `type: command` per line; blank lines and `#` comments are
 * ignored. Type names are [A-Za-z0-9_-]+, each at most once.
 */
import { AppError } from './errors.js';

export interface ProcfileEntry {
  type: string;
  command: string;
}

export const TYPE_NAME = /^[A-Za-z0-9_-]+$/;

export function parseProcfile(text: string, where = 'Procfile'): ProcfileEntry[] {
  const out: ProcfileEntry[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = `${where}:${i + 1}`;
    const colon = line.indexOf(':');
    if (colon < 0) throw new AppError(`${at}: expected 'type: command', got ${JSON.stringify(line)}`);
    const type = line.slice(0, colon).trim();
    const command = line.slice(colon + 1).trim();
    if (!TYPE_NAME.test(type)) {
      throw new AppError(`${at}: invalid process type ${JSON.stringify(type)} (letters, digits, '_' and '-' only)`);
    }
    if (command === '') throw new AppError(`${at}: process type '${type}' has no command`);
    if (seen.has(type)) throw new AppError(`${at}: process type '${type}' is defined twice`);
    seen.add(type);
    out.push({ type, command });
  });
  if (out.length === 0) throw new AppError(`${where}: no process types defined`);
  return out;
}

/** The argv a Procfile command runs as: the shell execs it, so the dyno keeps the pid we spawned. */
export function procfileArgs(command: string): string[] {
  return ['/bin/sh', '-c', `exec ${command}`];
}
