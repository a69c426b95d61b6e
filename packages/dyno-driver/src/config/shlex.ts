/**
 * The two uses supervisord makes of Python's shlex, ported state for state:
 * - `environment=` is read by `dict_of_key_value_pairs`: shlex in non-POSIX
 *   mode with `/.+-():` added to the word characters (quotes stay in the
 *   token and are stripped afterwards, `#` starts a comment, every other
 *   character is a token of its own);
 * - `command=` is split by `shlex.split` (POSIX mode, no comments) when the
 *   process is spawned.
 */
import { ValueError } from './errors.js';

const ASCII_WORD = 'abcdfeghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_';
const WHITESPACE = ' \t\r\n';
const QUOTES = `'"`;

/** shlex.shlex(s) (non-POSIX) with extra word characters: the list of its tokens. */
export function nonPosixTokens(s: string, extraWordChars: string): string[] {
  const wordchars = ASCII_WORD + extraWordChars;
  const tokens: string[] = [];
  let i = 0;
  const pushback: string[] = [];
  const next = (): string => (pushback.length ? (pushback.shift() as string) : i < s.length ? (s[i++] as string) : '');
  const readline = (): void => {
    const nl = s.indexOf('\n', i);
    i = nl === -1 ? s.length : nl + 1;
  };
  let state: string | null = ' ';
  for (;;) {
    let token = '';
    while (state !== null) {
      const ch = next();
      if (state === ' ') {
        if (ch === '') {
          state = null;
          break;
        } else if (WHITESPACE.includes(ch)) {
          if (token) break;
        } else if (ch === '#') {
          readline();
        } else if (wordchars.includes(ch)) {
          token = ch;
          state = 'a';
        } else if (QUOTES.includes(ch)) {
          token = ch;
          state = ch;
        } else {
          token = ch;
          break;
        }
      } else if (QUOTES.includes(state)) {
        if (ch === '') throw new ValueError('No closing quotation');
        token += ch;
        if (ch === state) {
          state = ' ';
          break;
        }
      } else {
        // state 'a': in a word
        if (ch === '') {
          state = null;
          break;
        } else if (WHITESPACE.includes(ch)) {
          state = ' ';
          if (token) break;
        } else if (ch === '#') {
          readline();
        } else if (wordchars.includes(ch) || QUOTES.includes(ch)) {
          token += ch;
        } else {
          pushback.unshift(ch);
          state = ' ';
          if (token) break;
        }
      }
    }
    if (token === '') return tokens;
    tokens.push(token);
  }
}

/** Python's str.strip(chars). */
function stripChars(s: string, chars: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && chars.includes(s[a] as string)) a++;
  while (b > a && chars.includes(s[b - 1] as string)) b--;
  return s.slice(a, b);
}

/**
 * supervisord's `dict_of_key_value_pairs`: `KEY=val,KEY2="a, b"` -> an object.
 * As there, tokens are taken four at a time (key, `=`, value, separator) and
 * the separator is not checked; quotes around a value are stripped.
 */
export function keyValuePairs(arg: string): Record<string, string> {
  const tokens = nonPosixTokens(arg, '/.+-():');
  const out: Record<string, string> = {};
  for (let i = 0; i < tokens.length; i += 4) {
    const [k, eq, v] = tokens.slice(i, i + 3);
    if (k === undefined || eq !== '=' || v === undefined) {
      throw new ValueError(`unexpected end of key/value pairs in ${JSON.stringify(arg)}`);
    }
    out[k] = stripChars(v, `'"`);
  }
  return out;
}

/** shlex.split(s) (POSIX mode, no comments): the argv supervisord executes. */
export function posixSplit(s: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < s.length) {
    const ch = s[i++] as string;
    if (WHITESPACE.includes(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (ch === '\\') {
      if (i >= s.length) throw new ValueError('No escaped character');
      word += s[i++];
      inWord = true;
    } else if (ch === "'") {
      const end = s.indexOf("'", i);
      if (end === -1) throw new ValueError('No closing quotation');
      word += s.slice(i, end);
      i = end + 1;
      inWord = true;
    } else if (ch === '"') {
      inWord = true;
      for (;;) {
        if (i >= s.length) throw new ValueError('No closing quotation');
        const c = s[i++] as string;
        if (c === '"') break;
        if (c === '\\' && i < s.length && (s[i] === '"' || s[i] === '\\')) word += s[i++];
        else word += c;
      }
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}
