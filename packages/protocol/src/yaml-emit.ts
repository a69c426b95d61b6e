/**
 * A small YAML writer for reply documents, in the shape einhorn's psych
 * writes: `---`, then `key: value` lines. Strings are plain when that reads
 * back as the same string (also under YAML 1.1, which psych implements),
 * literal blocks when they span lines, JSON-quoted otherwise; structured
 * values are written as JSON flow collections, which are valid YAML.
 */

const PLAIN = /^[A-Za-z_/.(\d][^\n\r\t#:]*(?::(?! )[^\n\r\t#:]*)*$/;
const YAML11_SPECIAL = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~|[-+]?(?:\d[\d_]*)?(?:\.\d*)?(?:[eE][-+]?\d+)?|0x[0-9a-fA-F_]+|0o?[0-7_]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|\d+(?::[0-5]?\d)+(?:\.\d*)?|\d{4}-\d\d?-\d\d?.*)$/;

function isPlainSafe(s: string): boolean {
  return s !== '' && PLAIN.test(s) && !/\s$/.test(s) && !s.endsWith(':') && !YAML11_SPECIAL.test(s);
}

/** A string value, with the indentation of a top-level key's value. */
export function yamlString(s: string): string {
  if (isPlainSafe(s)) return s;
  // Printable text spanning lines: a literal block, clipped or stripped.
  if (s.includes('\n') && !/[\r\t\u0000-\u0008\u000b-\u001f\u007f\u0085\u2028\u2029\ufeff]/.test(s)) {
    const trailing = /\n*$/.exec(s)![0].length;
    const body = trailing ? s.slice(0, -1) : s;
    if (trailing <= 1 && body.trim() !== '') {
      const lines = body.split('\n');
      // The first non-empty line sets the indentation unless told: tell it when that line starts with a space.
      const indicator = /^ /.test(lines.find((l) => l !== '') ?? '') ? '2' : '';
      const chomp = trailing ? '' : '-';
      return `|${indicator}${chomp}\n${lines.map((l) => (l === '' ? '' : `  ${l}`)).join('\n')}`;
    }
  }
  return JSON.stringify(s);
}

function value(v: unknown): string {
  if (typeof v === 'string') return yamlString(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : JSON.stringify(String(v));
  if (typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return '';
  return JSON.stringify(v) ?? '';
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
