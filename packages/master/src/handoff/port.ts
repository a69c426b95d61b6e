/**
 * Heroku's protocol, for a stock app that binds $PORT itself: PORT is the first TCP
 * socket's port, and the bind shim (LD_PRELOAD) turns the app's own bind() of that port
 * into the inherited socket, so every generation accepts from one kernel queue.
 */
import { existsSync } from 'node:fs';
import * as native from 'native-reuseport';
import type { HandOff, HandOffContext, HandOffOptions } from './types.js';

/** The bind shim can be preloaded, or why not (said once per process). */
let shimProblem: string | null | undefined;

export function bindShimProblem(): string | null {
  if (shimProblem === undefined) {
    const path = native.bindShimPath;
    shimProblem = !existsSync(path) ? 'is missing' : /[\s:]/.test(path) ? 'has a space or colon in its path, which LD_PRELOAD cannot name' : null;
  }
  return shimProblem;
}

export function portHandOff(opts: HandOffOptions): HandOff {
  let warned = false;
  return {
    name: 'port',
    env(ctx: HandOffContext): Record<string, string> {
      const i = ctx.listeners.findIndex((s) => s.family !== 'unix');
      if (i < 0) return {};
      const s = ctx.listeners[i] as HandOffContext['listeners'][number];
      const e: Record<string, string> = { PORT: String(s.port ?? native.getsockname(s.fd).port) };
      const problem = bindShimProblem();
      if (problem) {
        if (!warned) {
          warned = true;
          opts.log.warn(
            `The bind shim ${native.bindShimPath} ${problem}: web processes that bind $PORT themselves will fail with EADDRINUSE; only EINHORN_FD_0 (fd 3) works`,
          );
        }
        return e;
      }
      const preload = ctx.base.LD_PRELOAD;
      e.LD_PRELOAD = preload ? `${native.bindShimPath} ${preload}` : native.bindShimPath;
      e.EINHYRNINGSINS_BIND_FDS = String(3 + i);
      if (opts.verbose) e.EINHYRNINGSINS_BIND_VERBOSE = '1';
      return e;
    },
  };
}
