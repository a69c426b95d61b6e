/**
 * The driver's reload (the runtime's re-exec, host/reexec.ts): what its snapshot holds
 * and, in the new image, taking the old one's fds over. Every process of every type
 * stays (they are still this process's children), with its output; the web socket and
 * the control socket never close, so no request and no client sees the exec.
 */
import * as native from 'native-reuseport';
import { monotonicMs, type Runtime } from '@einhyrningsins/master';
import { ControlServer, StartupError, readSnapshot, type Cleanup, type ConnectionSnapshot, type FetchMemory, type Logger, type RequestHandler } from '@einhyrningsins/master';
import type { OutputPipes } from './dyno-output.js';
import type { ConfigControlSnapshot } from './config-control.js';
import type { PhaseResult } from './release-phase.js';
import type { PreparedRelease } from './release.js';
import { DYNO_STATE_FORMAT, type DynoReloadState } from './dyno-reload-state.js';
import { openFds } from './carried-pipes.js';
import type { Listener } from './web-socket.js';
import type { TypeLaunch } from './release-applier.js';
import { VERSION } from './version.js';
import { checkDynoState, checkDynoStateFds } from './dyno-state-check.js';

export { DYNO_STATE_FORMAT, type DynoReloadState };

/** The driver's snapshot for the next image. */
export function dynoReloadState(d: {
  runtime: Runtime<TypeLaunch>;
  server: ControlServer;
  reloads: number;
  connections: ConnectionSnapshot[];
  listener: Listener | null;
  release: PreparedRelease | null;
  rejected: DynoReloadState['rejected'];
  releasePhase: PhaseResult | null;
  verbosity: number;
  output: OutputPipes[];
  config: ConfigControlSnapshot | null;
  fetch: Record<string, FetchMemory>;
  http: { fd: number } | null;
}): DynoReloadState {
  const groups: DynoReloadState['groups'] = {};
  for (const g of d.runtime.groups()) {
    groups[String(g.gid)] = { process: g.spec.launch.process, releaseVersion: g.spec.launch.releaseVersion, slots: g.shell.history.toJSON() };
  }
  return {
    format: DYNO_STATE_FORMAT,
    version: VERSION,
    wall: Date.now(),
    monotonic: monotonicMs(),
    reloads: d.reloads + 1,
    control: { fd: d.server.listenFd, path: d.server.path, ino: d.server.inode },
    connections: d.connections,
    listener: d.listener,
    release: d.release,
    rejected: d.rejected,
    releasePhase: d.releasePhase,
    verbosity: d.verbosity,
    fleet: d.runtime.serialize(),
    groups,
    output: d.output,
    config: d.config,
    fetch: d.fetch,
    http: d.http,
  };
}

/** The fds the new image takes over, besides the control socket and its connections. */
export function stateFds(state: DynoReloadState): number[] {
  return [...(state.listener ? [state.listener.fd] : []), ...(state.http ? [state.http.fd] : []), ...openFds(state.output)];
}

export interface DynoTakenOver {
  state: DynoReloadState;
  server: ControlServer;
}

/** The new image: the snapshot read, the web socket and the control socket taken over. */
export async function takeOverDyno(
  fd: number,
  log: Logger,
  cleanup: Cleanup,
  onRequest: RequestHandler,
  http: NonNullable<Parameters<typeof ControlServer.open>[4]>['http'],
): Promise<DynoTakenOver> {
  let state: DynoReloadState;
  try {
    // The whole snapshot and every fd in it are checked before anything is taken over.
    state = readSnapshot(fd, (value) => {
      const s = checkDynoState(value);
      checkDynoStateFds(s);
      return s;
    });
  } catch (err) {
    throw new StartupError(`cannot read the reload state on fd ${fd}: ${(err as Error).message}`);
  }
  if (state.listener) native.setCloexec(state.listener.fd, true);
  native.setCloexec(state.control.fd, true);
  const server = await ControlServer.fromFd(state.control.fd, state.control.path, state.control.ino, 0o600, log, onRequest, http ? { http } : {});
  cleanup.add(() => server.close());
  log.verbosity = state.verbosity;
  return { state, server };
}
