import { createConnection, type Socket } from 'node:net';
import { LineSplitter, MAX_REPLY_LENGTH, decodeReply, encodeRequest } from '@einhyrningsins/protocol';

export interface Reply {
  message: string;
  wait: boolean;
  requestId?: string | number;
  [field: string]: unknown;
}

export class ClientError extends Error {
  override name = 'ClientError';
}

/**
 * A connection to a master's control socket (einhyrningsins or einhorn).
 * Requests go one at a time, each with a fresh id; replies are read until
 * the one without `wait`.
 */
export class ControlClient {
  /** As long as any reply (`status` grows with the workers: the default 64 KiB is about 250 of them). */
  private readonly splitter = new LineSplitter({ maxLineLength: MAX_REPLY_LENGTH });
  /** Lines read, or the length of one too long to keep (the request it answers fails). */
  private readonly lines: Array<string | { tooLong: number }> = [];
  private waiter: (() => void) | null = null;
  private closedWith: Error | null = null;
  private nextId = 1;

  private constructor(
    readonly path: string,
    private readonly sock: Socket,
    private readonly framing: 'json' | 'yaml',
  ) {
    sock.on('data', (chunk: Buffer) => {
      for (const item of this.splitter.push(chunk)) this.lines.push('line' in item ? item.line : { tooLong: item.length });
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
      if (typeof line !== 'string') {
        throw new ClientError(`unreadable reply from the master: longer than ${MAX_REPLY_LENGTH / (1024 * 1024)} MiB (${line.tooLong} bytes seen)`);
      }
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

  private async nextLine(): Promise<string | { tooLong: number }> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.closedWith) throw this.closedWith;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}
