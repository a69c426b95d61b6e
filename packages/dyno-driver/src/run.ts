/**
 * `einhyrningsins-dyno run -- CMD ARGS`: one command with the app's
 * environment (release Env + .env + a unique DYNO=run.N), stdio inherited;
 * exits with its status, 128+N when it was killed by signal N (hsup run).
 * `run TYPE` runs that Procfile entry (or release process type).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants } from 'node:os';
import { checkControlDir, peekControlDir, procfileDir, readDotenv, readProcfile, type AppSource } from './app-source.js';
import { procfileArgs, type ProcfileEntry } from './procfile.js';
import { RELEASE_TYPE } from './release.js';
import { AppError } from './errors.js';
import { prepareSlug } from './slug.js';

export interface RunConfig {
  source: AppSource;
  stateDir: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  argv: readonly string[];
}

/** The environment, directory and argv of a one-off process. */
export async function runContext(c: RunConfig): Promise<{ env: NodeJS.ProcessEnv; cwd: string; argv: string[] }> {
  const src = c.source;
  const warn = (m: string) => process.stderr.write(`einhyrningsins-dyno: warning: ${m}\n`);
  if (src.kind === 'procfile') {
    const env = { ...c.env, ...readDotenv(src.envFile, src.envExplicit, warn) };
    // `run TYPE [ARGS...]` runs that Procfile entry (as `foreman run web`), when there is a Procfile.
    let entries: ProcfileEntry[] = [];
    if (existsSync(src.procfile)) entries = readProcfile(src.procfile, warn);
    const entry = entries.find((e) => e.type === c.argv[0]);
    if (entry) {
      const rest = c.argv.slice(1).map(shellQuote).join(' ');
      return { env, cwd: procfileDir(src), argv: procfileArgs(rest ? `${entry.command} ${rest}` : entry.command) };
    }
    return { env, cwd: c.cwd, argv: oneOffArgv(c.argv) };
  }
  if (src.kind === 'config') throw new AppError('run does not take --config');
  checkControlDir(src.dir);
  // Read only: a running driver owns the renaming of DIR/new.
  const peek = peekControlDir(src.dir);
  if (!peek.release) {
    const why = peek.problems.length ? peek.problems.join('; ') : `neither ${src.dir}/new nor ${src.dir}/loaded exists`;
    throw new AppError(`no release to run: ${why}`);
  }
  const rel = peek.release;
  let place;
  try {
    place = await prepareSlug({ slug: rel.slug, version: rel.version, baseDir: src.dir, stateDir: c.stateDir, defaultCwd: c.cwd });
  } catch (err) {
    throw new AppError((err as Error).message);
  }
  const dotenv = src.envFile ? readDotenv(src.envFile, true, warn) : {};
  const proc = rel.processes.find((p) => p.type === c.argv[0]) ?? (c.argv[0] === RELEASE_TYPE && rel.releaseArgs ? { args: rel.releaseArgs } : null);
  const argv = proc && c.argv.length === 1 ? [...proc.args] : oneOffArgv(c.argv);
  return { env: { ...c.env, ...dotenv, ...rel.env }, cwd: place.cwd, argv };
}

/**
 * One word with shell syntax in it is a shell command line (`run 'echo $X'`,
 * as hsup runs it: bash -c); a plain word or more words are a program and its
 * arguments.
 */
function oneOffArgv(argv: readonly string[]): string[] {
  const one = argv[0] as string;
  return argv.length === 1 && !/^[\w@%+=:,./-]+$/.test(one) ? ['bash', '-c', one] : [...argv];
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A dyno name no other one-off process of this app has: run.1, run.2, ...
 * Each is held as an abstract unix socket name (Linux), so it is released
 * when the process ends, however it ends, and leaves no file.
 */
export async function claimRunName(appKey: string): Promise<{ name: string; release: () => void }> {
  const hash = createHash('sha256').update(appKey).digest('hex').slice(0, 16);
  for (let n = 1; n <= 10_000; n++) {
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(`\0einhyrningsins-dyno/${hash}/run.${n}`, () => resolve(true));
    });
    if (ok) {
      server.unref();
      return { name: `run.${n}`, release: () => server.close() };
    }
  }
  return { name: `run.${process.pid}`, release: () => undefined };
}

/** Run the command; resolves to the exit status to exit with. */
export async function runOneOff(c: RunConfig): Promise<number> {
  const { env, cwd, argv } = await runContext(c);
  const src = c.source;
  const claim = await claimRunName(src.kind === 'procfile' ? src.procfile : src.kind === 'config' ? src.file : src.dir);
  env.DYNO = claim.name;
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: 'inherit', env, cwd });
  // Signals for the command: passed on. From a terminal, INT and QUIT reach it directly.
  const forward = (['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGQUIT'] as const).map((sig) => {
    const fn = () => {
      if ((sig === 'SIGINT' || sig === 'SIGQUIT') && process.stdin.isTTY) return;
      try {
        child.kill(sig);
      } catch {
        /* gone */
      }
    };
    process.on(sig, fn);
    return () => process.off(sig, fn);
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') reject(new RunError(`${cmd}: command not found`, 127));
        else if (err.code === 'EACCES') reject(new RunError(`${cmd}: permission denied`, 126));
        else reject(new RunError(`${cmd}: ${err.message}`, 126));
      });
      child.once('exit', (code, signal) => {
        if (signal) resolve(128 + (constants.signals[signal] ?? 0));
        else resolve(code ?? 1);
      });
    });
  } finally {
    for (const off of forward) off();
    claim.release();
  }
}

/** The command could not be started (status 126 or 127, as a shell would). */
export class RunError extends Error {
  override name = 'RunError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}
