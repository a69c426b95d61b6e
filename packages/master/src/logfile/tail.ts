/**
 * `tail` of a log file, as `supervisorctl tail [-f] [-BYTES] NAME`: the last
 * N bytes (supervisorctl's default 1600) or the last N lines, then, with
 * follow, what is appended, across rotations: when the path names a new file
 * (renamed away by rotation or logrotate) or the file shrinks (truncated), the
 * rest of the old file is read first, then the new one from its start.
 * Reads are asynchronous and bounded; nothing here blocks the event loop.
 * A follower polls: a file rotated in and out again between two polls (more
 * than one rotation per interval) is not seen, as with `supervisorctl tail -f`.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';

export const DEFAULT_TAIL_BYTES = 1600;
/** One read at most; a follow tick reads at most this much (the rest at the next tick). */
const CHUNK = 64 * 1024;

export interface TailResult {
  data: Buffer;
  /** The file's size when read: where following starts. */
  offset: number;
  /** True when the file held more than what is returned (supervisorctl's "overflow"). */
  truncated: boolean;
}

/** The last `bytes` bytes of the file. */
export async function tailBytes(path: string, bytes = DEFAULT_TAIL_BYTES): Promise<TailResult> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - Math.max(0, bytes));
    const data = Buffer.alloc(size - start);
    let got = 0;
    while (got < data.length) {
      const { bytesRead } = await fh.read(data, got, data.length - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { data: data.subarray(0, got), offset: start + got, truncated: start > 0 };
  } finally {
    await fh.close();
  }
}

/** The last `lines` lines (a final unterminated line counts as one), reading backwards in blocks, at most `maxBytes`. */
export async function tailLines(path: string, lines: number, maxBytes = 16 * 1024 * 1024): Promise<TailResult> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (lines <= 0 || size === 0) return { data: Buffer.alloc(0), offset: size, truncated: size > 0 };
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    // the newline that ends the file ends the last line; the one before the wanted lines is one more
    const need = lines + (last[0] === NL ? 1 : 0);
    const parts: Buffer[] = [];
    let pos = size;
    let seen = 0;
    while (pos > 0 && seen < need && size - pos < maxBytes) {
      const n = Math.min(CHUNK, pos);
      pos -= n;
      const buf = Buffer.alloc(n);
      await fh.read(buf, 0, n, pos);
      parts.unshift(buf);
      seen += countNewlines(buf);
    }
    const all = Buffer.concat(parts);
    let from = 0;
    let count = 0;
    for (let i = all.length - 1; i >= 0; i--) {
      if (all[i] === NL && ++count === need) {
        from = i + 1;
        break;
      }
    }
    return { data: all.subarray(from), offset: size, truncated: pos + from > 0 };
  } finally {
    await fh.close();
  }
}

const NL = 0x0a;

function countNewlines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(NL); i !== -1; i = buf.indexOf(NL, i + 1)) n++;
  return n;
}

export interface Follower {
  stop(): Promise<void>;
}

/**
 * Call `onData` with what is appended to `path` from `offset` on, polling every
 * `intervalMs`; survives rotation (see above). `onError` gets failures other than
 * the file being briefly absent between a rename and its re-creation.
 */
export function follow(
  path: string,
  offset: number,
  onData: (data: Buffer) => void,
  opts: { intervalMs?: number; onError?: (err: Error) => void } = {},
): Follower {
  const interval = opts.intervalMs ?? 250;
  let fh: FileHandle | null = null;
  let ino = -1;
  let pos = offset;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();

  /** Read what is there, at most `chunks` reads (a file written faster than read is read on at the next tick). */
  const drain = async (chunks: number): Promise<void> => {
    if (!fh) return;
    const buf = Buffer.alloc(CHUNK);
    for (let k = 0; k < chunks; k++) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0 || stopped) return;
      pos += bytesRead;
      onData(Buffer.from(buf.subarray(0, bytesRead)));
    }
  };

  const tick = async (): Promise<void> => {
    if (!fh) {
      try {
        fh = await open(path, 'r');
        ino = (await fh.stat()).ino;
      } catch (err) {
        fh = null;
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        return;
      }
    }
    const size = (await fh.stat()).size;
    if (size < pos) pos = 0; // truncated in place
    await drain(16);
    let now;
    try {
      now = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (now.ino !== ino) {
      // rotated: read the rest of the old file (no longer written), then the new one from its start
      await drain(Number.MAX_SAFE_INTEGER);
      await fh.close();
      fh = null;
      pos = 0;
      await tick();
    }
  };

  const loop = (): void => {
    if (stopped) return;
    running = tick()
      .catch((err: Error) => opts.onError?.(err))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, interval);
      });
  };
  loop();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      if (fh) await fh.close().catch(() => undefined);
      fh = null;
    },
  };
}
