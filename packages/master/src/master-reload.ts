/**
 * The master's reload (einhorn's re-exec), both halves: the old image checks the new
 * code, writes the snapshot and execs (reload.ts carries the bytes across); the new
 * image takes over the old one's fds and files instead of creating them, and carries on
 * with its workers.
 */
import { closeSync } from 'node:fs';
import { resolve } from 'node:path';
import * as native from 'native-reuseport';
import type { Request } from '@einhyrningsins/protocol';
import type { SerializedCore, SerializedFleet } from '@einhyrningsins/core';
import type { Cleanup } from './cleanup.js';
import { ControlServer, type ControlConnection, type RequestHandler } from './control-server.js';
import { StartupError } from './errors.js';
import { holdLock, removePidfileAtExit, type HeldLock } from './host/files.js';
import type { Logger } from './log.js';
import type { Options } from './options.js';
import { resolveProgram } from './program.js';
import { STATE_FD_OPTION, readState, upgradeCheck, writeState, type BoundSocket, type ReloadState } from './reload.js';
import type { SlotRecord } from './slot-history.js';
import { releaser } from './unix-bind.js';
import { VERSION } from './version.js';

/** What a reload needs of the running master. */
export interface ReloadHost {
  readonly log: Logger;
  readonly opts: Options;
  readonly argv: readonly string[];
  readonly cwd: string;
  server(): ControlServer | null;
  /** Why not now (stopping, an upgrade running), or null. */
  busy(): string | null;
  /** Everything the new image carries on from (see ReloadState). */
  snapshot(): {
    sockets: BoundSocket[];
    socketPath: string;
    lock: HeldLock | null;
    startedAtWall: number;
    reloads: number;
    core: SerializedCore | SerializedFleet;
    slots: Record<string, SlotRecord>;
  };
  /** sd_notify RELOADING before the exec; READY owed again when it fails. */
  reloadingNotice(text: string): void;
  reloadFailed(): void;
}

/** The command the master re-executes as: --reexec-as, else this node and this program. */
function reexecCommand(opts: Options, cwd: string): { path: string; words: string[] } {
  if (opts.reexecAs) {
    const words = opts.reexecAs;
    return { path: resolveProgram(words[0] as string, process.env.PATH, cwd), words };
  }
  const words = [process.execPath, ...process.execArgv, process.argv[1] as string];
  return { path: process.execPath, words };
}

export class Reloader {
  /** A reload is under way (einhorn's reloading_for_upgrade). */
  reloading = false;

  constructor(private readonly host: ReloadHost) {}

  async reload(conn: ControlConnection, req: Request): Promise<void> {
    const { log, opts } = this.host;
    const refuse = (why: string) => {
      log.warn(`Not reloading: ${why}`);
      conn.send({ message: `Not reloading: ${why}`, error: true }, req.id);
    };
    const busy = this.host.busy();
    if (busy?.startsWith('stopping')) return refuse('the master is stopping');
    if (this.reloading) return refuse('a reload is already in progress');
    // The children write into pipes this image reads; they would not survive the exec.
    if (opts.prefixOutput) return refuse("--prefix-output pipes the children's output through this process; use upgrade (or restart without --prefix-output)");
    if (busy) return refuse(busy);
    this.reloading = true;
    const streaming = req.id !== undefined;
    const progress = (message: string) => {
      log.info(message);
      if (streaming) conn.send({ message, wait: true }, req.id);
    };
    let cmd: { path: string; words: string[] };
    try {
      cmd = reexecCommand(opts, this.host.cwd);
    } catch (err) {
      this.reloading = false;
      return refuse(`--reexec-as: ${(err as Error).message}`);
    }
    progress(`Reloading einhyrningsins master ${process.pid}: checking the new code (${cmd.words.join(' ')} --upgrade-check)`);
    const failed = await upgradeCheck(cmd.path, cmd.words, this.host.argv, process.env);
    if (failed !== null) {
      this.reloading = false;
      log.error(`Reload aborted, the master keeps running: ${failed}`);
      conn.send({ message: `Reload aborted, the master keeps running: ${failed}`, error: true }, req.id);
      return;
    }
    if (this.host.busy()) {
      this.reloading = false;
      return refuse('the master started stopping or upgrading during the check');
    }
    progress('Upgrade check passed; re-executing the master');
    await this.flushConnections();
    let stateFd = -1;
    const inherited: number[] = [];
    try {
      const server = this.host.server() as ControlServer;
      const conns = server.openConnections();
      const snap = this.host.snapshot();
      const state: ReloadState = {
        format: 1,
        version: VERSION,
        wall: Date.now(),
        argv: [...this.host.argv],
        startedAtWall: snap.startedAtWall,
        reloads: snap.reloads + 1,
        sockets: snap.sockets,
        control: { fd: server.listenFd, path: snap.socketPath, ino: server.inode },
        connections: conns
          .filter((c) => c.fd !== null)
          .map((c) => ({
            fd: c.fd as number,
            boundPid: c.boundPid,
            requester: c === conn,
            requestId: c === conn ? (req.id ?? null) : null,
            streaming: c === conn && streaming,
          })),
        lockfile: snap.lock,
        pidfile: opts.pidfile ? resolve(opts.pidfile) : null,
        verbosity: log.verbosity,
        core: snap.core,
        slots: snap.slots,
      };
      stateFd = writeState(state);
      // stdio too: Node marks 0, 1 and 2 close-on-exec, and the new image must log where this one did.
      for (const fd of [0, 1, 2, stateFd, state.control.fd, ...state.sockets.map((x) => x.fd), ...state.connections.map((c) => c.fd)]) {
        native.setCloexec(fd, false);
        inherited.push(fd);
      }
      if (snap.lock) {
        native.setCloexec(snap.lock.fd, false);
        inherited.push(snap.lock.fd);
      }
      this.host.reloadingNotice(`reloading the master (reload ${snap.reloads + 1})`);
      const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
      native.execve(cmd.path, [...cmd.words, STATE_FD_OPTION, String(stateFd), ...this.host.argv], env);
    } catch (err) {
      // Still the old image: put everything back as it was and carry on.
      for (const fd of inherited) {
        try {
          native.setCloexec(fd, true);
        } catch {
          /* closed meanwhile */
        }
      }
      if (stateFd >= 0) closeSync(stateFd);
      this.reloading = false;
      this.host.reloadFailed();
      log.error(`Could not reload, the master keeps running: ${(err as Error).message}`);
      conn.send({ message: `Could not reload, the master keeps running: ${(err as Error).message}`, error: true }, req.id);
    }
  }

  /** Wait (at most 1 s) until every reply written has reached the kernel: nothing queued is lost in the exec. */
  private async flushConnections(): Promise<void> {
    const end = Date.now() + 1000;
    const server = this.host.server();
    while (Date.now() < end && server && server.openConnections().some((c) => !c.flushed)) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
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

/** After the take-over: the connections are served again, the requester answered. */
export function resumeConnections(state: ReloadState, server: ControlServer, message: string): void {
  let requester: { conn: ControlConnection; id: string | number | null; streaming: boolean } | null = null;
  for (const c of state.connections) {
    native.setCloexec(c.fd, true);
    const conn = server.adoptConnection(c.fd, c.boundPid ?? null);
    if (c.requester) {
      conn.expectReply();
      requester = { conn, id: c.requestId, streaming: c.streaming };
    }
  }
  if (requester) requester.conn.send({ message }, requester.streaming && requester.id !== null ? requester.id : undefined);
}
