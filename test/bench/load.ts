/**
 * A small closed-loop HTTP/1.1 load generator for the bench (wrk-like), run in
 * a worker thread so that the bench's own polling does not stall it.
 *
 * Each of `connections` keep-alive connections has exactly one request in
 * flight at a time (no pipelining). It counts what wrk counts, and the way
 * wrk does: a connect error, a connection closed or reset while a request is
 * in flight (read), a failed write, a request unanswered after `timeoutMs`
 * (timeout), a non-2xx status. A response carrying `Connection: close` is not
 * an error: the connection is closed and a new one opened, and no request is
 * ever sent on a connection the server said it will close (autocannon does
 * that, and then miscounts both ways, hence this file).
 *
 * Responses must carry Content-Length (the bench child's do); anything else is
 * counted as a protocol error.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface LoadOptions {
  host: string;
  port: number;
  connections: number;
  timeoutMs: number;
  /**
   * Ask for `Connection: close` on every this-many-th request of a connection
   * (0: never). Connections then come and go, so the kernel's accept spread
   * over the workers of a shared socket averages out instead of staying as
   * the first 50 connects happened to fall (the main source of run-to-run
   * noise with keep-alive load on 2 workers).
   */
  reconnectEvery?: number;
  path?: string;
  /**
   * Keep every 2xx request's start (ms since the mark) and latency (ms), for latency
   * around an event (the upgrade-window phase). Off by default: it costs memory.
   */
  record?: boolean;
  /** With `record`: also keep each request's server pid (the `X-Pid` response header; 0 without one). */
  recordPid?: boolean;
}

export interface LoadCounts {
  /** 2xx responses. */
  ok: number;
  non2xx: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  timeouts: number;
  protocolErrors: number;
  /** Connections closed by the server after a `Connection: close` response it chose (drain). */
  serverCloses: number;
  /** Connections closed after a `Connection: close` the generator asked for (reconnectEvery). */
  plannedCloses: number;
}

export interface LoadResult extends LoadCounts {
  /** Milliseconds from `mark()` (or the start) to `stop()`. */
  elapsedMs: number;
  /** 2xx responses per second over elapsedMs. */
  rps: number;
  errors: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** 2xx responses per 100 ms bucket since the mark. */
  buckets: number[];
  /** With `record`: the mark as an epoch time in ms (performance.timeOrigin + now, comparable across threads). */
  markEpochMs?: number;
  /** With `record`: per 2xx request, its start (ms since the mark) and latency (ms), in completion order. */
  starts?: Float64Array;
  latencies?: Float32Array;
  /** With `recordPid`: per 2xx request, the pid that answered it. */
  pids?: Int32Array;
}

const BUCKET_MS = 100;
/** Latency histogram: 10 µs resolution up to this many ms, then one overflow bucket. */
const HIST_MAX_MS = 5000;
const HIST_RES = 100; // buckets per ms

function emptyCounts(): LoadCounts {
  return { ok: 0, non2xx: 0, connectErrors: 0, readErrors: 0, writeErrors: 0, timeouts: 0, protocolErrors: 0, serverCloses: 0, plannedCloses: 0 };
}

export function errorCount(c: LoadCounts): number {
  return c.non2xx + c.connectErrors + c.readErrors + c.writeErrors + c.timeouts + c.protocolErrors;
}

// ---- the generator (runs inside the worker thread) ----------------------------

const CRLF2 = Buffer.from('\r\n\r\n');

class Generator {
  counts = emptyCounts();
  private hist = new Uint32Array(HIST_MAX_MS * HIST_RES + 1);
  private maxLatency = 0;
  private buckets: number[] = [];
  private t0 = performance.now();
  private running = true;
  private readonly request: Buffer;
  private readonly lastRequest: Buffer;
  private readonly reconnectEvery: number;
  private readonly conns = new Set<Conn>();
  private readonly sweeper: NodeJS.Timeout;
  private starts: Float64Array | null = null;
  private latencies: Float32Array | null = null;
  private pids: Int32Array | null = null;
  private recorded = 0;

  constructor(readonly opts: LoadOptions) {
    const head = `GET ${opts.path ?? '/'} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\n`;
    this.request = Buffer.from(`${head}\r\n`, 'latin1');
    this.lastRequest = Buffer.from(`${head}Connection: close\r\n\r\n`, 'latin1');
    this.reconnectEvery = opts.reconnectEvery ?? 0;
    if (opts.record) {
      this.starts = new Float64Array(1 << 16);
      this.latencies = new Float32Array(1 << 16);
      if (opts.recordPid) this.pids = new Int32Array(1 << 16);
    }
    for (let i = 0; i < opts.connections; i++) this.open();
    this.sweeper = setInterval(() => this.sweep(), 50);
  }

