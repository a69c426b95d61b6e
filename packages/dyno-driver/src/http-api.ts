/**
 * hsup's HTTP control API, on the driver's control socket (the control
 * server hands over connections whose first bytes are an HTTP request line):
 *
 *   GET  /health        200 "OK"
 *   GET  /status        {"Processes": {"web": {"Status": "Started", "IPAddress": "0.0.0.0", "Port": 5000}}}
 *   POST /control/stop  {"Processes": ["web"]} -> {"StoppedProcesses": ["web"]}
 *
 * The control server reads the request under the limits every control connection has
 * (packages/master/src/http-request.ts): one request per connection (the reply says
 * `Connection: close`), heads over 16 KiB and bodies over 64 KiB refused, the idle
 * timeout and eviction of einhorn connections.
 */
import type { HttpReply, HttpRequest } from '@einhyrningsins/master';

export interface HttpApi {
  status(): { Processes: Record<string, { Status: string; IPAddress: string; Port: number }> };
  /** Stop these process types; returns the ones that were running. */
  stop(types: readonly string[]): string[];
}

const json = (status: number, value: unknown): HttpReply => ({ status, body: JSON.stringify(value) + '\n', type: 'application/json' });

/** The reply to one request (read, with its limits, by the control server). */
export function answerHttp(req: HttpRequest, api: HttpApi): HttpReply {
  switch (req.path) {
    case '/health':
      return { status: 200, body: 'OK' };
    case '/status':
      if (req.method !== 'GET') return { status: 405, body: 'Method Not Allowed\n' };
      return json(200, api.status());
    case '/control/stop': {
      if (req.method !== 'POST') return { status: 405, body: 'Method Not Allowed\n' };
      let body: unknown;
      try {
        body = JSON.parse(req.body);
      } catch (err) {
        // hsup answers a body it cannot decode with 500 and the decoder's error.
        return { status: 500, body: `${(err as Error).message}\n` };
      }
      const procs = typeof body === 'object' && body !== null ? Object.entries(body).find(([k]) => k.toLowerCase() === 'processes')?.[1] : undefined;
      const types = Array.isArray(procs) ? procs.filter((p): p is string => typeof p === 'string') : [];
      return json(200, { StoppedProcesses: api.stop(types) });
    }
    default:
      return { status: 404, body: '404 page not found\n' };
  }
}
