/**
 * How a group's children receive their listening sockets: one strategy per
 * protocol a server may already speak. Every strategy sees the same sockets
 * (fd 3, 4, ... in the child, in -b order) and only adds variables; einhorn's
 * EINHORN_* are always set (child-env.ts), whatever else is asked for.
 *
 *   einhorn         EINHORN_FD_COUNT, EINHORN_FD_0, ... (nothing more)
 *   systemd         LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID = the child's own
 *                   pid: set by the exec launcher just before execv (it execs in
 *                   place), asked for with EINHYRNINGSINS_LISTEN_PID=1
 *   server-starter  SERVER_STARTER_PORT=host:port=fd;[v6]:port=fd;/path=fd
 *   port            PORT = the first TCP socket's port, and the bind shim in
 *                   LD_PRELOAD (bind-shim.ts): a server binding $PORT itself gets
 *                   the inherited socket
 *
 * Pure: the master (and, through the shared runtime, any group) asks for the
 * variables once it knows its sockets.
 */
import { bindShimEnv } from './bind-shim.js';
import { HandoffError, type HandoffName } from './handoff-names.js';

export { HANDOFF_NAMES, HandoffError, parseHandoffs, type HandoffName } from './handoff-names.js';

/** The variable the exec launcher reads: set LISTEN_PID to your own pid, then drop me. */
export const LAUNCHER_LISTEN_PID = 'EINHYRNINGSINS_LISTEN_PID';

/** A listening socket as its child sees it. */
export interface HandedSocket {
  /** fd number in the child (3, 4, ...). */
  childFd: number;
  family: 4 | 6 | 'unix';
  /** Numeric address, or the socket path. */
  address: string;
  port: number;
  /** As given: the -b text, or systemd:NAME. */
  text: string;
}

/** What a strategy needs beside the sockets. */
export interface HandoffContext {
  /** The LD_PRELOAD the program would have had (the shim goes in front of it). */
  inheritedPreload: string | undefined;
  /** The shim says one line per substituted bind. */
  shimVerbose: boolean;
}

interface Strategy {
  /** Why these sockets cannot be handed over this way (one line), or null. */
  check(sockets: readonly HandedSocket[]): string | null;
  env(sockets: readonly HandedSocket[], ctx: HandoffContext): Record<string, string>;
}

const STRATEGIES: Readonly<Record<HandoffName, Strategy>> = {
  einhorn: {
    check: () => null,
    env: () => ({}),
  },
  systemd: {
    check: () => null,
    env: (sockets) => ({
      LISTEN_FDS: String(sockets.length),
      LISTEN_FDNAMES: sockets.map(fdName).join(':'),
      [LAUNCHER_LISTEN_PID]: '1',
    }),
  },
  'server-starter': {
    check: (sockets) => {
      const bad = sockets.find((s) => s.family === 'unix' && !expressibleStarterPath(s.address));
      return bad
        ? `--handoff server-starter: the unix socket path ${bad.address} cannot be written in SERVER_STARTER_PORT (it has a ':', ';', '=' or a space)`
        : null;
    },
    env: (sockets) => ({ SERVER_STARTER_PORT: sockets.map(starterEntry).join(';') }),
  },
  port: {
    check: (sockets) =>
      sockets.some((s) => s.family !== 'unix') ? null : '--handoff port needs a TCP socket (-b ADDR:PORT): $PORT names a TCP port',
    env: (sockets, ctx) => {
      const first = sockets.find((s) => s.family !== 'unix') as HandedSocket;
      return { PORT: String(first.port), ...bindShimEnv(sockets, ctx.inheritedPreload, ctx.shimVerbose) };
    },
  },
};

/** Throws HandoffError (one line) when a protocol cannot express these sockets. */
export function checkHandoff(names: readonly HandoffName[], sockets: readonly HandedSocket[]): void {
  for (const name of names) {
    const why = STRATEGIES[name].check(sockets);
    if (why !== null) throw new HandoffError(why);
  }
}

/** The variables every child of the group gets for these protocols (set after EINHORN_*). */
export function handoffEnv(names: readonly HandoffName[], sockets: readonly HandedSocket[], ctx: HandoffContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) Object.assign(env, STRATEGIES[name].env(sockets, ctx));
  return env;
}

/**
 * A socket's LISTEN_FDNAMES entry: systemd's own name for a socket the master
 * got from systemd, else the address it is bound to (':' cannot appear in the
 * list, so it becomes '_': 127.0.0.1_8080, [__1]_8080, unix_/run/app.sock).
 */
export function fdName(s: HandedSocket): string {
  let name: string;
  if (s.text.startsWith('systemd:')) name = s.text.slice('systemd:'.length);
  else if (s.family === 'unix') name = `unix:${s.address}`;
  else name = `${s.family === 6 ? `[${s.address}]` : s.address}:${s.port}`;
  return name.replace(/[^\x21-\x7e]|:/g, '_').slice(0, 255) || 'unknown';
}

/** SERVER_STARTER_PORT's entry, as Server::Starter writes it: 127.0.0.1:8080=3, [::1]:8080=4, /path=5. */
function starterEntry(s: HandedSocket): string {
  if (s.family === 'unix') return `${s.address}=${s.childFd}`;
  return `${s.family === 6 ? `[${s.address}]` : s.address}:${s.port}=${s.childFd}`;
}

/** The readers split on ';' then on the first '=', and read 'x:N' as host:port. */
function expressibleStarterPath(path: string): boolean {
  return path !== '' && !/[:;=\s]/.test(path);
}
