import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readConfig, tableUsers, type ConfigModel, type ReadOptions } from '../src/config/index.js';

export const USERS = tableUsers([
  { name: 'root', uid: 0, gid: 0, home: '/root' },
  { name: 'www-data', uid: 33, gid: 33, home: '/var/www' },
  { name: 'app', uid: 1000, gid: 1001, home: '/home/app' },
]);

export const ENV = { HOME: '/home/app', DB: 'postgres://db', EMPTY: '' };

/** A fresh directory holding `files` (relative paths -> text); removed afterwards. */
export function withFiles<T>(files: Record<string, string>, fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'einh-config-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function read(dir: string, main = 'main.conf', opts: ReadOptions = {}): ConfigModel {
  return readConfig(main, { cwd: dir, env: ENV, users: USERS, hostname: 'box', ...opts });
}

/** Read `text` as main.conf (plus other files) and return the model. */
export function parse(text: string, others: Record<string, string> = {}, opts: ReadOptions = {}): ConfigModel {
  return withFiles({ 'main.conf': text, ...others }, (dir) => read(dir, 'main.conf', opts));
}

/** The one-line error reading `text` gives, with the temp directory replaced by DIR. */
export function errorOf(text: string, others: Record<string, string> = {}): string {
  return withFiles({ 'main.conf': text, ...others }, (dir) => {
    try {
      read(dir);
    } catch (err) {
      return (err as Error).message.split(dir).join('DIR');
    }
    throw new Error('expected a config error');
  });
}

export const warningsOf = (m: ConfigModel): string[] => m.warnings.map((w) => `${w.loc.file}:${w.loc.line}: ${w.message}`);

export function proc(m: ConfigModel, name: string) {
  for (const p of m.programs) for (const q of p.processes) if (q.name === name) return q;
  throw new Error(`no process ${name}`);
}
