/**
 * `.env` files as foreman and heroku local read them:
 *
 *   KEY=value                 # trailing comments after unquoted values
 *   export KEY=value          # `export ` prefix ignored
 *   KEY='literal $value'      # single quotes: nothing is interpreted
 *   KEY="line\nnext \"x\""    # double quotes: \n \r \t \" \\ escapes; may span lines
 *
 * No variable expansion. Later keys win. What foreman skips (a line without
 * `=`, an invalid name) is skipped with a warning naming the file and line;
 * an unterminated quote is taken literally to the end of its line, as
 * foreman does, with a warning. A value with a NUL byte, or a KEY=VALUE over 128 KiB
 * (what exec can pass), is refused naming FILE:LINE: no child could be started with it.
 */
import { AppError } from './errors.js';
import type { Parsed } from './procfile.js';

/** foreman's: letters, digits and '_'. */
const KEY = /^[A-Za-z0-9_]+$/;

export function parseDotenv(text: string, where = '.env'): Parsed<Record<string, string>> {
  const env: Record<string, string> = {};
  const warnings: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const at = `${where}:${i + 1}`;
    let line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/^export\s+/.test(line)) line = line.replace(/^export\s+/, '');
    const eq = line.indexOf('=');
    if (eq < 0) {
      warnings.push(`${at}: skipped: expected KEY=VALUE, got ${JSON.stringify(line)}`);
      continue;
    }
    const key = line.slice(0, eq).trim();
    if (!KEY.test(key)) {
      warnings.push(`${at}: skipped: invalid variable name ${JSON.stringify(key)}`);
      continue;
    }
    let rest = line.slice(eq + 1).trimStart();
    const q = rest[0];
    if (q === "'" || q === '"') {
      // Find the closing quote, possibly on a later line: one pass over each line at most.
      const first = rest.slice(1);
      const close = closingQuote(first, lines, i, q);
      const j = close ? close.line : i;
      const last = j === i ? first : (lines[j] as string);
      const after = close ? last.slice(close.col + 1).trim() : '';
      if (!close || (j > i && after !== '' && !after.startsWith('#'))) {
        // No closing quote, or one that only a later line's text would close: foreman's reading.
        warnings.push(`${at}: unterminated ${q === '"' ? 'double' : 'single'} quote in ${key}; taken literally to the end of the line`);
        env[key] = checked(at, key, rest.trimEnd());
        continue;
      }
      if (after !== '' && !after.startsWith('#')) {
        warnings.push(`${at}: skipped: unexpected text after the closing quote of ${key}: ${JSON.stringify(after)}`);
        i = j;
        continue;
      }
      const parts = j === i ? [first.slice(0, close.col)] : [first, ...lines.slice(i + 1, j), last.slice(0, close.col)];
      i = j;
      const raw = parts.join('\n');
      env[key] = checked(at, key, q === "'" ? raw : unescapeDouble(raw));
      continue;
    }
    const hash = rest.search(/\s#/);
    if (hash >= 0) rest = rest.slice(0, hash);
    env[key] = checked(at, key, rest.trim());
  }
  return { value: env, warnings };
}

/**
 * Longest KEY=VALUE an environment can pass to exec (Linux's MAX_ARG_STRLEN, 32 pages);
 * a longer one makes every spawn fail with E2BIG.
 */
export const MAX_DOTENV_ENTRY_BYTES = 128 * 1024 - 1;

/** A value no child could be started with is refused when the file is read, not at every spawn. */
function checked(at: string, key: string, value: string): string {
  if (value.includes('\0')) throw new AppError(`${at}: the value of ${key} contains a NUL byte, which no environment can hold; refusing the .env file`);
  const bytes = Buffer.byteLength(key) + 1 + Buffer.byteLength(value);
  if (bytes > MAX_DOTENV_ENTRY_BYTES) {
    throw new AppError(`${at}: ${key} is ${bytes} bytes long, over the ${MAX_DOTENV_ENTRY_BYTES} an environment variable can have; refusing the .env file`);
  }
  return value;
}

/**
 * Where the quote `q` that opens a value closes: in `first` (the rest of line `i` after the
 * opening quote) or on a later line. Each character is looked at once (the scan goes on
 * where it stopped, never from the value's start again); in double quotes a backslash
 * escapes the next character (a newline too).
 */
function closingQuote(first: string, lines: readonly string[], i: number, q: string): { line: number; col: number } | null {
  for (let j = i; j < lines.length; j++) {
    const s = j === i ? first : (lines[j] as string);
    for (let k = 0; k < s.length; k++) {
      if (q === '"' && s[k] === '\\') {
        k += 1;
        continue;
      }
      if (s[k] === q) return { line: j, col: k };
    }
  }
  return null;
}

function unescapeDouble(s: string): string {
  return s.replace(/\\(.)/gs, (_m, c: string) => {
    switch (c) {
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      default:
        return c;
    }
  });
}
