/**
 * The hand-off strategies by name. Adding one (systemd's LISTEN_FDS, Server::Starter's
 * SERVER_STARTER_PORT) is one module exporting a HandOff and one entry here.
 */
import { einhornHandOff } from './einhorn.js';
import { portHandOff } from './port.js';
import type { HandOff, HandOffOptions } from './types.js';

export type { HandOff, HandOffContext, HandOffOptions, SharedListener } from './types.js';
export { bindShimProblem } from './port.js';

const STRATEGIES: Readonly<Record<string, (opts: HandOffOptions) => HandOff>> = {
  einhorn: () => einhornHandOff,
  port: portHandOff,
};

export const HANDOFF_NAMES: readonly string[] = Object.keys(STRATEGIES);

/** The strategies named, in order; an unknown name is one line. */
export function handOffs(names: readonly string[], opts: HandOffOptions): HandOff[] {
  return names.map((n) => {
    const make = Object.hasOwn(STRATEGIES, n) ? STRATEGIES[n] : undefined;
    if (!make) throw new Error(`unknown hand-off '${n}' (known: ${HANDOFF_NAMES.join(', ')})`);
    return make(opts);
  });
}

/** Every strategy's variables for one child, later ones winning. */
export function handOffEnv(list: readonly HandOff[], ctx: Parameters<HandOff['env']>[0]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list) Object.assign(out, h.env(ctx));
  return out;
}