  /** Start counting afresh (end of warm-up). */
  mark(): void {
    this.counts = emptyCounts();
    this.hist.fill(0);
    this.maxLatency = 0;
    this.buckets = [];
    this.recorded = 0;
    this.t0 = performance.now();
  }

  stop(): LoadResult {
    const elapsedMs = performance.now() - this.t0;
    this.running = false;
    clearInterval(this.sweeper);
    for (const c of this.conns) c.sock.destroy();
    this.conns.clear();
    const c = this.counts;
    return {
      ...c,
      elapsedMs,
      rps: (c.ok / elapsedMs) * 1000,
      errors: errorCount(c),
      latencyMs: {
        p50: this.quantile(0.5),
        p90: this.quantile(0.9),
        p99: this.quantile(0.99),
        max: this.maxLatency,
      },
      buckets: Array.from(this.buckets, (v) => v ?? 0),
      ...(this.starts && this.latencies
        ? {
            markEpochMs: performance.timeOrigin + this.t0,
            starts: this.starts.slice(0, this.recorded),
            latencies: this.latencies.slice(0, this.recorded),
            ...(this.pids ? { pids: this.pids.slice(0, this.recorded) } : {}),
          }
        : {}),
    };
  }

  private record(start: number, lat: number, pid: number): void {
    if (!this.starts || !this.latencies) return;
    if (this.recorded === this.starts.length) {
      const s = new Float64Array(this.starts.length * 2);
      s.set(this.starts);
      this.starts = s;
      const l = new Float32Array(this.latencies.length * 2);
      l.set(this.latencies);
      this.latencies = l;
      if (this.pids) {
        const p = new Int32Array(this.pids.length * 2);
        p.set(this.pids);
        this.pids = p;
      }
    }
    this.starts[this.recorded] = start;
    this.latencies[this.recorded] = lat;
    if (this.pids) this.pids[this.recorded] = pid;
    this.recorded++;
  }

  private quantile(q: number): number {
    let total = 0;
    for (const v of this.hist) total += v;
    if (total === 0) return 0;
    const want = Math.ceil(total * q);
    let seen = 0;
    for (let i = 0; i < this.hist.length; i++) {
      seen += this.hist[i] as number;
      if (seen >= want) return (i + 1) / HIST_RES;
    }
    return HIST_MAX_MS;
  }

  private open(): void {
    if (!this.running) return;
    const conn = new Conn(this, connect({ host: this.opts.host, port: this.opts.port }));
    this.conns.add(conn);
  }

  /** Called by a Conn once it is finished; opens its replacement. */
  closed(conn: Conn, failedToConnect: boolean): void {
    if (!this.conns.delete(conn)) return;
    if (!this.running) return;
    // Do not spin on a refused port; reconnect at once otherwise (as wrk does).
    if (failedToConnect) setTimeout(() => this.open(), 10);
    else setImmediate(() => this.open());
  }

  send(conn: Conn): void {
    conn.sentAt = performance.now();
    conn.sent++;
    conn.lastAsked = this.reconnectEvery > 0 && conn.sent % this.reconnectEvery === 0;
    conn.sock.write(conn.lastAsked ? this.lastRequest : this.request);
  }

  get wantsPid(): boolean {
    return this.pids !== null;
  }

  answered(conn: Conn, status: number, pid = 0): void {
    const now = performance.now();
    const sentAt = conn.sentAt;
    const lat = now - sentAt;
    conn.sentAt = -1;
    if (status >= 200 && status < 300) {
      this.counts.ok++;
      const b = Math.floor((now - this.t0) / BUCKET_MS);
      if (b >= 0) this.buckets[b] = (this.buckets[b] ?? 0) + 1;
      if (sentAt >= this.t0) this.record(sentAt - this.t0, lat, pid);
    } else {
      this.counts.non2xx++;
    }
    this.hist[Math.min(Math.floor(lat * HIST_RES), HIST_MAX_MS * HIST_RES)]! += 1;
    if (lat > this.maxLatency) this.maxLatency = lat;
  }

  private sweep(): void {
    const now = performance.now();
    for (const c of this.conns) {
      if (c.sentAt >= 0 && now - c.sentAt > this.opts.timeoutMs) c.fail('timeouts');
    }
  }

