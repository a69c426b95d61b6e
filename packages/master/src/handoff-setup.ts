/**
 * The master's side of --handoff: checks the bound sockets against the
 * protocols asked for (a HandoffError, exit 2, before any child starts), warns
 * about what the bind shim cannot reach, and gives the variables its group's
 * children get at every spawn.
 */
import type { HandoffName } from './handoff-names.js';
import { checkHandoff, handoffEnv, type HandedSocket } from './handoff.js';
import { bindShimProblem, staticExecutableWarning } from './bind-shim.js';
import type { Logger } from './log.js';
import { resolveProgram } from './program.js';
import type { BoundSocket } from './reload.js';

export interface MasterHandoff {
  names: readonly HandoffName[];
  /** The sockets in the order the children get them (fd 3, 4, ...). */
  sockets: readonly BoundSocket[];
  env: NodeJS.ProcessEnv;
  program: string | null;
  cwd: string;
  log: Logger;
  /** Warn (a fresh master); a reloaded image said it all already. */
  warn: boolean;
}

/** Throws HandoffError; returns the variables for every child (nothing when only einhorn's). */
export function setUpHandoff(h: MasterHandoff): Record<string, string> | null {
  const sockets: HandedSocket[] = h.sockets.map((s, i) => ({ childFd: 3 + i, family: s.family, address: s.address, port: s.port, text: s.text }));
  checkHandoff(h.names, sockets);
  if (h.names.length === 1) return null;
  if (h.warn && h.names.includes('port')) {
    const problem = bindShimProblem();
    if (problem) h.log.warn(`${problem}: a server that binds $PORT itself will fail with EADDRINUSE; only EINHORN_FD_0 (fd 3) works`);
    if (h.program !== null) {
      let exe: string | null = null;
      try {
        exe = resolveProgram(h.program, h.env.PATH, h.cwd);
      } catch {
        /* the spawn says so */
      }
      const warning = exe === null ? null : staticExecutableWarning('--handoff port: the program', exe, 'EINHORN_FD_0 (fd 3) or LISTEN_FDS');
      if (warning) h.log.warn(warning);
    }
  }
  return handoffEnv(h.names, sockets, { inheritedPreload: h.env.LD_PRELOAD, shimVerbose: h.log.verbosity <= 0 });
}
