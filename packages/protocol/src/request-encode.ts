/**
 * Client side: build a request line.
 */

import { yaml } from './lazy-yaml.js';
import { escapeLine } from './escape.js';

export interface RequestInput {
  command: string;
  args?: string[];
  id?: string | number;
  pid?: number;
  user?: string;
}

export type RequestFraming = 'json' | 'yaml';

/**
 * `json`: one JSON object (`{"command":..., "args"?, "id"?, "pid"?, "user"?}`), what
 * einhyrningsins 0.2 and most ack clients send. `yaml`: einhorn's framing, a `---` block
 * document as einhornsh/Ruby send it. Both escaped einhorn's way and ended by `\n`.
 * YAML strings are quoted as YAML 1.1 needs (`'yes'`, `'3'`) so Ruby's psych reads them back
 * as strings.
 */
export function encodeRequest(req: RequestInput, framing: RequestFraming): string {
  const body: Record<string, unknown> = { command: req.command };
  if (req.args !== undefined) body['args'] = [...req.args];
  if (req.id !== undefined) body['id'] = req.id;
  if (req.pid !== undefined) body['pid'] = req.pid;
  if (req.user !== undefined) body['user'] = req.user;
  if (framing === 'json') return `${escapeLine(JSON.stringify(body))}\n`;
  const text = yaml().stringify(body, {
    version: '1.1',
    directives: false,
    lineWidth: 0,
    minContentWidth: 0,
  });
  return `${escapeLine(`---\n${text}`)}\n`;
}
