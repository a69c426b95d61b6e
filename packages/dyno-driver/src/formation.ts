/**
 * `--formation web=2,worker=1` and the `scale web=3 worker=0` arguments:
 * process type -> quantity.
 */
import { TYPE_NAME } from './procfile.js';

/** Most dynos of one type (the core's own limit). */
export const MAX_QUANTITY = 10_000;

export class FormationError extends Error {
  override name = 'FormationError';
}

/** One `type=N`. */
export function parseScale(word: string): { type: string; quantity: number } {
  const eq = word.indexOf('=');
  const type = eq < 0 ? word : word.slice(0, eq);
  const n = eq < 0 ? '' : word.slice(eq + 1);
  if (eq < 0 || !TYPE_NAME.test(type)) {
    throw new FormationError(`expected TYPE=N, got ${JSON.stringify(word)}`);
  }
  if (!/^\d+$/.test(n) || Number(n) > MAX_QUANTITY) {
    throw new FormationError(`${type}: quantity must be an integer from 0 to ${MAX_QUANTITY}, got ${JSON.stringify(n)}`);
  }
  return { type, quantity: Number(n) };
}

/** `web=2,worker=1` (commas and/or spaces between entries). */
export function parseFormation(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const words = text.split(/[,\s]+/).filter((w) => w !== '');
  if (words.length === 0) throw new FormationError('empty formation (expected TYPE=N[,TYPE=N...])');
  for (const w of words) {
    const { type, quantity } = parseScale(w);
    if (out.has(type)) throw new FormationError(`${type} given more than once`);
    out.set(type, quantity);
  }
  return out;
}
