/**
 * Black-box harness for `bin/einhyrningsins-dyno`: runs the real driver with
 * real dynos, talks to its control socket, writes control-dir releases, and
 * makes sure nothing is left behind (processes, socket files).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, FIXTURES, alive, childrenOf, ctl, tempDir, until, type CtlReply } from './harness.js';

export const DYNO_BIN = join(ROOT, 'bin', 'einhyrningsins-dyno');
export const WEB = join(FIXTURES, 'dyno', 'web.mjs');
export const WORKER = join(FIXTURES, 'dyno', 'worker.sh');

/** Single-quoted for a Procfile (sh) command line. */
export const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The environment the driver starts from: ours, without what would change its defaults. */
export function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.PORT;
  delete env.HSUP_CONTROL_DIR;
  return { ...env, ...extra };
}

export interface DynoWorker {
  pid: number;
  dyno: string;
  slot: number;
  generation: number;
  state: string;
  acked: boolean;
}

export interface DynoType {
  type: string;
  quantity: number;
  generation: number;
  release_version: number;
  upgrading: boolean;
  workers: DynoWorker[];
}

export interface DynoState {
  driver_pid: number;
  release: { version: number; cwd: string } | null;
  last_rejected: { file: string; reason: string; at: string } | null;
  types: Record<string, DynoType>;
  retiring: DynoType[];
}

export class DriverProc {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  exit: Promise<{ code: number | null; signal: string | null }>;
  exited: { code: number | null; signal: string | null } | null = null;
  /** Every dyno pid seen (for the leak check). */
  readonly seen = new Set<number>();

  constructor(
    readonly args: string[],
    readonly dir: string,
    readonly sockPath: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.proc = spawn(process.execPath, [DYNO_BIN, ...args], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
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

  async port(): Promise<number> {
    return Number((await this.waitLog(/listening on \[?[\d.:a-f]+\]?:(\d+) \(web\)/))[1]);
  }

  async ctl(command: string, args: string[] = [], opts: Parameters<typeof ctl>[3] = {}): Promise<CtlReply[]> {
    return await ctl(this.sockPath, command, args, opts);
  }

  async state(): Promise<DynoState> {
    const [r] = await this.ctl('state');
    const st = (r as unknown as { state: DynoState }).state;
    for (const t of [...Object.values(st.types), ...st.retiring]) for (const w of t.workers) this.seen.add(w.pid);
    return st;
  }

  /** Wait until every type has exactly its wanted number of up processes, none starting or stopping, no draining type. */
  async ready(want: Record<string, number>, timeoutMs = 20_000): Promise<DynoState> {
    return await until(
      `types ready: ${JSON.stringify(want)}`,
      async () => {
        const st = await this.state();
        const names = Object.keys(st.types).sort();
        if (names.join() !== Object.keys(want).sort().join() || st.retiring.length) return null;
        for (const [t, n] of Object.entries(want)) {
          const ty = st.types[t] as DynoType;
          if (ty.upgrading || ty.workers.length !== n || !ty.workers.every((w) => w.state === 'up')) return null;
        }
        return st;
      },
      timeoutMs,
      50,
    );
  }

  snapshotChildren(): void {
    for (const p of childrenOf(this.pid)) this.seen.add(p);
  }

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
    for (const p of this.seen) {
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

const running = new Set<DriverProc>();
const dirs = new Set<string>();

export function newDir(): string {
  const d = tempDir('dyno-test-');
  dirs.add(d);
  return d;
}

/** Start the driver in `dir` (cwd) with `-d DIR/ctl.sock` unless `socket: false`. */
export function startDriver(args: string[], opts: { dir?: string; env?: NodeJS.ProcessEnv; socket?: boolean } = {}): DriverProc {
  const dir = opts.dir ?? newDir();
  dirs.add(dir);
  const sockPath = join(dir, 'ctl.sock');
  const full = opts.socket === false ? args : [args[0] as string, '-d', sockPath, ...args.slice(1)];
  const d = new DriverProc(full, dir, sockPath, baseEnv(opts.env));
  running.add(d);
  return d;
}

/** Run the CLI to completion. */
export async function runDyno(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd: string; timeoutMs?: number },
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [DYNO_BIN, ...args], { env: baseEnv(opts.env), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => p.once('exit', (c, s) => r([c, s])));
  clearTimeout(t);
  return { code, signal, stdout, stderr };
}

/** Write a control-dir release the way a deployer should: a temporary file renamed to DIR/new. */
export function writeRelease(dir: string, release: unknown, raw?: string): void {
  const tmp = join(dir, `.new.${process.pid}.tmp`);
  writeFileSync(tmp, raw ?? JSON.stringify(release, null, 2));
  renameSync(tmp, join(dir, 'new'));
}

/** After each test: every driver stopped, every dyno gone, no socket file left. */
export async function cleanupDrivers(): Promise<string[]> {
  const problems: string[] = [];
  for (const d of running) {
    if (!d.exited) {
      problems.push(`driver ${d.pid} still running (args ${d.args.join(' ')})`);
      await d.stop(5000);
    }
    for (const pid of d.seen) {
      if (alive(pid)) {
        problems.push(`dyno ${pid} of driver ${d.pid} left running`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* raced */
        }
      }
    }
    if (existsSync(d.sockPath)) problems.push(`control socket ${d.sockPath} left behind`);
  }
  running.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
  return problems;
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  /** Every distinct response body seen. */
  bodies: Set<string>;
  /** The last body each client got. */
  last: string;
}

/** Keep-alive GETs from `conns` parallel clients until `stop()` resolves (bounded by its caller). */
export function load(port: number, conns: number): { result: LoadResult; stop: () => Promise<LoadResult> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const r: LoadResult = { ok: 0, failed: 0, errors: [], bodies: new Set(), last: '' };
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 200) {
            r.ok += 1;
            r.bodies.add(body.trim());
            r.last = body.trim();
          } else {
            r.failed += 1;
            r.errors.push(`status ${res.statusCode}`);
          }
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        r.failed += 1;
        if (r.errors.length < 20) r.errors.push(e.message);
        resolve();
      });
    });
  const loops = Array.from({ length: conns }, async () => {
    while (running) await one();
  });
  return {
    result: r,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return r;
    },
  };
}

/** One GET on a fresh connection: the body, trimmed. */
export async function get(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000), headers: { connection: 'close' } });
  return (await res.text()).trim();
}
