/**
 * minisv's HTTP API (github.com/kanocz/minisv, http.go), answered by the dyno driver on
 * its control socket and, with a token, on --http:
 *
 *   GET    /                     every task's status (JSON, minisv's shape)
 *   GET    /NAME/status          one task's
 *   GET    /NAME/stop            stop until restart or run
 *   GET    /NAME/restart         start if stopped, else a graceful restart (new before old)
 *   GET    /NAME/term|hup|kill   SIGTERM / SIGHUP / SIGKILL to the task's processes
 *   GET    /NAME/run             run a one-time task (to its end; never restarted)
 *   GET    /NAME/rotate          reopen the task's log file (a new name with logsuffixdate)
 *   POST   /NAME                 add a task (minisv's JSON task) and start it
 *   DELETE /NAME                 stop it and remove it
 *
 * (also under /api/, as newer minisv versions serve them). Where minisv answers 200 with a
 * word ("task not found", "it's a one-time task", "task just exist"), this answers with
 * the status the problem has and a JSON body naming it: 404 unknown task or action, 405
 * wrong method (with Allow), 409 a conflict (the name exists, `run` of a task that is not
 * one-time or already runs, `restart` of a one-time task, a signal to a task with no
 * process, `rotate` without a log file, POST/DELETE where tasks cannot be added), 400 a
 * body that is not a JSON task; 413 (too large) comes from the request reader.
 */
import type { HttpReply, HttpRequest } from '@einhyrningsins/master';

export const VERBS = ['stop', 'restart', 'term', 'hup', 'kill', 'run', 'rotate', 'status'] as const;
export type Verb = (typeof VERBS)[number];

/** An answer of the tasks' side: a status and a JSON value. */
export interface Answer {
  status: number;
  body: unknown;
}

export interface MinisvTasks {
  /** GET /: every task's status by name. */
  all(): Record<string, unknown>;
  has(name: string): boolean;
  verb(name: string, verb: Verb): Answer | Promise<Answer>;
  /** POST /NAME with the body's text. */
  add(name: string, body: string): Answer | Promise<Answer>;
  remove(name: string): Answer | Promise<Answer>;
}

export const json = (status: number, value: unknown, headers?: Record<string, string>): HttpReply => ({
  status,
  body: JSON.stringify(value) + '\n',
  type: 'application/json',
  ...(headers ? { headers } : {}),
});

export const problem = (status: number, error: string, extra: Record<string, unknown> = {}): Answer => ({ status, body: { error, ...extra } });

const reply = (a: Answer): HttpReply => json(a.status, a.body);

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** The reply to a request for minisv's API, or null when the path is not one of its. */
export function answerMinisv(req: HttpRequest, tasks: MinisvTasks): HttpReply | Promise<HttpReply> | null {
  let path = req.path;
  if (path === '/api' || path.startsWith('/api/')) path = path.slice(4) || '/';
  if (path === '/') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: `${req.method} / is not allowed (GET / is every task's status)` }, { Allow: 'GET' });
    return json(200, tasks.all());
  }
  const parts = path.slice(1).split('/');
  if (parts.length > 2 || (parts.length === 2 && parts[1] === '')) {
    if (parts.length === 2 && parts[1] === '') parts.pop();
    else return reply(problem(404, `no such path ${JSON.stringify(req.path.slice(0, 200))} (expected /NAME or /NAME/ACTION)`));
  }
  const name = decode(parts[0] as string);
  if (name === null || name === '') return reply(problem(400, `bad task name in the path ${JSON.stringify(req.path.slice(0, 200))}`));
  if (parts.length === 1) {
    if (req.method === 'POST') return settle(tasks.add(name, req.body));
    if (req.method === 'DELETE') {
      if (!tasks.has(name)) return reply(problem(404, `unknown task ${JSON.stringify(name)}`, { task: name }));
      return settle(tasks.remove(name));
    }
    // Not a task: 404 (as hsup answers an unknown path); a task: the method is what is wrong.
    if (!tasks.has(name)) return reply(problem(404, `unknown task ${JSON.stringify(name)} (POST /${name} adds it)`, { task: name }));
    return json(405, { error: `${req.method} /${name} is not allowed: POST adds the task, DELETE removes it (GET /${name}/status shows it)`, task: name }, { Allow: 'POST, DELETE' });
  }
  const verb = parts[1] as string;
  if (!(VERBS as readonly string[]).includes(verb)) {
    return reply(problem(404, `unknown action ${JSON.stringify(verb.slice(0, 100))} (known: ${VERBS.join(', ')})`, { task: name }));
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return json(405, { error: `${req.method} /${name}/${verb} is not allowed (use GET)`, task: name }, { Allow: 'GET' });
  }
  if (!tasks.has(name)) return reply(problem(404, `unknown task ${JSON.stringify(name)}`, { task: name }));
  return settle(tasks.verb(name, verb as Verb));
}

function settle(a: Answer | Promise<Answer>): HttpReply | Promise<HttpReply> {
  return a instanceof Promise ? a.then(reply) : reply(a);
}
