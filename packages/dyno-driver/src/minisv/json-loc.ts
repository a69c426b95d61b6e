/**
 * JSON with the line of every value and key, so that a minisv.json error names FILE:LINE
 * as the INI reader's do. A strict RFC 8259 reader (what Go's encoding/json accepts),
 * pure; JSON.parse decodes each string token (escapes included).
 */

export type JsonNode =
  | { kind: 'object'; line: number; entries: Array<{ key: string; keyLine: number; value: JsonNode }> }
  | { kind: 'array'; line: number; items: JsonNode[] }
  | { kind: 'string'; line: number; value: string }
  | { kind: 'number'; line: number; value: number; text: string }
  | { kind: 'boolean'; line: number; value: boolean }
  | { kind: 'null'; line: number };

export class JsonSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly column: number,
    message: string,
  ) {
    super(message);
  }
}

/** Deeper than this is refused (a hostile body must not exhaust the stack). */
const MAX_DEPTH = 64;

export function parseJsonLoc(text: string): JsonNode {
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const fail = (what: string): never => {
    throw new JsonSyntaxError(line, i - lineStart + 1, what);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text[i];
      if (c === '\n') {
        line += 1;
        i += 1;
        lineStart = i;
      } else if (c === ' ' || c === '\t' || c === '\r') i += 1;
      else break;
    }
  };
  const str = (): string => {
    const start = i;
    i += 1;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in a string');
      i += c === 0x5c ? 2 : 1;
    }
    if (i >= text.length) fail('unterminated string');
    i += 1;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('bad escape in a string');
    }
  };
  const value = (depth: number): JsonNode => {
    if (depth > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH}`);
    ws();
    const at = line;
    const c = text[i];
    if (c === '{') {
      i += 1;
      const entries: Array<{ key: string; keyLine: number; value: JsonNode }> = [];
      ws();
      if (text[i] === '}') {
        i += 1;
        return { kind: 'object', line: at, entries };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const keyLine = line;
        const key = str();
        ws();
        if (text[i] !== ':') fail("expected ':' after a key");
        i += 1;
        entries.push({ key, keyLine, value: value(depth + 1) });
        ws();
        if (text[i] === ',') {
          i += 1;
          continue;
        }
        if (text[i] === '}') {
          i += 1;
          return { kind: 'object', line: at, entries };
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i += 1;
      const items: JsonNode[] = [];
      ws();
      if (text[i] === ']') {
        i += 1;
        return { kind: 'array', line: at, items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i += 1;
          continue;
        }
        if (text[i] === ']') {
          i += 1;
          return { kind: 'array', line: at, items };
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return { kind: 'string', line: at, value: str() };
    const lit = /^(true|false|null)/.exec(text.slice(i, i + 5));
    if (lit) {
      i += (lit[1] as string).length;
      return lit[1] === 'null' ? { kind: 'null', line: at } : { kind: 'boolean', line: at, value: lit[1] === 'true' };
    }
    const num = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
    if (num) {
      i += num[0].length;
      return { kind: 'number', line: at, value: Number(num[0]), text: num[0] };
    }
    return i >= text.length ? fail('unexpected end of input') : fail(`unexpected character ${JSON.stringify(c)}`);
  };
  const root = value(0);
  ws();
  if (i < text.length) fail('unexpected data after the top-level value');
  return root;
}

/** A node's type as a message names it. */
export function jsonKind(n: JsonNode): string {
  return n.kind === 'number' ? 'a number' : n.kind === 'array' ? 'an array' : n.kind === 'object' ? 'an object' : n.kind === 'null' ? 'null' : `a ${n.kind}`;
}
