/**
 * How a group's children receive their listening sockets: a property of the group.
 * The sockets are always at fds 3, 4, ... with einhorn's variables (EINHORN_FD_*),
 * whatever else a strategy adds; each strategy is one small module (see index.ts).
 */
import type { Logger } from '../log.js';

/** A listening socket handed to every child of a group. */
export interface SharedListener {
  fd: number;
  family: 4 | 6 | 'unix';
  /** Its TCP port (0 for a unix socket), when known. */
  port?: number;
}

export interface HandOffContext {
  /** The group's sockets, in child fd order (3, 4, ...). */
  listeners: readonly SharedListener[];
  /** The environment the child starts from (an LD_PRELOAD already there is kept). */
  base: NodeJS.ProcessEnv;
}

export interface HandOff {
  readonly name: string;
  /** Variables this protocol sets in a child, after einhorn's. */
  env(ctx: HandOffContext): Record<string, string>;
}

export interface HandOffOptions {
  log: Logger;
  /** The bind shim logs what it does (the dyno driver's default verbosity). */
  verbose: boolean;
}
