/**
 * Replies: encoded by the master, decoded by the ctl.
 */

import { yamlDocument } from './yaml-emit.js';
import { isPlainMapping, parseDocumentText, stripSymbolKeys } from './document.js';
import { escapeLine, unescapeLine, type UnescapeMode } from './escape.js';

export interface ReplyInput {
  message: string;
  requestId?: string | number;
  /** More replies follow for this request (streaming, e.g. `upgrade`). */
  wait?: boolean;
  /** Extra structured fields, copied into the JSON object. */
  [extra: string]: unknown;
}

export type DecodedReply = Record<string, unknown> & { message: string; wait: boolean; requestId?: string | number };

export type DecodeReplyResult = { ok: true; reply: DecodedReply } | { ok: false; error: string };

const RESERVED = new Set(['message', 'requestId', 'request_id', 'wait']);

/**
 * One reply line: a YAML document as einhorn's psych writes it,
 * `---\nmessage: ...\nrequest_id: 4\nwait: true\n` (+ extra structured fields), escaped
 * einhorn's way, plus `\n`. einhorn's Ruby and Go clients YAML-load it, and line-oriented
 * clients that look for a `message:` line (plain, quoted or a `|` block) find one.
 * `request_id` appears only when given, `wait` only when true; undefined extras are dropped.
 */
export function encodeReply(reply: ReplyInput): string {
  const out: Record<string, unknown> = { message: reply.message };
  if (reply.requestId !== undefined) out['request_id'] = reply.requestId;
  if (reply.wait === true) out['wait'] = true;
  for (const [key, value] of Object.entries(reply)) {
    if (RESERVED.has(key) || value === undefined) continue;
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return `${escapeLine(yamlDocument(out))}\n`;
}

/**
 * Decode one reply line (without `\n`) from einhorn (YAML, possibly Ruby-symbol keys), from
 * this project (JSON object) or from einhyrningsins 0.2 (a bare JSON string, which becomes
 * `{ message, wait: false }`). Never throws.
 */
export function decodeReply(line: string, mode: UnescapeMode = 'einhorn'): DecodeReplyResult {
  // Replies come from the master and may be large (the state of hundreds of workers): the
  // reader's line splitter bounds them, not the request's document limit.
  const parsed = parseDocumentText(unescapeLine(line, mode), Number.POSITIVE_INFINITY);
  if (!parsed.ok) return { ok: false, error: `Could not parse reply: ${parsed.error}` };
  const value = parsed.value;
  if (typeof value === 'string' && line.trimStart().startsWith('"')) {
    return { ok: true, reply: { message: value, wait: false } };
  }
  if (!isPlainMapping(value)) return { ok: false, error: 'Reply is not a mapping' };
  const fields = stripSymbolKeys(value) as Record<string, unknown>;
  const message = fields['message'];
  if (typeof message !== 'string') return { ok: false, error: 'Reply has no string "message"' };
  const reply: DecodedReply = { ...fields, message, wait: fields['wait'] === true };
  const requestId = fields['request_id'];
  if (typeof requestId === 'string' || (typeof requestId === 'number' && Number.isFinite(requestId))) {
    reply.requestId = requestId;
  }
  return { ok: true, reply };
}
