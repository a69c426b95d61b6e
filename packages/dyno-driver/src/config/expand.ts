/**
 * supervisord's `expand(s, expansions, name)`: Python's `s % expansions`
 * with a mapping, so `%(program_name)s`, `%(process_num)02d`, `%(ENV_HOME)s`
 * and `%%` work as there. Supported conversions: s, d, i, u, x, X, o (with
 * Python's flags `#0- +`, width and precision), which is everything the
 * expansion values (strings and integers) are used with in practice; other
 * conversions (r, a, c, e, f, g) and unnamed `%s` are refused as badly
 * formatted rather than guessed at (Python would format the whole mapping).
 */
import { ValueError } from './errors.js';

export type Expansions = Readonly<Record<string, string | number>>;

const SPEC = /^%(?:\(([^)]*)\))?([#0\- +]*)(\d+)?(?:\.(\d*))?[hlL]?([a-zA-Z%])?/s;

function formatInt(n: number, flags: string, precision: number | undefined, conv: string): string {
  const neg = n < 0;
  const abs = Math.abs(Math.trunc(n));
  let digits = conv === 'x' || conv === 'X' ? abs.toString(16) : conv === 'o' ? abs.toString(8) : abs.toString(10);
  if (conv === 'X') digits = digits.toUpperCase();
  if (precision !== undefined && digits.length < precision) digits = digits.padStart(precision, '0');
  let prefix = '';
  if (flags.includes('#')) prefix = conv === 'x' ? '0x' : conv === 'X' ? '0X' : conv === 'o' ? '0o' : '';
  const sign = neg ? '-' : flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : '';
  return sign + prefix + digits;
}

function pad(body: string, flags: string, width: number, numeric: boolean): string {
  if (body.length >= width) return body;
  if (flags.includes('-')) return body.padEnd(width, ' ');
  if (numeric && flags.includes('0')) {
    const m = /^([-+ ]?(?:0[xXo])?)(.*)$/s.exec(body) as RegExpExecArray;
    return (m[1] as string) + (m[2] as string).padStart(width - (m[1] as string).length, '0');
  }
  return body.padStart(width, ' ');
}

/** One `%` directive at `s[i]`; returns the text and how many characters it used. */
function directive(s: string, i: number, expansions: Expansions, name: string): [string, number] {
  const m = SPEC.exec(s.slice(i));
  const bad = (why: string): ValueError =>
    new ValueError(`format string ${JSON.stringify(s)} for '${name}' is badly formatted: ${why}`);
  if (!m || m[5] === undefined) {
    if (s.slice(i + 1).startsWith('(') && !s.slice(i).includes(')')) throw bad('incomplete format key');
    throw bad('incomplete format');
  }
  const [whole, key, flags = '', widthText, precText, conv] = m;
  if (conv === '%' && key === undefined && whole === '%%') return ['%', 2];
  if (key === undefined) throw bad('a conversion without a (name)');
  if (!(key in expansions)) {
    const available = Object.keys(expansions).sort().join(', ');
    throw new ValueError(
      `format string ${JSON.stringify(s)} for '${name}' contains names ('${key}') which cannot be expanded. Available names: ${available}`,
    );
  }
  const v = expansions[key] as string | number;
  const width = widthText === undefined ? 0 : Number(widthText);
  const precision = precText === undefined ? undefined : precText === '' ? 0 : Number(precText);
  if (conv === 's' || conv === '%') {
    let text = String(v);
    if (precision !== undefined) text = text.slice(0, precision);
    return [conv === '%' ? '%' : pad(text, flags, width, false), whole.length];
  }
  if ('diuxXo'.includes(conv as string)) {
    if (typeof v !== 'number') throw bad(`%${conv} format: a number is required, not str`);
    return [pad(formatInt(v, flags, precision, conv as string), flags, width, true), whole.length];
  }
  throw bad(`unsupported format character '${conv}'`);
}

export function expand(s: string, expansions: Expansions, name: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const j = s.indexOf('%', i);
    if (j === -1) return out + s.slice(i);
    out += s.slice(i, j);
    const [text, used] = directive(s, j, expansions, name);
    out += text;
    i = j + used;
  }
}
