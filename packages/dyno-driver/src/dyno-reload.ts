/**
 * The driver's reload (the runtime's re-exec, host/reexec.ts): what its snapshot holds
 * and, in the new image, taking the old one's fds over. Every process of every type
 * stays (they are still this process's children), with its output; the web socket and
 * the control socket never close, so no request and no client sees the exec.
 */
import * as native from 'native-reuseport';
import { monotonicMs, type Runtime } from '@einhyrningsins/master';
import { ControlServer, StartupError, checkFetchMemory, readSnapshot, type FetchMemory, type Cleanup, type ConnectionSnapshot, type Logger, type RequestHandler, type SlotRecord } from '@einhyrningsins/master';
import type { SerializedFleet } from '@einhyrningsins/core';
import type { OutputPipes } from './dyno-output.js';
import type { PhaseResult } from './release-phase.js';
import type { PreparedRelease, ProcessDef } from './release.js';
import type { Listener } from './web-socket.js';
import type { TypeLaunch } from './release-applier.js';
import { VERSION } from './version.js';

export const DYNO_STATE_FORMAT = 'dyno-1';

export interface DynoReloadState {
  format: typeof DYNO_STATE_FORMAT;
  version: string;
  /** Date.now() and CLOCK_MONOTONIC (ms) when the snapshot was taken: the exec's duration is added to every age (execGapMs). */
  wall: number;
  monotonic: number;
  reloads: number;
  control: { fd: number; path: string; ino: number };
  connections: ConnectionSnapshot[];
  listener: Listener | null;
  release: PreparedRelease | null;
  rejected: { file: string; reason: string; at: string } | null;
  releasePhase: PhaseResult | null;
  verbosity: number;
  fleet: SerializedFleet;
  /** Per group (by gid): what it runs, and its slots' history. */
  groups: Record<string, { process: ProcessDef; releaseVersion: number; slots: Record<string, SlotRecord> }>;
  output: OutputPipes[];
  /** Per program with fetch=: what its fetcher knew (refused releases); absent from older images. */
  fetch?: Record<string, FetchMemory>;
  /** The --http listener (absent from an older image's snapshot). */
  http?: { fd: number } | null;
}

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
    fetch: d.fetch,
    http: d.http,
  };
}

/** The fds the new image takes over, besides the control socket and its connections. */
export function stateFds(state: DynoReloadState): number[] {
  return [...(state.listener ? [state.listener.fd] : []), ...(state.http ? [state.http.fd] : []), ...state.output.flatMap((p) => p.fds.filter((fd): fd is number => fd !== null))];
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
    state = readSnapshot(fd, (value) => {
      const v = value as Partial<DynoReloadState> | null;
      if (typeof v !== 'object' || v === null || v.format !== DYNO_STATE_FORMAT) {
        throw new Error(`unknown reload state format ${JSON.stringify(v && typeof v === 'object' ? v.format : v)}`);
      }
      const fetch = (v as { fetch?: unknown }).fetch;
      if (fetch !== undefined) {
        if (typeof fetch !== 'object' || fetch === null || Array.isArray(fetch)) throw new Error('state.fetch is not an object');
        for (const [name, m] of Object.entries(fetch)) checkFetchMemory(m, `state.fetch.${name}`);
      }
      return v as DynoReloadState;
    });
  } catch (err) {
    throw new StartupError(`cannot read the reload state on fd ${fd}: ${(err as Error).message}`);
  }
  const l = state.listener;
  if (l) {
    if (!native.fdInfo(l.fd).listening) throw new StartupError(`reload: fd ${l.fd} (the web socket) is not a listening socket any more`);
    native.setCloexec(l.fd, true);
  }
  native.setCloexec(state.control.fd, true);
  const server = await ControlServer.fromFd(state.control.fd, state.control.path, state.control.ino, 0o600, log, onRequest, http ? { http } : {});
  cleanup.add(() => server.close());
  log.verbosity = state.verbosity;
  return { state, server };
}
