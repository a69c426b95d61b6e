/**
 * Black-box harness for `bin/einhyrningsins-dyno`: runs the real driver with
 * real dynos, talks to its control socket, writes control-dir releases, and
 * makes sure nothing is left behind (processes, socket files).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, FIXTURES, SupervisorProc, cleanupAll, runCli, tempDir, track, until } from './harness.js';
export { load, type LoadResult } from './harness.js';

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

export class DriverProc extends SupervisorProc {
  constructor(args: string[], dir: string, sockPath: string, env: NodeJS.ProcessEnv) {
    super(process.execPath, [DYNO_BIN], args, dir, sockPath, env);
  }

  async port(): Promise<number> {
    return Number((await this.waitLog(/listening on \[?[\d.:a-f]+\]?:(\d+) \(web\)/))[1]);
  }

  async state(): Promise<DynoState> {
    const [r] = await this.ctl('state');
    const st = (r as unknown as { state: DynoState }).state;
    for (const t of [...Object.values(st.types), ...st.retiring]) for (const w of t.workers) this.seenChildren.add(w.pid);
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
}

/** A temporary directory, removed by cleanupAll. */
export function newDir(): string {
  return tempDir('dyno-test-');
}

/** Start the driver in `dir` (cwd) with `-d DIR/ctl.sock` unless `socket: false`. */
export function startDriver(args: string[], opts: { dir?: string; env?: NodeJS.ProcessEnv; socket?: boolean } = {}): DriverProc {
  const dir = opts.dir ?? newDir();
  const sockPath = join(dir, 'ctl.sock');
  const full = opts.socket === false ? args : [args[0] as string, '-d', sockPath, ...args.slice(1)];
  const d = new DriverProc(full, dir, sockPath, baseEnv(opts.env));
  track(d, dir);
  return d;
}

/** Run the CLI to completion. */
export async function runDyno(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd: string; timeoutMs?: number },
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return await runCli(args, { ...opts, env: baseEnv(opts.env), bin: DYNO_BIN });
}

/** Write a control-dir release the way a deployer should: a temporary file renamed to DIR/new. */
export function writeRelease(dir: string, release: unknown, raw?: string): void {
  const tmp = join(dir, `.new.${process.pid}.tmp`);
  writeFileSync(tmp, raw ?? JSON.stringify(release, null, 2));
  renameSync(tmp, join(dir, 'new'));
}

/** After each test: every driver stopped, every dyno gone, no socket file left. */
export const cleanupDrivers = cleanupAll;


/** One GET on a fresh connection: the body, trimmed. */
export async function get(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000), headers: { connection: 'close' } });
  return (await res.text()).trim();
}
