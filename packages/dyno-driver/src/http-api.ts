/**
 * hsup's HTTP control API, on the driver's control socket (the control
 * server hands over connections whose first bytes are an HTTP request line):
 *
 *   GET  /health        200 "OK"
 *   GET  /status        {"Processes": {"web": {"Status": "Started", "IPAddress": "0.0.0.0", "Port": 5000}}}
 *   POST /control/stop  {"Processes": ["web"]} -> {"StoppedProcesses": ["web"]}
 *
 * One request per connection (the reply says `Connection: close`); heads
 * over 16 KiB and bodies over 64 KiB are refused.
 */
import type { Socket } from 'node:net';

export interface HttpApi {
  status(): { Processes: Record<string, { Status: string; IPAddress: string; Port: number }> };
  /** Stop these process types; returns the ones that were running. */
  stop(types: readonly string[]): string[];
}

const MAX_HEAD = 16 * 1024;
const MAX_BODY = 64 * 1024;
const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
};

function reply(socket: Socket, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  const data = Buffer.from(body);
  const head =
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n` +
    `Content-Type: ${type}\r\nContent-Length: ${data.length}\r\nConnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head), data]));
}

export function serveHttp(socket: Socket, first: Buffer, api: HttpApi): void {
  let buf = first;
  let done = false;
  const tryHandle = () => {
    if (done) return;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD) {
        done = true;
        reply(socket, 413, 'request head too large\n');
      }
      return;
    }
    const head = buf.subarray(0, end).toString('latin1').split('\r\n');
    const [method, target] = (head[0] ?? '').split(' ');
    const headers = new Map<string, string>();
    for (const h of head.slice(1)) {
      const c = h.indexOf(':');
      if (c > 0) headers.set(h.slice(0, c).trim().toLowerCase(), h.slice(c + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? '0');
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_BODY) {
      done = true;
      return reply(socket, 413, 'request body too large\n');
    }
    if (buf.length < end + 4 + length) return;
    done = true;
    const body = buf.subarray(end + 4, end + 4 + length).toString('utf8');
    const path = (target ?? '/').split('?')[0];
    try {
      route(socket, method ?? '', path ?? '/', body, api);
    } catch (err) {
      reply(socket, 500, `${(err as Error).message}\n`);
    }
  };
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    tryHandle();
  });
  tryHandle();
}

function route(socket: Socket, method: string, path: string, body: string, api: HttpApi): void {
  switch (path) {
    case '/health':
      return reply(socket, 200, 'OK');
    case '/status':
      if (method !== 'GET') return reply(socket, 405, 'Method Not Allowed\n');
      return reply(socket, 200, JSON.stringify(api.status()) + '\n', 'application/json');
    case '/control/stop': {
      if (method !== 'POST') return reply(socket, 405, 'Method Not Allowed\n');
      let req: unknown;
      try {
        req = JSON.parse(body);
      } catch (err) {
        // hsup answers a body it cannot decode with 500 and the decoder's error.
        return reply(socket, 500, `${(err as Error).message}\n`);
      }
      const procs = typeof req === 'object' && req !== null ? Object.entries(req).find(([k]) => k.toLowerCase() === 'processes')?.[1] : undefined;
      const types = Array.isArray(procs) ? procs.filter((p): p is string => typeof p === 'string') : [];
      return reply(socket, 200, JSON.stringify({ StoppedProcesses: api.stop(types) }) + '\n', 'application/json');
    }
    default:
      return reply(socket, 404, '404 page not found\n');
  }
}
