/**
 * The driver's HTTP API: hsup's (http-api.ts) and minisv's (minisv/http-api.ts) over the
 * driver's state, on the control socket and, with a token, on --http ADDR:PORT.
 */
import type { HttpHandler, HttpRequest, Logger, Runtime } from '@einhyrningsins/master';
import { answerHttp, type HttpApi } from './http-api.js';
import type { Listener } from './web-socket.js';
import { answerMinisv, type MinisvTasks } from './minisv/http-api.js';

export function dynoHttpApi(runtime: Runtime<unknown>, listener: () => Listener | null, appPort: () => string | undefined, log: Logger): HttpApi {
  return {
    status: () => {
      const out: Record<string, { Status: string; IPAddress: string; Port: number }> = {};
      const l = listener();
      const port = l?.port ?? Number(appPort() ?? 0);
      for (const g of runtime.groups()) {
        const snap = g.snapshot;
        const live = snap.workers.some((w) => w.pid !== null && (w.state === 'up' || w.state === 'starting'));
        const status = g.retiring || snap.shuttingDown ? (snap.workers.length ? 'Retiring' : 'Retired') : live ? 'Started' : 'Stopped';
        out[g.name] = { Status: status, IPAddress: l?.address ?? '127.0.0.1', Port: port };
      }
      return { Processes: out };
    },
    stop: (types) => {
      const stopped: string[] = [];
      for (const t of types) {
        if (!runtime.group(t)) continue;
        log.info(`[${t}] stopped through the HTTP API (POST /control/stop): scaling to 0`);
        runtime.feed({ type: 'request', targets: [t], request: { type: 'setWorkers', count: 0 } });
        stopped.push(t);
      }
      return stopped;
    },
  };
}

/** hsup's three paths (/health, /status, /control/stop, any method) keep hsup's answers; every other path is minisv's. */
export function driverHttpHandler(hsup: () => HttpApi, minisv: () => MinisvTasks): HttpHandler {
  return (req: HttpRequest) => {
    // Whatever the method: hsup answers POST /status with 405, as before minisv's verbs.
    if (req.path === '/health' || req.path === '/status' || req.path === '/control/stop') return answerHttp(req, hsup());
    return answerMinisv(req, minisv()) ?? answerHttp(req, hsup());
  };
}
