/**
 * A program's reload (einhorn's re-exec), the old image's half, for every program of
 * the runtime: check the new code (`--upgrade-check`), write the program's snapshot
 * into a memfd, clear FD_CLOEXEC on everything the new image takes over, and execve
 * `<reexec words> --with-state-fd N <argv>` in the same process (so the workers stay
 * its children). A failure anywhere leaves the old image running as it was. The new
 * image's half (taking the fds over) is each program's; the connections' is here.
 */
import { closeSync } from 'node:fs';
import * as native from 'native-reuseport';
import type { Request } from '@einhyrningsins/protocol';
import type { ControlConnection, ControlServer } from '../control-server.js';
import type { Logger } from '../log.js';
import { resolveProgram } from '../program.js';
import { STATE_FD_OPTION, upgradeCheck, writeSnapshot } from '../reload.js';
import type { ConnectionSnapshot } from '../reload-state.js';

export type { ConnectionSnapshot };

/** What a reload needs of the running program. */
export interface ReloadHost {
  readonly log: Logger;
  /** "einhyrningsins master": what the progress replies call it. */
  readonly what: string;
  /** --reexec-as, or null: this node and this program. */
  readonly reexecAs: readonly string[] | null;
  /** The command line this image was started with (re-used by the new image). */
  readonly argv: readonly string[];
  readonly cwd: string;
  server(): ControlServer | null;
  /** Why not now (stopping, an upgrade running), or null. */
  busy(): string | null;
  /**
   * Right before the snapshot, after every check: what must settle first (log files written,
   * pipes paused). The snapshot follows in the same turn of the event loop; a failure after
   * it calls reloadFailed.
   */
  prepare?(): Promise<void>;
  /** The program's snapshot and the fds (besides stdio, the memfd and the connections) the new image takes over. */
  snapshot(connections: ConnectionSnapshot[]): { state: { format: unknown }; fds: number[] };
  /** sd_notify RELOADING before the exec; READY owed again when it fails. */
  reloadingNotice(): void;
  reloadFailed(): void;
}

/** The command a program re-executes as: --reexec-as, else this node and this program. */
function reexecCommand(reexecAs: readonly string[] | null, cwd: string): { path: string; words: string[] } {
  if (reexecAs) return { path: resolveProgram(reexecAs[0] as string, process.env.PATH, cwd), words: [...reexecAs] };
  const words = [process.execPath, ...process.execArgv, process.argv[1] as string];
  return { path: process.execPath, words };
}

export class Reloader {
  /** A reload is under way (einhorn's reloading_for_upgrade). */
  reloading = false;

  constructor(private readonly host: ReloadHost) {}

  async reload(conn: ControlConnection, req: Request, refusal: (why: string) => string | null = () => null): Promise<void> {
    const { log } = this.host;
    const refuse = (why: string) => {
      log.warn(`Not reloading: ${why}`);
      conn.send({ message: `Not reloading: ${why}`, error: true }, req.id);
    };
    const busy = this.host.busy();
    if (busy?.startsWith('stopping')) return refuse(busy.slice('stopping: '.length));
    if (this.reloading) return refuse('a reload is already in progress');
    const no = refusal(busy ?? '');
    if (no) return refuse(no);
    if (busy) return refuse(busy);
    this.reloading = true;
    const streaming = req.id !== undefined;
    const progress = (message: string) => {
      log.info(message);
      if (streaming) conn.send({ message, wait: true }, req.id);
    };
    let cmd: { path: string; words: string[] };
    try {
      cmd = reexecCommand(this.host.reexecAs, this.host.cwd);
    } catch (err) {
      this.reloading = false;
      return refuse(`--reexec-as: ${(err as Error).message}`);
    }
    progress(`Reloading ${this.host.what} ${process.pid}: checking the new code (${cmd.words.join(' ')} --upgrade-check)`);
    const failed = await upgradeCheck(cmd.path, cmd.words, this.host.argv, process.env);
    if (failed !== null) {
      this.reloading = false;
      log.error(`Reload aborted, the ${this.host.what.split(' ').at(-1)} keeps running: ${failed}`);
      conn.send({ message: `Reload aborted, the ${this.host.what.split(' ').at(-1)} keeps running: ${failed}`, error: true }, req.id);
      return;
    }
    if (this.host.busy()) {
      this.reloading = false;
      return refuse(`the ${this.host.what.split(' ').at(-1)} started stopping or upgrading during the check`);
    }
    progress(`Upgrade check passed; re-executing the ${this.host.what.split(' ').at(-1)}`);
    await this.flushConnections();
    let stateFd = -1;
    try {
      await this.host.prepare?.();
    } catch (err) {
      this.reloading = false;
      this.host.reloadFailed();
      return refuse(`could not prepare: ${(err as Error).message}`);
    }
    const inherited: number[] = [];
    try {
      const server = this.host.server() as ControlServer;
      const connections = server
        .openConnections()
        .filter((c) => c.fd !== null)
        .map((c) => ({
          fd: c.fd as number,
          boundPid: c.boundPid,
          unparsed: c.unparsed().toString('base64'),
          requester: c === conn,
          requestId: c === conn ? (req.id ?? null) : null,
          streaming: c === conn && streaming,
        }));
      const { state, fds } = this.host.snapshot(connections);
      stateFd = writeSnapshot(state);
      // stdio too: Node marks 0, 1 and 2 close-on-exec, and the new image must log where this one did.
      for (const fd of [0, 1, 2, stateFd, server.listenFd, ...fds, ...connections.map((c) => c.fd)]) {
        native.setCloexec(fd, false);
        inherited.push(fd);
      }
      this.host.reloadingNotice();
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
      const who = this.host.what.split(' ').at(-1);
      log.error(`Could not reload, the ${who} keeps running: ${(err as Error).message}`);
      conn.send({ message: `Could not reload, the ${who} keeps running: ${(err as Error).message}`, error: true }, req.id);
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

/** The new image: the old one's control connections are served again, the requester answered (unless `message` is null). */
export function resumeConnections(connections: readonly ConnectionSnapshot[], server: ControlServer, message: string | null): { requester: ControlConnection | null } {
  let requester: { conn: ControlConnection; id: string | number | null; streaming: boolean } | null = null;
  for (const c of connections) {
    native.setCloexec(c.fd, true);
    const conn = server.adoptConnection(c.fd, c.boundPid ?? null, Buffer.from(c.unparsed ?? '', 'base64'));
    if (c.requester) {
      conn.expectReply();
      requester = { conn, id: c.requestId, streaming: c.streaming };
    }
  }
  if (requester && message !== null) requester.conn.send({ message }, requester.streaming && requester.id !== null ? requester.id : undefined);
  return { requester: requester?.conn ?? null };
}
