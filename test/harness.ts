/**
 * Black-box test harness: runs the real `bin/einhyrningsins` with real
 * children on loopback, talks to its control socket, and makes sure nothing
 * is left behind (processes, socket files).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineSplitter, decodeReply, encodeRequest } from '@einhyrningsins/protocol';
import { alive, childrenOf } from './proc.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (this file runs from test/dist/). */
export const ROOT = resolve(here, '..', '..');
export const BIN = join(ROOT, 'bin', 'einhyrningsins');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/** A temporary directory, removed by cleanupAll after the test. */
export function tempDir(prefix = 'ein-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Poll `fn` until it returns a truthy value or `timeoutMs` passes (then throw with `what`). */
export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 20): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export { alive, childrenOf } from './proc.js';

export interface CtlReply {
  message: string;
  wait: boolean;
  [k: string]: unknown;
}

/** Send one request on a fresh connection; collect replies until one without `wait`. */
export async function ctl(
  sockPath: string,
  command: string,
  args: string[] = [],
  opts: { id?: number | null; timeoutMs?: number; framing?: 'json' | 'yaml' } = {},
): Promise<CtlReply[]> {
  const id = opts.id === undefined ? 1 : opts.id;
  return await new Promise<CtlReply[]>((resolvePromise, reject) => {
    const replies: CtlReply[] = [];
    const sock: Socket = createConnection(sockPath);
    const splitter = new LineSplitter({ maxLineLength: 64 * 1024 * 1024 }); // status grows with the workers
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no final reply to ${command} within ${opts.timeoutMs ?? 30_000} ms; got ${JSON.stringify(replies)}`));
    }, opts.timeoutMs ?? 30_000);
    sock.on('connect', () => {
      const req: { command: string; args: string[]; id?: number } = { command, args };
      if (id !== null) req.id = id;
      sock.write(encodeRequest(req, opts.framing ?? 'json'));
    });
    sock.on('data', (chunk) => {
      for (const item of splitter.push(chunk)) {
        if ('error' in item) continue;
        const d = decodeReply(item.line);
        if (!d.ok) {
          clearTimeout(timer);
          sock.destroy();
          reject(new Error(`bad reply line: ${item.line}`));
          return;
        }
        replies.push(d.reply as CtlReply);
        if (!d.reply.wait) {
          clearTimeout(timer);
          sock.end();
          resolvePromise(replies);
          return;
        }
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolvePromise(replies);
    });
  });
}

export interface StateWorker {
  pid: number;
  slot: number;
  generation: number;
  state: string;
  acked: boolean;
}

/**
 * A supervisor program under test (the master or the dyno driver): its output, its exit,
 * and every child pid it was seen with, so that nothing is left running afterwards.
 */
export class SupervisorProc {
  readonly proc: ChildProcess;
  stderr = '';
  stdout = '';
  exit: Promise<{ code: number | null; signal: string | null }>;
  exited: { code: number | null; signal: string | null } | null = null;
  /** Every child pid this supervisor was seen with (for the leak check). */
  readonly seenChildren = new Set<number>();

  constructor(
    cmd: string,
    cmdArgs: readonly string[],
    readonly args: string[],
    readonly dir: string,
    readonly sockPath: string,
    env: NodeJS.ProcessEnv,
    stdio: Array<'ignore' | 'pipe'> = ['ignore', 'pipe', 'pipe'],
  ) {
    this.proc = spawn(cmd, [...cmdArgs, ...args], { env, stdio, cwd: dir });
    this.proc.stdout!.on('data', (d) => {
      this.stdout += d;
      if (process.env.TEST_VERBOSE) process.stdout.write(d);
    });
    this.proc.stderr!.on('data', (d) => {
      this.stderr += d;
      if (process.env.TEST_VERBOSE) process.stderr.write(d);
    });
    this.exit = new Promise((r) =>
      this.proc.once('exit', (code, signal) => {
        this.exited = { code, signal };
        r(this.exited);
      }),
    );
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  async waitLog(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return await until(`log ${re} (stderr so far:\n${this.stderr.slice(-3000)})`, () => this.stderr.match(re), timeoutMs);
  }

  async waitOut(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return await until(`output ${re} (stdout so far:\n${this.stdout.slice(-2000)})`, () => this.stdout.match(re), timeoutMs);
  }

  async ctl(command: string, args: string[] = [], opts: Parameters<typeof ctl>[3] = {}): Promise<CtlReply[]> {
    return await ctl(this.sockPath, command, args, opts);
  }

  snapshotChildren(): void {
    for (const p of childrenOf(this.pid)) this.seenChildren.add(p);
  }

  /** SIGTERM, wait for the exit; SIGKILL everything after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<{ code: number | null; signal: string | null }> {
    if (this.exited) return this.exited;
    this.snapshotChildren();
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.kill(), timeoutMs);
    const r = await this.exit;
    clearTimeout(t);
    return r;
  }

  kill(): void {
    this.snapshotChildren();
    for (const p of this.seenChildren) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    try {
      this.proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export class MasterProc extends SupervisorProc {
  constructor(
    args: string[],
    dir: string,
    sockPath: string,
    env: NodeJS.ProcessEnv,
    leakFd?: number,
    prefix: readonly string[] = [],
    bin: string = BIN,
  ) {
    // leakFd: hand the master one more open fd (a pipe, not close-on-exec) at that number.
    const stdio: Array<'ignore' | 'pipe'> = ['ignore', 'pipe', 'pipe'];
    if (leakFd !== undefined) {
      while (stdio.length < leakFd) stdio.push('ignore');
      stdio.push('pipe');
    }
    // prefix: a command that execs the master (e.g. prlimit), so its pid stays the master's.
    const [cmd, ...pre] = [...prefix, process.execPath];
    super(cmd as string, [...pre, bin], args, dir, sockPath, env, stdio);
  }

  async port(): Promise<number> {
    const m = await this.waitLog(/listening on \[?[\d.:a-f]+\]?:(\d+)/);
    return Number(m[1]);
  }

  async workers(): Promise<StateWorker[]> {
    const [r] = await this.ctl('status');
    const st = (r as unknown as { state: { workers: StateWorker[] } }).state;
    for (const w of st.workers) this.seenChildren.add(w.pid);
    return st.workers;
  }

  /** Wait until `n` workers are up (acked) and none is starting or stopping. */
  async ready(n: number, timeoutMs = 15_000): Promise<StateWorker[]> {
    return await until(
      `${n} ready workers`,
      async () => {
        const ws = await this.workers();
        return ws.length === n && ws.every((w) => w.state === 'up') ? ws : null;
      },
      timeoutMs,
      50,
    );
  }
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  dir?: string;
  /** Pass -d automatically (default true). */
  socket?: boolean;
  /** Give the master an extra inherited fd at this number. */
  leakFd?: number;
  /** Run the master through this command, which must exec it (e.g. ['prlimit', '--nofile=48', '--']). */
  prefix?: string[];
  /** The master's executable (default: bin/einhyrningsins of this tree), run with this Node. */
  bin?: string;
}

const running = new Set<SupervisorProc>();
const dirs = new Set<string>();

/** Let cleanupAll check and remove this supervisor and its directory after the test. */
export function track(proc: SupervisorProc, dir: string): void {
  running.add(proc);
  dirs.add(dir);
}

export function startMaster(args: string[], opts: StartOptions = {}): MasterProc {
  const dir = opts.dir ?? tempDir();
  const sockPath = join(dir, 'ctl.sock');
  const full = opts.socket === false ? args : ['-d', sockPath, ...args];
  const m = new MasterProc(full, dir, sockPath, { ...process.env, ...opts.env }, opts.leakFd, opts.prefix, opts.bin);
  track(m, dir);
  return m;
}

/** Run a CLI (default: the master) to completion (for bad-input tests). */
export async function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; bin?: string } = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; pid: number }> {
  const p = spawn(process.execPath, [opts.bin ?? BIN, ...args], {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd ?? ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => p.once('exit', (c, s) => r([c, s])));
  clearTimeout(t);
  return { code, signal, stdout, stderr, pid: p.pid as number };
}

/**
 * After each test: every supervisor (master or driver) stopped, every child it ever
 * had gone, no socket file left. Returns what was left (and kills it) so the test fails.
 */
export async function cleanupAll(): Promise<string[]> {
  const problems: string[] = [];
  for (const m of running) {
    if (!m.exited) {
      problems.push(`supervisor ${m.pid} still running (args ${m.args.join(' ')})`);
      await m.stop(5000);
    }
    for (const pid of m.seenChildren) {
      if (alive(pid)) {
        problems.push(`child ${pid} of supervisor ${m.pid} left running`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* raced */
        }
      }
    }
    if (existsSync(m.sockPath)) problems.push(`control socket ${m.sockPath} left behind`);
  }
  running.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
  return problems;
}

/** HTTP GET on loopback with a fresh connection; resolves to the body. */
export async function httpGet(port: number, path = '/', timeoutMs = 5000): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: { connection: 'close' },
  });
  return await res.text();
}

/** Connect, read until the server closes (for the Python and shell children). */
export async function readLine(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<string> {
  return await new Promise<string>((resolvePromise, reject) => {
    let data = '';
    const s = createConnection({ port, host });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port} in ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('data', (d) => (data += d));
    s.on('end', () => {
      clearTimeout(t);
      s.destroy();
      resolvePromise(data);
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  /** Every distinct response body seen. */
  bodies: Set<string>;
  /** The last body any client got. */
  last: string;
  /** The last 10 bodies, oldest first. */
  recent: string[];
}

export interface LoadOptions {
  /** A new connection per request (Connection: close, as a router does) instead of keep-alive. */
  fresh?: boolean;
  /** Stop sending by itself after this long (else only `stop()` ends it). */
  maxMs?: number;
  /** A request unanswered this long is a failure (default 5000). */
  timeoutMs?: number;
}

/** GETs from `conns` parallel clients until `stop()` resolves (bounded by its caller) or `maxMs` passes. */
export function load(port: number, conns: number, opts: LoadOptions = {}): { result: LoadResult; stop: () => Promise<LoadResult> } {
  const agent = opts.fresh ? null : new http.Agent({ keepAlive: true, maxSockets: conns });
  const deadline = opts.maxMs === undefined ? Infinity : Date.now() + opts.maxMs;
  const r: LoadResult = { ok: 0, failed: 0, errors: [], bodies: new Set(), last: '', recent: [] };
  let running = true;
  const failed = (e: Error) => {
    r.failed += 1;
    if (r.errors.length < 20) r.errors.push(e.message);
  };
  const one = () =>
    new Promise<void>((resolve) => {
      const target = agent ? { agent } : { agent: false, headers: { connection: 'close' } };
      const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: opts.timeoutMs ?? 5000, ...target }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 200) {
            r.ok += 1;
            const b = body.trim();
            r.bodies.add(b);
            r.last = b;
            r.recent.push(b);
            if (r.recent.length > 10) r.recent.shift();
          } else {
            r.failed += 1;
            r.errors.push(`status ${res.statusCode}`);
          }
          resolve();
        });
        res.on('error', (e) => {
          failed(e);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        failed(e);
        resolve();
      });
    });
  const loops = Array.from({ length: conns }, async () => {
    while (running && Date.now() < deadline) await one();
  });
  return {
    result: r,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent?.destroy();
      return r;
    },
  };
}

/** A loopback TCP port free right now (for configs and servers that name their port). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
