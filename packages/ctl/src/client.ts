import { statSync, type Stats } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { LineSplitter, decodeReply, encodeRequest } from '@einhyrningsins/protocol';

export interface Reply {
  message: string;
  wait: boolean;
  requestId?: string | number;
  [field: string]: unknown;
}

/**
 * Longest reply line read (the state of hundreds of workers is a few hundred KiB); a longer
 * one fails the command with one line instead of being waited for forever.
 */
export const MAX_REPLY_BYTES = 64 * 1024 * 1024;

export class ClientError extends Error {
  override name = 'ClientError';
}

/**
 * A connection to a master's control socket (einhyrningsins or einhorn).
 * Requests go one at a time, each with a fresh id; replies are read until
 * the one without `wait`.
 */
export class ControlClient {
  private readonly splitter = new LineSplitter({ maxLineLength: MAX_REPLY_BYTES });
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private closedWith: Error | null = null;
  private nextId = 1;

  private constructor(
    readonly path: string,
    private readonly sock: Socket,
    private readonly framing: 'json' | 'yaml',
  ) {
    sock.on('data', (chunk: Buffer) => {
      for (const item of this.splitter.push(chunk)) {
        if ('line' in item) {
          this.lines.push(item.line);
          continue;
        }
        // Past the bound: fail with one line rather than wait for a reply that never ends.
        this.closedWith ??= new ClientError(`a reply from ${path} is over ${MAX_REPLY_BYTES / (1024 * 1024)} MiB; giving up`);
        sock.destroy();
        break;
      }
      this.wake();
    });
    sock.on('error', (err) => {
      this.closedWith ??= new ClientError(`connection to ${path} failed: ${err.message}`);
      this.wake();
    });
    sock.on('close', () => {
      this.closedWith ??= new ClientError(`the master closed the connection (${path})`);
      this.wake();
    });
  }

  static async connect(path: string, opts: { timeoutMs?: number; framing?: 'json' | 'yaml' } = {}): Promise<ControlClient> {
    const before = socketOwner(path);
    const sock = createConnection(path);
    const timeoutMs = opts.timeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new ClientError(`cannot connect to ${path}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const hint =
          err.code === 'ENOENT'
            ? 'no such socket (is the master running? pass -d PATH)'
            : err.code === 'ECONNREFUSED'
              ? 'connection refused (stale socket: the master is gone)'
              : err.code === 'EACCES'
                ? 'permission denied'
                : err.message;
        reject(new ClientError(`cannot connect to ${path}: ${hint}`));
      });
    });
    // The same socket file (not swapped while connecting), still owned by root or us.
    const after = socketOwner(path);
    if (before && after && (before.dev !== after.dev || before.ino !== after.ino)) {
      sock.destroy();
      throw new ClientError(`refusing ${path}: the socket file was replaced while connecting`);
    }
    return new ControlClient(path, sock, opts.framing ?? 'json');
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Send one command; yields each reply as it arrives, the last one has wait=false. */
  async *request(command: string, args: string[] = [], extra: { user?: string } = {}): AsyncGenerator<Reply> {
    if (this.closedWith) throw this.closedWith;
    const req: Parameters<typeof encodeRequest>[0] = { command, args, id: this.nextId++ };
    if (extra.user !== undefined) req.user = extra.user;
    this.sock.write(encodeRequest(req, this.framing));
    for (;;) {
      const line = await this.nextLine();
      const d = decodeReply(line);
      if (!d.ok) throw new ClientError(`unreadable reply from the master: ${d.error}`);
      const reply = d.reply as Reply;
      yield reply;
      if (!reply.wait) return;
    }
  }

  /** Run one command and collect every reply. */
  async call(command: string, args: string[] = []): Promise<Reply[]> {
    const out: Reply[] = [];
    for await (const r of this.request(command, args)) out.push(r);
    return out;
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private async nextLine(): Promise<string> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.closedWith) throw this.closedWith;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

/**
 * The control socket file (symlinks followed, as connect() does), refused unless it belongs
 * to root or to the caller: a socket another user owns is not a master we started, but one
 * planted where ours should be (a swapped symlinked directory, a group-writable one), which
 * would get our commands and answer with anything. Null when there is no such file yet
 * (connect() then fails with the usual message).
 */
function socketOwner(path: string): Stats | null {
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return null;
  }
  const uid = process.getuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== uid) {
    throw new ClientError(
      `refusing ${path}: the socket belongs to uid ${st.uid}, neither root nor you (uid ${uid}); another user's process is listening there (run the ctl as that user if that master is theirs)`,
    );
  }
  return st;
}
