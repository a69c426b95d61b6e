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
 * foreman does, with a warning.
 */
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
      // Find the closing quote, possibly on a later line.
      let body = rest.slice(1);
      let end = closingQuote(body, q);
      let j = i;
      while (end < 0 && j + 1 < lines.length) {
        j += 1;
        body += '\n' + (lines[j] as string);
        end = closingQuote(body, q);
      }
      const after = end < 0 ? '' : body.slice(end + 1).trim();
      if (end < 0 || (j > i && after !== '' && !after.startsWith('#'))) {
        // No closing quote, or one that only a later line's text would close: foreman's reading.
        warnings.push(`${at}: unterminated ${q === '"' ? 'double' : 'single'} quote in ${key}; taken literally to the end of the line`);
        env[key] = rest.trimEnd();
        continue;
      }
      if (after !== '' && !after.startsWith('#')) {
        warnings.push(`${at}: skipped: unexpected text after the closing quote of ${key}: ${JSON.stringify(after)}`);
        i = j;
        continue;
      }
      i = j;
      const raw = body.slice(0, end);
      env[key] = q === "'" ? raw : unescapeDouble(raw);
      continue;
    }
    const hash = rest.search(/\s#/);
    if (hash >= 0) rest = rest.slice(0, hash);
    env[key] = rest.trim();
  }
  return { value: env, warnings };
}

function closingQuote(s: string, q: string): number {
  for (let i = 0; i < s.length; i++) {
    if (q === '"' && s[i] === '\\') {
      i += 1;
      continue;
    }
    if (s[i] === q) return i;
  }
  return -1;
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
