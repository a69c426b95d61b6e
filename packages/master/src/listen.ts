import * as native from 'native-reuseport';
import type { ResolvedBind } from './bind-spec.js';
import { StartupError } from './errors.js';

/**
 * Bind and listen on a resolved -b spec with exactly its flags (never
 * accepting); a failure is a StartupError that names `what` and the reason
 * in plain words.
 */
export function listenOn(bind: ResolvedBind, opts: { backlog: number; v6Only: boolean | null; what: string }): number {
  try {
    return native.listenTcp({
      host: bind.address,
      port: bind.port,
      family: bind.family,
      reuseAddr: bind.reuseAddr,
      reusePort: bind.reusePort,
      nonBlock: bind.nonBlock,
      v6Only: bind.family === 6 ? opts.v6Only : null,
      backlog: opts.backlog,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'EADDRINUSE'
        ? 'address already in use'
        : e.code === 'EACCES'
          ? 'permission denied'
          : e.code === 'EADDRNOTAVAIL'
            ? 'address not available on this host'
            : e.message;
    throw new StartupError(`cannot bind ${opts.what}: ${why}`);
  }
}
