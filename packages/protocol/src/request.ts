/**
 * Server side: one control line -> a validated request.
 */

import { isPlainMapping, MAX_DOCUMENT_LENGTH, parseDocumentText, stripSymbolKeys } from './document.js';
import { unescapeLine, type UnescapeMode } from './escape.js';

export interface Request {
  command: string;
  /** `[]` when the request had no `args` (or `args: null`); see `raw.args` to tell apart. */
  args: string[];
  id?: string | number;
  pid?: number;
  requestId?: string | number;
  user?: string;
  /** The whole mapping, with Ruby-symbol `:` prefixes stripped from its top-level keys. */
  raw: Record<string, unknown>;
}

export type ParseRequestResult = { ok: true; request: Request } | { ok: false; error: string; detail?: string };

export interface ParseRequestOptions {
  /** How to undo the line escaping. Default `lenient` (any `%XX`). */
  unescape?: UnescapeMode;
}

/** einhorn's reply to an unparsable line or a document that is not a mapping. */
export const PARSE_ERROR = 'Could not parse command';
/** einhorn's reply when there is no `command`. */
export const NO_COMMAND_ERROR = 'No "command" parameter provided; not sure what you want me to do.';
/** einhorn's reply when `args` is not an array. */
export const ARGS_NOT_ARRAY_ERROR = 'Args must be an array';

const MAX_INSPECT = 200;

/** Ruby class name einhorn would print for a non-string argument. */
function rubyClassName(v: unknown): string {
  if (v === null || v === undefined) return 'NilClass';
  if (Array.isArray(v)) return 'Array';
  if (isPlainMapping(v)) return 'Hash';
  if (typeof v === 'string') return 'String';
  if (typeof v === 'number') return Number.isInteger(v) ? 'Integer' : 'Float';
  if (typeof v === 'boolean') return v ? 'TrueClass' : 'FalseClass';
  return 'Object';
}

function inspect(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > MAX_INSPECT ? `${text.slice(0, MAX_INSPECT)}...` : text;
}

function isScalarId(v: unknown): v is string | number {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** A process id: a positive integer (0 and negatives name process groups in kill/getpgid). */
function parsePid(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]{1,15}$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n > 0 && n <= 0x7fffffff ? n : undefined;
}

function parseArgs(v: unknown): { ok: true; args: string[] } | { ok: false; error: string } {
  if (v === undefined || v === null) return { ok: true, args: [] };
  if (!Array.isArray(v)) return { ok: false, error: ARGS_NOT_ARRAY_ERROR };
  const args: string[] = [];
  for (const a of v as unknown[]) {
    if (typeof a === 'string') args.push(a);
    else if (typeof a === 'number' || typeof a === 'boolean') args.push(String(a));
    else return { ok: false, error: `Argument is a ${rubyClassName(a)}, not a string: ${inspect(a)}` };
  }
  return { ok: true, args };
}

/**
 * Parse one request line (without its `\n`): unescape, then JSON (when it starts with `{` or
 * `[`) or YAML, then validate. Never throws. `error` is the text einhorn would reply; `detail`
 * (for logs) says what the parser disliked.
 */
export function parseRequest(line: string, options: ParseRequestOptions = {}): ParseRequestResult {
  if (line.length > MAX_DOCUMENT_LENGTH) return { ok: false, error: PARSE_ERROR, detail: 'line too long' };
  const parsed = parseDocumentText(unescapeLine(line, options.unescape ?? 'lenient'));
  if (!parsed.ok) return { ok: false, error: PARSE_ERROR, detail: parsed.error };
  if (!isPlainMapping(parsed.value)) {
    return { ok: false, error: PARSE_ERROR, detail: `not a mapping: ${rubyClassName(parsed.value)}` };
  }
  const raw = stripSymbolKeys(parsed.value) as Record<string, unknown>;

  const command = raw['command'];
  if (typeof command !== 'string' || command === '') return { ok: false, error: NO_COMMAND_ERROR };

  const args = parseArgs(raw['args']);
  if (!args.ok) return { ok: false, error: args.error };

  const request: Request = { command, args: args.args, raw };
  const id = raw['id'];
  if (isScalarId(id)) request.id = id;
  const pid = parsePid(raw['pid']);
  if (pid !== undefined) request.pid = pid;
  const requestId = raw['request_id'];
  if (isScalarId(requestId)) request.requestId = requestId;
  const user = raw['user'];
  if (typeof user === 'string') request.user = user;
  return { ok: true, request };
}
