/**
 * The master's reload, its own halves: what its snapshot holds (reload.ts: sockets,
 * the control socket, the lockfile, the pidfile, the one group's engine) and, in the
 * new image, taking the old one's fds and files over instead of creating them. The
 * exec itself is the runtime's (host/reexec.ts).
 */
import { resolve } from 'node:path';
import * as native from 'native-reuseport';
import type { SerializedCore, SerializedFleet } from '@einhyrningsins/core';
import type { Cleanup } from './cleanup.js';
import { ControlServer, type RequestHandler } from './control-server.js';
import { StartupError } from './errors.js';
import { holdLock, removePidfileAtExit, type HeldLock } from './host/files.js';
import type { ConnectionSnapshot } from './host/reexec.js';
import type { Logger } from './log.js';
import type { Options } from './options.js';
import type { BoundSocket, ReloadState } from './reload.js';
import type { SlotRecord } from './slot-history.js';
import type { FetchMemory } from './fetch-policy.js';
import { releaser } from './unix-bind.js';
import { VERSION } from './version.js';
import { monotonicMs } from './clock.js';

export interface MasterSnapshot {
  sockets: BoundSocket[];
  socketPath: string;
  control: { fd: number; ino: number };
  lock: HeldLock | null;
  startedAtWall: number;
  reloads: number;
  core: SerializedCore | SerializedFleet;
  slots: Record<string, SlotRecord>;
  /** --fetch's memory (null without --fetch). */
  fetch: FetchMemory | null;
}

/** The master's snapshot for the new image, and the fds it takes over. */
export function masterState(
  s: MasterSnapshot,
  opts: Options,
  argv: readonly string[],
  log: Logger,
  connections: ConnectionSnapshot[],
  then: 'upgrade' | null = null,
): { state: ReloadState; fds: number[] } {
  const state: ReloadState = {
    format: 1,
    version: VERSION,
    wall: Date.now(),
    monotonic: monotonicMs(),
    argv: [...argv],
    startedAtWall: s.startedAtWall,
    reloads: s.reloads + 1,
    sockets: s.sockets,
    control: { fd: s.control.fd, path: s.socketPath, ino: s.control.ino },
    connections,
    lockfile: s.lock,
    pidfile: opts.pidfile ? resolve(opts.pidfile) : null,
    verbosity: log.verbosity,
    core: s.core,
    slots: s.slots,
    ...(s.fetch ? { fetch: s.fetch } : {}),
    ...(then ? { then } : {}),
  };
  return { state, fds: [...s.sockets.map((x) => x.fd), ...(s.lock ? [s.lock.fd] : [])] };
}

export interface TakenOver {
  state: ReloadState;
  server: ControlServer;
  sockets: BoundSocket[];
  lock: HeldLock | null;
}

/** The new image of a reload: take over the old one's fds and files instead of creating them. */
export async function takeOver(
  fd: number,
  opts: Options,
  log: Logger,
  cleanup: Cleanup,
  onRequest: RequestHandler,
): Promise<TakenOver> {
  let state: ReloadState;
  // The snapshot's checks are loaded only here, by the image a reload starts (start-up RSS).
  const { readState } = await import('./reload-state-check.js');
  try {
    state = readState(fd);
  } catch (err) {
    throw new StartupError(`cannot read the reload state on fd ${fd}: ${(err as Error).message}`);
  }
  const sockets: BoundSocket[] = [];
  for (const x of state.sockets) {
    const info = native.fdInfo(x.fd);
    if (!info.listening) throw new StartupError(`reload: fd ${x.fd} (${x.text}) is not a listening socket any more`);
    native.setCloexec(x.fd, true);
    cleanup.add(x.unixFile ? releaser(x.fd, x.unixFile.path, x.unixFile.ino) : () => native.close(x.fd));
    sockets.push(x);
  }
  let lock: HeldLock | null = null;
  if (state.lockfile) {
    native.setCloexec(state.lockfile.fd, true);
    lock = holdLock(state.lockfile.fd, state.lockfile.path, cleanup);
  }
  native.setCloexec(state.control.fd, true);
  const server = await ControlServer.fromFd(state.control.fd, state.control.path, state.control.ino, opts.socketMode, log, onRequest, {
    idleTimeoutMs: opts.controlIdleTimeoutSec * 1000,
  });
  cleanup.add(() => server.close());
  if (state.pidfile) removePidfileAtExit(state.pidfile, cleanup);
  log.verbosity = state.verbosity;
  return { state, server, sockets, lock };
}

