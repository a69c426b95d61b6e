/**
 * One program's log file, written without ever blocking the caller: `write`
 * only queues (a bounded queue; the file is written by one asynchronous pump
 * through libuv's thread pool), so a slow or stuck disk stalls neither the
 * event loop nor the control socket. When the queue is full, whole lines are
 * dropped (newest first, so what is written stays in order), counted, reported
 * once per episode through `onDrop`, and a marker line in the file says where
 * and how much. Rotation by size with N backups as supervisord (name.1 ..
 * name.N), at line boundaries only (rotation.ts). `reopen()` reopens the path
 * (after logrotate renamed the file; on a signal or command). Nothing but the
 * path and limits needs carrying across a re-exec: the file is opened in
 * append mode and its size and last byte are read back at open.
 */
import { closeSync, constants as fsc, openSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { planAppend, rotationRenames, type FileShape } from './rotation.js';

/** The file operations the writer uses: the real ones, or a slow/failing fake in tests. */
export interface LogFs {
  open(path: string): Promise<LogHandle>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
}

export interface LogHandle {
  write(data: Buffer): Promise<number>;
  /** Current size and whether the last byte is a newline (or the file is empty). */
  shape(): Promise<FileShape>;
  close(): Promise<void>;
}

class RealHandle implements LogHandle {
  constructor(private readonly fh: FileHandle) {}
  async write(data: Buffer): Promise<number> {
    return (await this.fh.write(data, 0, data.length, null)).bytesWritten;
  }
  async shape(): Promise<FileShape> {
    const { size } = await this.fh.stat();
    if (size === 0) return { size, atBoundary: true };
    const b = Buffer.alloc(1);
    await this.fh.read(b, 0, 1, size - 1);
    return { size, atBoundary: b[0] === 0x0a };
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

export const realLogFs: LogFs = {
  // libuv opens every file with O_CLOEXEC: children never inherit it
  async open(path) {
    return new RealHandle(await open(path, fsc.O_RDWR | fsc.O_APPEND | fsc.O_CREAT, 0o644));
  },
  async rename(from, to) {
    try {
      await rename(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  },
  remove: (path) => rm(path, { force: true }),
};

export interface LogWriterOptions {
  path: string;
  /** Rotate before a line would take the file past this size; 0: never. */
  maxBytes: number;
  /** name.1 .. name.N kept; 0: the file is truncated when full (supervisord's rule). */
  backups: number;
  /** Bytes queued at most before lines are dropped (default 4 MiB). */
  maxQueueBytes?: number;
  fs?: LogFs;
  /** Called once at the start of each episode of dropped lines, and for each write error episode. */
  onDrop?: (info: { path: string; reason: string }) => void;
  /**
   * The path to open, asked at each open (the first, and after a reopen): minisv's
   * date-suffixed names (NAME.log.20260102.150405). Default: `path` always.
   */
  pathAt?: () => string;
}

export interface LogWriterStats {
  writtenBytes: number;
  queuedBytes: number;
  droppedLines: number;
  droppedBytes: number;
  rotations: number;
  errors: number;
}

function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
}

export const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;
/** At most this much is handed to one write. */
const BATCH_BYTES = 256 * 1024;

export class LogWriter {
  /** The file written now (with `pathAt`, the one opened last). */
  path: string;
  private readonly pathAt: (() => string) | undefined;
  /** A reopen asked for: the next open asks pathAt for the name. */
  private repath = false;
  private readonly maxBytes: number;
  private readonly backups: number;
  private readonly maxQueue: number;
  private readonly fs: LogFs;
  private readonly onDrop: LogWriterOptions['onDrop'];
  /** Queued buffers from `head` on (an index, not shift(): shift is O(n) on a long array). */
  private queue: Buffer[] = [];
  private head = 0;
  private handle: LogHandle | null = null;
  private shape: FileShape = { size: 0, atBoundary: true };
  private pumping: Promise<void> | null = null;
  private reopenWanted = false;
  private closed = false;
  /** Held for a reload: writes queue but start no asynchronous write (drainSync writes them). */
  private held = false;
  /** Lines and bytes dropped in the current episode, not yet marked in the file. */
  private unmarked = { lines: 0, bytes: 0 };
  private failing = false;
  readonly stats: LogWriterStats = { writtenBytes: 0, queuedBytes: 0, droppedLines: 0, droppedBytes: 0, rotations: 0, errors: 0 };

  constructor(opts: LogWriterOptions) {
    this.pathAt = opts.pathAt;
    this.path = opts.pathAt ? opts.pathAt() : opts.path;
    this.maxBytes = opts.maxBytes;
    this.backups = opts.backups;
    this.maxQueue = opts.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.fs = opts.fs ?? realLogFs;
    this.onDrop = opts.onDrop;
  }

  /**
   * Queue whole lines (or the final piece of a stream); never blocks. Returns
   * false when the data was dropped because the queue is full or the writer closed.
   */
  write(data: Buffer | string): boolean {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.length === 0) return true;
    if (this.closed || this.stats.queuedBytes + buf.length > this.maxQueue) {
      if (this.unmarked.lines === 0 && !this.closed) this.onDrop?.({ path: this.path, reason: 'the log file cannot keep up; dropping lines' });
      const lines = Math.max(1, countLines(buf));
      this.stats.droppedLines += lines;
      this.stats.droppedBytes += buf.length;
      if (!this.closed) {
        this.unmarked.lines += lines;
        this.unmarked.bytes += buf.length;
      }
      return false;
    }
    if (this.unmarked.lines > 0) {
      const { lines, bytes } = this.unmarked;
      this.unmarked = { lines: 0, bytes: 0 };
      this.enqueue(Buffer.from(`[einhyrningsins: ${lines} line${lines === 1 ? '' : 's'} (${bytes} bytes) dropped here: the log file could not keep up]\n`));
    }
    this.enqueue(buf);
    return true;
  }

  private enqueue(buf: Buffer): void {
    this.queue.push(buf);
    this.stats.queuedBytes += buf.length;
    this.kick();
  }

  /** Reopen the path at the next write (after an external rename; supervisord's USR2). Resolves when done. */
  reopen(): Promise<void> {
    this.reopenWanted = true;
    this.repath = true;
    this.kick(true);
    return this.flush();
  }

  /** Resolves once everything queued so far is written (or dropped on error). */
  async flush(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  /** Write what is queued, then close the file; later writes are dropped. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    const h = this.handle;
    this.handle = null;
    if (h) await h.close().catch(() => undefined);
  }

  /**
   * Before a re-exec, with no write in flight (the streams paused, flush() awaited):
   * whatever is queued is appended now, synchronously, so that nothing queued is lost
   * in the exec. Throws when a write is in flight (the caller then does not exec).
   */
  drainSync(): void {
    if (this.pumping) throw new Error(`a write to ${this.path} is in flight`);
    if (this.queued === 0) return;
    const data = Buffer.concat(this.queue.slice(this.head));
    this.queue = [];
    this.head = 0;
    this.stats.queuedBytes = 0;
    const fd = openSync(this.path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o644);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off);
      this.stats.writtenBytes += data.length;
    } finally {
      closeSync(fd);
    }
  }

  /** What a re-exec'd process needs to carry on this file: it reopens in append mode. */
  snapshot(): { path: string; maxBytes: number; backups: number } {
    return { path: this.path, maxBytes: this.maxBytes, backups: this.backups };
  }

  /**
   * Before a reload's snapshot (after flush()): what is written from now on is queued but
   * not written asynchronously, so drainSync finds no write in flight. The snapshot reads
   * what the paused streams still had buffered and passes it on here: that started a write,
   * and the reload was refused ("a write ... is in flight").
   */
  hold(): void {
    this.held = true;
  }

  /** The reload did not happen: write on. */
  release(): void {
    this.held = false;
    this.kick();
  }

  private kick(force = false): void {
    if (this.held || this.pumping || (this.queued === 0 && !force)) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.queued > 0 || this.reopenWanted) this.kick(true);
    });
  }

  private async pump(): Promise<void> {
    for (;;) {
      if (this.reopenWanted) {
        this.reopenWanted = false;
        await this.closeHandle();
      }
      if (this.queued === 0) return;
      const batch = this.takeBatch();
      try {
        await this.append(batch);
        this.failing = false;
      } catch (err) {
        this.stats.errors++;
        this.stats.droppedBytes += batch.length;
        this.stats.droppedLines += Math.max(1, countLines(batch));
        if (!this.failing) this.onDrop?.({ path: this.path, reason: `write failed: ${(err as Error).message}` });
        this.failing = true;
        await this.closeHandle();
      }
    }
  }

  private get queued(): number {
    return this.queue.length - this.head;
  }

  private takeBatch(): Buffer {
    const start = this.head;
    let n = 0;
    while (this.head < this.queue.length && (n === 0 || n + (this.queue[this.head] as Buffer).length <= BATCH_BYTES)) {
      n += (this.queue[this.head] as Buffer).length;
      this.head++;
    }
    const parts = this.queue.slice(start, this.head);
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.stats.queuedBytes -= n;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, n);
  }

  private async ensureOpen(): Promise<LogHandle> {
    if (this.handle) return this.handle;
    if (this.pathAt && this.repath) this.path = this.pathAt();
    this.repath = false;
    const h = await this.fs.open(this.path);
    try {
      this.shape = await h.shape();
    } catch (err) {
      await h.close().catch(() => undefined);
      throw err;
    }
    this.handle = h;
    return h;
  }

  private async closeHandle(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    if (h) await h.close().catch(() => undefined);
  }

  private async append(batch: Buffer): Promise<void> {
    let h = await this.ensureOpen();
    if (this.maxBytes > 0 && this.shape.size + batch.length > this.maxBytes) {
      // the file may have been truncated behind our back (logrotate's copytruncate)
      this.shape = await h.shape();
    }
    for (const step of planAppend(this.shape, batch, this.maxBytes)) {
      if (step.kind === 'rotate') {
        await this.rotate();
        h = await this.ensureOpen();
        continue;
      }
      let off = 0;
      while (off < step.data.length) {
        const n = await h.write(step.data.subarray(off));
        if (n <= 0) throw new Error('the file accepted no bytes');
        off += n;
        this.stats.writtenBytes += n;
      }
    }
  }

  private async rotate(): Promise<void> {
    await this.closeHandle();
    const renames = rotationRenames(this.path, this.backups);
    if (renames.length === 0) {
      await this.fs.remove(this.path);
    } else {
      for (const [from, to] of renames) await this.fs.rename(from, to);
    }
    this.stats.rotations++;
  }
}
