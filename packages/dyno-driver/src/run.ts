/**
 * `einhyrningsins-dyno run -- CMD ARGS`: one command with the app's
 * environment (release Env + .env + DYNO=run.1), stdio inherited; exits with
 * its status, 128+N when it was killed by signal N (hsup run).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { checkControlDir, peekControlDir, readDotenv, type AppSource } from './app-source.js';
import { AppError } from './errors.js';
import { prepareSlug } from './slug.js';

export interface RunConfig {
  source: AppSource;
  stateDir: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  argv: readonly string[];
}

/** The environment and directory of a one-off process. */
export async function runContext(c: RunConfig): Promise<{ env: NodeJS.ProcessEnv; cwd: string }> {
  const src = c.source;
  if (src.kind === 'procfile') {
    return { env: { ...c.env, ...readDotenv(src.envFile, src.envExplicit), DYNO: 'run.1' }, cwd: c.cwd };
  }
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
  const dotenv = src.envFile ? readDotenv(src.envFile, true) : {};
  return { env: { ...c.env, ...dotenv, ...rel.env, DYNO: 'run.1' }, cwd: place.cwd };
}

/** Run the command; resolves to the exit status to exit with. */
export async function runOneOff(c: RunConfig): Promise<number> {
  const { env, cwd } = await runContext(c);
  const [cmd, ...args] = c.argv as [string, ...string[]];
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
