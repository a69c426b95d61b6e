/**
 * A small YAML writer for what the master sends: reply documents in the shape einhorn's
 * psych writes (`---`, then `key: value` lines) and the scalars of the `state` dump.
 *
 * Every scalar must read back as exactly what was written, in YAML 1.1 (psych, PyYAML:
 * what einhorn's clients use) and in YAML 1.2 (the yaml package). So a string is plain
 * only when it cannot mean anything else there: printable ASCII, starting with a letter,
 * `_`, `/` or `(`, without `#`, `: ` or a trailing `:` or space, and not one of YAML 1.1's
 * boolean or null words in any case. Text spanning lines becomes a literal block with an
 * explicit indentation; anything else is double-quoted with every non-printable character
 * escaped. Structured values are flow collections written the same way (valid JSON-like
 * YAML, but with YAML's escapes and numbers that YAML 1.1 reads as numbers).
 */

const PLAIN = /^[A-Za-z_/(][\x20-\x7e]*$/;
/** Words that YAML 1.1 (psych: case-insensitively) reads as booleans or null. */
const SPECIAL_WORDS = /^(?:y|n|yes|no|true|false|on|off|null)$/i;

function isPlainSafe(s: string): boolean {
  return PLAIN.test(s) && !s.includes('#') && !s.includes(': ') && !s.endsWith(':') && !s.endsWith(' ') && !SPECIAL_WORDS.test(s);
}

/**
 * Characters written as themselves inside quotes and literal blocks: printable in YAML 1.1
 * (PyYAML's set) minus what some reader treats as a line break (U+0085, U+2028, U+2029) or
 * strips (U+FEFF).
 */
const RAW_OK = /^[\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]$/u;

function hex(code: number, digits: number): string {
  return code.toString(16).toUpperCase().padStart(digits, '0');
}

/** A double-quoted YAML scalar: `"`, `\` and every non-printable character escaped. */
export function yamlQuoted(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i] as string;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      // A well-formed astral character: printable in YAML, written as itself.
      out += ch + s[i + 1];
      i += 1;
    } else if (RAW_OK.test(ch)) out += ch;
    else out += `\\u${hex(c, 4)}`;
  }
  return `${out}"`;
}

/** A string in an inline position (a sequence item, a nested value): plain or double-quoted. */
export function yamlScalar(s: string): string {
  return isPlainSafe(s) ? s : yamlQuoted(s);
}

/** Printable text spanning lines that a literal block carries exactly (clip or strip chomping). */
function literalBlock(s: string): string | null {
  if (!s.includes('\n')) return null;
  const trailing = /\n*$/.exec(s)![0].length;
  if (trailing > 1) return null;
  const body = trailing ? s.slice(0, -1) : s;
  const lines = body.split('\n');
  for (const line of lines) {
    // Whitespace-only lines and trailing spaces are where readers disagree; quote those.
    if (line !== '' && line.trim() === '') return null;
    if (/ $/.test(line)) return null;
    for (const ch of line) {
      if (ch.length === 1 && !RAW_OK.test(ch)) return null;
    }
  }
  if (lines[0] === '' || lines.at(-1) === '') return null;
  return `|2${trailing ? '' : '-'}\n${lines.map((l) => (l === '' ? '' : `  ${l}`)).join('\n')}`;
}

/** A string as the value of a top-level key: plain, a literal block, or double-quoted. */
export function yamlString(s: string): string {
  if (isPlainSafe(s)) return s;
  return literalBlock(s) ?? yamlQuoted(s);
}

/** A number that YAML 1.1 and 1.2 both read back as the same number (`1e-7` -> `1.0e-07`). */
export function yamlNumber(n: number): string {
  if (!Number.isFinite(n)) return n !== n ? '.nan' : n > 0 ? '.inf' : '-.inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  const text = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([-+])(\d+)$/.exec(text);
  if (!m) return text; // 0.5, -12.25: already YAML 1.1 floats
  return `${m[1]}${m[2]}.${m[3] ?? '0'}e${m[4]}${m[5]!.padStart(2, '0')}`;
}

/** Any JSON-like value as an inline YAML value (flow collections for arrays and objects). */
export function yamlFlow(v: unknown): string {
  if (typeof v === 'string') return yamlQuoted(v);
  if (typeof v === 'number') return yamlNumber(v);
  if (typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return `[${v.map((x) => yamlFlow(x)).join(', ')}]`;
  if (typeof v === 'object') {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      parts.push(`${yamlQuoted(k)}: ${yamlFlow(x)}`);
    }
    return `{${parts.join(', ')}}`;
  }
  return yamlQuoted(String(v));
}

function value(v: unknown): string {
  if (typeof v === 'string') return yamlString(v);
  if (typeof v === 'number') return yamlNumber(v);
  if (typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return '';
  return yamlFlow(v);
}

/** A mapping as a YAML document (`---\n` + one `key: value` per entry, in order). */
export function yamlDocument(entries: Record<string, unknown>): string {
  let out = '---\n';
  for (const [k, v] of Object.entries(entries)) {
    if (v === undefined) continue;
    const text = value(v);
    out += text === '' ? `${k}:\n` : `${k}: ${text}\n`;
  }
  return out;
}
