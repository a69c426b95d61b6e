/**
 * Where replies go: one route per request that is owed replies, one type for every
 * program. einhorn's protocol: a request with an id gets every progress reply
 * (`wait: true`) and the final one; a request without an id gets exactly one reply.
 * Which one is the program's policy: einhorn's master sends the first (einhorn's old
 * protocol, e.g. "Upgrading smoothly, as commanded"), the dyno driver the final one.
 */
import type { ControlConnection, ReplyFields } from '../control-server.js';
import type { Logger } from '../log.js';

export type OneReply = 'first' | 'final';

interface Route {
  conn: ControlConnection;
  requestId: string | number | undefined;
  streaming: boolean;
  sent: number;
}

export class ReplyRoutes {
  private readonly routes = new Map<number, Route>();
  private next = 1;

  constructor(
    private readonly oneReply: OneReply,
    private readonly log: Logger | null = null,
  ) {}

  /** A token for the replies to this request. */
  open(conn: ControlConnection, requestId: string | number | undefined): number {
    const id = this.next++;
    this.routes.set(id, { conn, requestId, streaming: requestId !== undefined, sent: 0 });
    return id;
  }

  reply(to: number, message: string, wait: boolean, ok: boolean): void {
    const route = this.routes.get(to);
    if (!route) return;
    if (!wait) this.routes.delete(to);
    if (route.conn.closed) {
      this.routes.delete(to);
      return;
    }
    const fields: ReplyFields = { message };
    if (!ok) fields.error = true;
    if (!route.streaming) {
      if (this.oneReply === 'first' ? route.sent === 0 : !wait) route.conn.send(fields);
      route.sent += 1;
      return;
    }
    route.sent += 1;
    if (wait) fields.wait = true;
    if (this.log?.tracing) this.log.trace(`Control connection #${route.conn.id} reply: ${JSON.stringify(fields)}`);
    route.conn.send(fields, route.requestId);
  }
}
