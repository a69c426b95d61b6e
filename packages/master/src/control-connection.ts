/** One client of the control socket: its peer (SO_PEERCRED), what it is owed, its replies. */
import type { Socket } from 'node:net';
import { encodeReply } from '@einhyrningsins/protocol';
import * as native from 'native-reuseport';
import { monotonicMs } from './clock.js';

/**
 * A client that does not read its replies is dropped when this much output is already
 * queued for it (one reply of any size is always written to an empty queue).
 * EINHYRNINGSINS_TEST_MAX_PENDING_OUTPUT (bytes) lowers it, for the tests only.
 */
export const MAX_PENDING_OUTPUT = testCap(process.env.EINHYRNINGSINS_TEST_MAX_PENDING_OUTPUT) ?? 256 * 1024;

/**
 * Progress lines (replies with `wait`, e.g. an upgrade's, several per worker) are written only
 * while less than this is queued; past it they are skipped and counted, and one line saying
 * how many replaces them once the client has read the rest. So a slow reader of a large
 * upgrade is never dropped: the queue never nears MAX_PENDING_OUTPUT on progress alone, and
 * the final reply always fits.
 */
export const MAX_PENDING_PROGRESS = Math.floor(MAX_PENDING_OUTPUT / 2);

function testCap(v: string | undefined): number | null {
  const n = v === undefined ? NaN : Number(v);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}
export interface ReplyFields {
  message: string;
  wait?: boolean;
  [extra: string]: unknown;
}

/** One client of the control socket. */
/** Who is at the other end of a control connection, as the kernel says (SO_PEERCRED at connect). */
export interface Peer {
  pid: number;
  uid: number;
  /** The peer's process group when it connected; -1 if it was already gone. */
  pgid: number;
}

export class ControlConnection {
  private static nextId = 1;
  readonly id = ControlConnection.nextId++;
  closed = false;
  /** Requests read whose final reply (one without `wait`) has not been sent yet. */
  private owed = 0;
  /** The client half-closed: close once every owed reply is sent. */
  private peerEnded = false;
  /** When it last sent or was sent anything (monotonicMs()). */
  lastActive = monotonicMs();
  /** Called (bytes queued) when it is dropped for not reading its replies. */
  onOverflow: ((queued: number) => void) | null = null;
  /** Progress lines skipped while the client was behind, and the request they answered. */
  private skipped = 0;
  private skippedFor: string | number | undefined;
  /** Replies are being gathered for one write at the next tick. */
  private corked = false;
  /** It was dropped for not reading its replies. */
  overflowed = false;
  /** The bytes read but not parsed yet (an unfinished request line), for a reload's snapshot. */
  unparsed: () => Buffer = () => Buffer.alloc(0);

  /**
   * `peer`: the connecting process (null if unknown). `boundPid`: for a socketpair handed to
   * one child (-g), that child's pid: the only pid this connection may ack or ping for.
   */
  constructor(
    private readonly socket: Socket,
    readonly peer: Peer | null,
    readonly boundPid: number | null = null,
  ) {}

  /** The connection's fd (for the hand-over across a reload), or null once closed. */
  get fd(): number | null {
    const fd = (this.socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
    return this.closed || typeof fd !== 'number' || fd < 0 ? null : fd;
  }

  /** Everything written has reached the kernel. */
  get flushed(): boolean {
    return this.socket.writableLength === 0;
  }

  /** Nothing owed and not a child's own -g connection: may be closed when idle or to make room. */
  get idle(): boolean {
    return this.owed === 0 && this.boundPid === null;
  }

  /**
   * May this connection send worker:ack / worker:ping for `pid`? Only from that process
   * itself or one in its process group (einhorn's clients connect from the worker; a shell
   * worker's `socat` is in its group), or on the -g connection handed to that child.
   */
  mayActFor(pid: number): boolean {
    if (this.boundPid !== null) return pid === this.boundPid;
    if (!this.peer) return false;
    if (this.peer.pid === pid) return true;
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 0x7fffffff) return false;
    const pgid = native.getpgid(pid);
    return pgid > 0 && this.peer.pgid === pgid;
  }

  /** Who the peer is, for log lines. */
  describePeer(): string {
    if (this.boundPid !== null) return `the -g connection of pid ${this.boundPid}`;
    return this.peer ? `pid ${this.peer.pid} (uid ${this.peer.uid}, process group ${this.peer.pgid})` : 'an unknown peer';
  }

  /** A request line was read: it is owed one final reply. */
  expectReply(): void {
    this.owed += 1;
  }

  /** The client will send nothing more: finish the replies still owed (an upgrade's stream), then close. */
  peerEnd(): void {
    this.peerEnded = true;
    if (this.owed === 0) this.end();
  }

  /** Send one reply line; `requestId` is echoed when the request had an id. */
  send(reply: ReplyFields, requestId?: string | number): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    if (reply.wait === true && this.socket.writableLength > MAX_PENDING_PROGRESS) {
      // Behind on progress lines: skip this one, say so once it has caught up.
      if (this.skipped++ === 0) this.socket.once('drain', () => this.caughtUp());
      this.skippedFor = requestId;
      return;
    }
    if (this.socket.writableLength > MAX_PENDING_OUTPUT) {
      // It does not read: what it is owed would only pile up here.
      this.overflowed = true;
      this.onOverflow?.(this.socket.writableLength);
      this.socket.destroy();
      this.closed = true;
      return;
    }
    // The final reply comes after the note of what the client missed (if still unsaid).
    if (reply.wait !== true && this.skipped > 0) this.caughtUp();
    this.lastActive = monotonicMs();
    const out: Parameters<typeof encodeReply>[0] = { ...reply };
    if (requestId !== undefined) out.requestId = requestId;
    this.write(encodeReply(out));
    if (reply.wait !== true) {
      this.owed = Math.max(0, this.owed - 1);
      if (this.peerEnded && this.owed === 0) this.end();
    }
  }

  /** The client read what was queued: one line for the progress lines it missed. */
  private caughtUp(): void {
    const n = this.skipped;
    this.skipped = 0;
    if (n === 0 || this.closed || this.socket.destroyed || this.owed === 0) return;
    const out: Parameters<typeof encodeReply>[0] = { message: `(${n} progress line${n === 1 ? '' : 's'} not sent: the client reads slower than they come)`, wait: true };
    if (this.skippedFor !== undefined) out.requestId = this.skippedFor;
    this.write(encodeReply(out));
  }

  /**
   * Replies written while one event is handled go out in one write(2): an upgrade's event
   * can give an operator several progress lines, and each line was a system call.
   */
  private write(text: string): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(text);
  }

  /** Finish writing, then close (einhorn closes after worker:ack / worker:ping). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
  }

  /** Close at once (idle timeout, eviction). */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** SO_PEERCRED of an accepted unix socket, and the peer's process group right then. */
export function peerOf(socket: Socket): Peer | null {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    const cred = native.peerCred(fd);
    return { pid: cred.pid, uid: cred.uid, pgid: cred.pid > 0 ? native.getpgid(cred.pid) : -1 };
  } catch {
    return null;
  }
}