  get isRunning(): boolean {
    return this.running;
  }
}

class Conn {
  connected = false;
  /** performance.now() when the in-flight request was written; -1 when none. */
  sentAt = -1;
  /** Requests sent on this connection; the last one asked for Connection: close. */
  sent = 0;
  lastAsked = false;
  private buf: Buffer | null = null;
  private done = false;

  constructor(
    private readonly gen: Generator,
    readonly sock: Socket,
  ) {
    sock.setNoDelay(true);
    sock.on('connect', () => {
      this.connected = true;
      if (gen.isRunning) gen.send(this);
    });
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.connected) this.fail('connectErrors');
      else if (err.syscall === 'write') this.fail('writeErrors');
      else this.fail('readErrors');
    });
    sock.on('close', () => {
      // Closed by the server (FIN or RST) with a request still unanswered: lost.
      if (this.sentAt >= 0) this.fail('readErrors');
      else this.finish();
    });
  }

  /** Count one error (once per connection), drop the connection, open another. */
  fail(kind: keyof LoadCounts): void {
    if (this.done) return;
    if (this.gen.isRunning) this.gen.counts[kind]++;
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.sentAt = -1;
    this.sock.destroy();
    this.gen.closed(this, !this.connected);
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    const buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.sentAt < 0) return this.fail('protocolErrors'); // bytes nobody asked for
    const headEnd = buf.indexOf(CRLF2);
    if (headEnd < 0) {
      if (buf.length > 16384) return this.fail('protocolErrors');
      this.buf = buf;
      return;
    }
    const head = buf.toString('latin1', 0, headEnd + 2).toLowerCase();
    if (!head.startsWith('http/1.')) return this.fail('protocolErrors');
    const status = Number(head.slice(9, 12));
    const cl = /\r\ncontent-length: *(\d+)\r\n/.exec(head);
    if (!cl) return this.fail('protocolErrors');
    const total = headEnd + 4 + Number(cl[1]);
    if (buf.length < total) {
      this.buf = buf;
      return;
    }
    if (buf.length > total) return this.fail('protocolErrors'); // one request in flight: one response
    this.buf = null;
    const pid = this.gen.wantsPid ? Number(/\r\nx-pid: *(\d+)\r\n/.exec(head)?.[1] ?? 0) : 0;
    this.gen.answered(this, status, pid);
    if (/\r\nconnection: *close\r\n/.test(head)) {
      if (this.lastAsked) this.gen.counts.plannedCloses++;
      else this.gen.counts.serverCloses++;
      this.finish();
      return;
    }
    if (this.gen.isRunning) this.gen.send(this);
  }
}

if (!isMainThread && (workerData as { kind?: string } | null)?.kind === 'bench-load') {
  const gen = new Generator((workerData as { opts: LoadOptions }).opts);
  parentPort!.on('message', (msg: { type: string }) => {
    if (msg.type === 'mark') {
      gen.mark();
      parentPort!.postMessage({ type: 'marked' });
    } else if (msg.type === 'stop') {
      parentPort!.postMessage({ type: 'result', result: gen.stop() });
    }
  });
  parentPort!.postMessage({ type: 'started' });
}

// ---- the handle (main thread) ------------------------------------------------

export class Load {
  private constructor(private readonly worker: Worker) {}

  static async start(opts: LoadOptions): Promise<Load> {
    const worker = new Worker(new URL(import.meta.url), { workerData: { kind: 'bench-load', opts } });
    const load = new Load(worker);
    await load.expect('started', 5000);
    return load;
  }

  /** Reset the counters: what `stop()` reports starts here. */
  async mark(): Promise<void> {
    this.worker.postMessage({ type: 'mark' });
    await this.expect('marked', 5000);
  }

  async stop(): Promise<LoadResult> {
    this.worker.postMessage({ type: 'stop' });
    const msg = (await this.expect('result', 10_000)) as { result: LoadResult };
    await this.worker.terminate();
    return msg.result;
  }

  /** Best effort, for cleanup on failure. */
  kill(): void {
    void this.worker.terminate();
  }

  private expect(type: string, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`load generator: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMsg = (m: { type: string }) => {
        if (m.type === type) {
          cleanup();
          resolve(m);
        }
      };
      const onErr = (e: Error) => {
        cleanup();
        reject(e);
      };
      const cleanup = () => {
        clearTimeout(t);
        this.worker.off('message', onMsg);
        this.worker.off('error', onErr);
      };
      this.worker.on('message', onMsg);
      this.worker.on('error', onErr);
    });
  }
}
