/**
 * supervisord's value types (supervisor/datatypes.py), with the same accepted
 * spellings. Where supervisord accepts a value only to misbehave later (a
 * negative size, signal 0, a name that breaks `group:name` addressing after
 * expansion), this reader refuses it, and says so in docs/DESIGN.md.
 */
import { constants } from 'node:os';
import { ValueError } from './errors.js';

/** Python's int(str): surrounding whitespace, a sign, digits with single underscores between them. */
export function pythonInt(text: string): number {
  const s = text.trim();
  if (!/^[+-]?\d(_?\d)*$/.test(s)) throw new ValueError(`invalid literal for int(): ${JSON.stringify(text)}`);
  const n = Number(s.replace(/_/g, ''));
  if (!Number.isSafeInteger(n)) throw new ValueError(`${JSON.stringify(text)} is too large`);
  return n;
}

export function integer(text: string, min: number | null = null, max: number | null = null): number {
  const n = pythonInt(text);
  if (min !== null && n < min) throw new ValueError(`${n} is below the lower bound (${min})`);
  if (max !== null && n > max) throw new ValueError(`${n} is above the upper bound (${max})`);
  return n;
}

const TRUTHY = ['yes', 'true', 'on', '1'];
const FALSY = ['no', 'false', 'off', '0'];

export function boolean(text: string): boolean {
  const s = text.toLowerCase();
  if (TRUTHY.includes(s)) return true;
  if (FALSY.includes(s)) return false;
  throw new ValueError(`not a valid boolean value: ${JSON.stringify(text)} (true/false, yes/no, on/off, 1/0)`);
}

export type AutoRestart = 'true' | 'false' | 'unexpected';

export function autoRestart(text: string): AutoRestart {
  const s = text.toLowerCase();
  if (TRUTHY.includes(s)) return 'true';
  if (FALSY.includes(s)) return 'false';
  if (s === 'unexpected') return 'unexpected';
  throw new ValueError(`invalid 'autorestart' value ${JSON.stringify(text)} (true, false or unexpected)`);
}

/** `byte_size`: an integer with an optional KB, MB or GB suffix (any case; 1024-based). */
export function byteSize(text: string): number {
  const s = text.toLowerCase();
  const mult = { kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[s.slice(-2)];
  let n: number;
  try {
    n = mult === undefined ? pythonInt(s) : pythonInt(s.slice(0, -2)) * mult;
  } catch {
    throw new ValueError(`not a byte size: ${JSON.stringify(text)} (e.g. 1024, 50MB, 10KB, 1GB)`);
  }
  if (n < 0) throw new ValueError(`a byte size must not be negative: ${JSON.stringify(text)}`);
  if (!Number.isSafeInteger(n)) throw new ValueError(`byte size ${JSON.stringify(text)} is too large`);
  return n;
}

/** `list_of_exitcodes`: comma-separated integers 0-255; empty is none. */
export function exitCodes(text: string): number[] {
  if (text === '') return [];
  try {
    return text.split(',').map((w) => integer(w, 0, 255));
  } catch {
    throw new ValueError(`not a valid list of exit codes: ${JSON.stringify(text)} (e.g. 0,2; each 0-255)`);
  }
}

/** `octal_type` (umask): Python's int(text, 8). */
export function octal(text: string): number {
  const s = text.trim().replace(/^([+-]?)0o/i, '$1');
  if (!/^[+-]?[0-7](_?[0-7])*$/.test(s)) throw new ValueError(`${JSON.stringify(text)} can not be converted to an octal type`);
  const n = parseInt(s.replace(/_/g, ''), 8);
  if (n < 0 || n > 0o777) throw new ValueError(`umask ${JSON.stringify(text)} is out of range (000-777)`);
  return n;
}

/** Linux signal numbers by name (from node), with the names Python's signal module adds. */
const SIGNALS: Readonly<Record<string, number>> = { ...constants.signals, SIGCLD: 17, SIGRTMIN: 34, SIGRTMAX: 64 } as Record<string, number>;

/** `signal_number`: a name with or without SIG, any case, or a number; returns the canonical name (no SIG). */
export function signalName(text: string): string {
  const byNumber = (n: number): string | undefined => {
    const names = Object.keys(SIGNALS).filter((k) => SIGNALS[k] === n && k !== 'SIGIOT' && k !== 'SIGPOLL' && k !== 'SIGCLD');
    return names[0]?.slice(3);
  };
  let n: number | null = null;
  try {
    n = pythonInt(text);
  } catch {
    n = null;
  }
  if (n !== null) {
    const name = byNumber(n);
    if (name === undefined) throw new ValueError(`value ${JSON.stringify(text)} is not a valid signal number`);
    return name;
  }
  let name = text.trim().toUpperCase();
  if (!name.startsWith('SIG')) name = `SIG${name}`;
  if (!(name in SIGNALS)) {
    throw new ValueError(`value ${JSON.stringify(text)} is not a valid signal name`);
  }
  return byNumber(SIGNALS[name] as number) ?? name.slice(3);
}

/** `process_or_group_name`: stripped, and no space, `:` or `/` (they break `group:name` addressing). */
export function processOrGroupName(text: string): string {
  const s = text.trim();
  for (const ch of [' ', ':', '/']) {
    if (s.includes(ch)) throw new ValueError(`invalid name ${JSON.stringify(text)} because of the character ${JSON.stringify(ch)}`);
  }
  if (s === '') throw new ValueError('the name is empty');
  if (/[\0-\x1f\x7f]/.test(s)) throw new ValueError(`invalid name ${JSON.stringify(text)}: control characters`);
  return s;
}

/** `list_of_strings`: comma-separated, each stripped; empty is none. */
export function listOfStrings(text: string): string[] {
  return text === '' ? [] : text.split(',').map((w) => w.trim());
}
