/**
 * Safe parsing of one control message body: JSON, or YAML (einhorn's framing).
 *
 * YAML is read with the yaml package in a restricted configuration: core schema, no custom or
 * "known" extra tags (`!!binary`, `!!set`, ...), unknown tags (`!ruby/object:Set`, `!ruby/sym`)
 * fall back to the plain node kind, aliases are limited, nothing is logged. The yaml composer
 * recurses once per nesting level and very deep input can kill the process in ways that cannot
 * be caught, so nesting depth is checked first on the (iteratively built) CST.
 */

import type { CST, DocumentOptions, ParseOptions, SchemaOptions } from 'yaml';
import { yaml } from './lazy-yaml.js';
import { unescapeLine, type UnescapeMode } from './escape.js';

/** Deepest accepted nesting of collections in one message. */
export const MAX_DEPTH = 64;
/** Alias expansion limit passed to yaml (billion-laughs protection). */
export const MAX_ALIAS_COUNT = 10;
/** Longest message text parsed at all (characters); the line splitter normally bounds it. */
export const MAX_DOCUMENT_LENGTH = 1 << 20;

export type DocumentResult = { ok: true; value: unknown } | { ok: false; error: string };

const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  schema: 'core',
  customTags: [],
  resolveKnownTags: false,
  merge: false,
  prettyErrors: false,
  uniqueKeys: false,
  intAsBigInt: false,
  logLevel: 'silent',
  version: '1.2',
};

function tooDeep(): DocumentResult {
  return { ok: false, error: `nesting deeper than ${MAX_DEPTH}` };
}

/** Maximum collection depth of a CST, computed without recursion. */
function cstDepth(tokens: readonly CST.Token[]): number {
  const stack: Array<[CST.Token, number]> = tokens.map((t) => [t, 0]);
  let max = 0;
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (depth > max) max = depth;
    if (max > MAX_DEPTH) return max;
    switch (token.type) {
      case 'document':
        if (token.value) stack.push([token.value, depth]);
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection':
        for (const item of token.items as CST.CollectionItem[]) {
          if (item.key) stack.push([item.key, depth + 1]);
          if (item.value) stack.push([item.value, depth + 1]);
        }
        break;
      case 'block-scalar':
        for (const p of token.props) stack.push([p, depth]);
        break;
      default:
        break;
    }
  }
  return max;
}

/** Maximum nesting depth of a plain JS value (from JSON.parse), computed without recursion. */
function valueDepth(value: unknown): number {
  const stack: Array<[unknown, number]> = [[value, 0]];
  let max = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > max) max = depth;
    if (max > MAX_DEPTH) return max;
    if (v !== null && typeof v === 'object') {
      for (const child of Object.values(v)) stack.push([child, depth + 1]);
    }
  }
  return max;
}

function parseYaml(text: string): DocumentResult {
  const { Parser, Composer } = yaml();
  const tokens = Array.from(new Parser().parse(text));
  if (cstDepth(tokens) > MAX_DEPTH) return tooDeep();
  const docs = Array.from(new Composer(YAML_OPTIONS).compose(tokens, true, text.length));
  if (docs.length !== 1) return { ok: false, error: 'expected exactly one YAML document' };
  const doc = docs[0]!;
  const firstError = doc.errors[0];
  if (firstError) return { ok: false, error: firstError.message };
  const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT, mapAsMap: false });
  // An alias inside its own anchor (`&a [*a]`) makes a value that contains itself: no
  // command needs one, and every consumer would have to guard against it.
  if (isRecursive(value)) return { ok: false, error: 'recursive alias (a value that contains itself)' };
  return { ok: true, value };
}

/** Does `value` contain itself? Iterative, bounded by the depth and alias limits. */
function isRecursive(value: unknown): boolean {
  const onPath = new Set<object>();
  const stack: Array<{ v: object; exit: boolean }> = [];
  if (value !== null && typeof value === 'object') stack.push({ v: value, exit: false });
  while (stack.length) {
    const { v, exit } = stack.pop()!;
    if (exit) {
      onPath.delete(v);
      continue;
    }
    if (onPath.has(v)) return true;
    onPath.add(v);
    stack.push({ v, exit: true });
    for (const child of Object.values(v)) {
      if (child !== null && typeof child === 'object') {
        if (onPath.has(child)) return true;
        stack.push({ v: child, exit: false });
      }
    }
  }
  return false;
}

/** A short, safe description of any parsed value for a log line (never throws). */
export function describeValue(v: unknown, max = 200): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = Array.isArray(v) ? '[...]' : typeof v === 'object' && v !== null ? '{...}' : String(v);
  }
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/**
 * Parse already-unescaped message text: JSON first when it looks like JSON (`{`, `[` or a
 * JSON string), else (or when that fails) YAML. Never throws.
 */
export function parseDocumentText(text: string, maxLength = MAX_DOCUMENT_LENGTH): DocumentResult {
  if (text.length > maxLength) return { ok: false, error: 'message too long' };
  try {
    const head = text.trimStart()[0];
    if (head === '{' || head === '[' || head === '"') {
      let value: unknown;
      let parsed = false;
      try {
        value = JSON.parse(text);
        parsed = true;
      } catch {
        // not JSON; YAML below (e.g. a flow mapping such as `{command: inc}`)
      }
      if (parsed) return valueDepth(value) > MAX_DEPTH ? tooDeep() : { ok: true, value };
    }
    return parseYaml(text);
  } catch (err) {
    // Alias limit (ReferenceError), stack exhaustion (RangeError) or anything else from yaml.
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Strip one leading `:` from the keys of a mapping (Ruby symbols as dumped by psych, e.g.
 * `:command:` gives the key `:command`). When both `x` and `:x` exist, `x` wins.
 * With `deep`, nested mappings (also inside arrays) are rewritten as well.
 */
export function stripSymbolKeys(value: unknown, deep = false): unknown {
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return deep ? v.map(rewrite) : v;
    if (!isPlainMapping(v)) return v;
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(v)) {
      const plain = key.startsWith(':') && key.length > 1 ? key.slice(1) : key;
      if (plain !== key && Object.prototype.hasOwnProperty.call(v, plain)) continue;
      // defineProperty: a `__proto__` key stays an ordinary own property.
      Object.defineProperty(out, plain, {
        value: deep ? rewrite(child) : child,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  };
  return rewrite(value); // depth is bounded by MAX_DEPTH for parsed documents
}

/** A plain JS object (a YAML/JSON mapping), not an array, Buffer, Map, ... */
export function isPlainMapping(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Decode one control line into a generic value: unescape (einhorn mode by default), parse
 * JSON or YAML, and strip Ruby-symbol `:` prefixes from mapping keys at every level. Never
 * throws.
 */
export function decodeDocument(line: string, mode: UnescapeMode = 'einhorn'): DocumentResult {
  const parsed = parseDocumentText(unescapeLine(line, mode));
  return parsed.ok ? { ok: true, value: stripSymbolKeys(parsed.value, true) } : parsed;
}
