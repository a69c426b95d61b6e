/** `einhyrningsins-dyno start|run`: options to configuration, failures to one line and an exit status. */
import { resolve } from 'node:path';
import { defaultStateDir, type AppSource } from './app-source.js';
import { UsageError } from './errors.js';
import { dynoHelpText, parseDynoArgs, type DynoOptions } from './options.js';
import type { RunError } from './run.js';
import { VERSION } from './version.js';
import { defaultDynoSocketPath } from '@einhyrningsins/protocol';

const PROG = 'einhyrningsins-dyno';
/** Failures of start-up that are the user's to fix (status 1). */
const KNOWN_FAILURES = new Set(['NativeMissingError', 'StartupError', 'BindError', 'AppError', 'ReleaseError', 'SlugError', 'ProgramError']);

export { defaultDynoSocketPath };

export function appSource(o: DynoOptions, cwd: string): AppSource {
  if (o.controlDir !== null) {
    return { kind: 'control-dir', dir: resolve(cwd, o.controlDir), envFile: o.envFile === null ? null : resolve(cwd, o.envFile) };
  }
  return {
    kind: 'procfile',
    procfile: resolve(cwd, o.procfile ?? 'Procfile'),
    envFile: resolve(cwd, o.envFile ?? '.env'),
    envExplicit: o.envFile !== null,
    formation: o.formation ?? new Map(),
  };
}

function fail(message: string, code: number): void {
  process.stderr.write(`${PROG}: ${message}\n`);
  process.exitCode = code;
}

export async function main(argv: readonly string[]): Promise<void> {
  let o: DynoOptions;
  try {
    o = parseDynoArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return fail(`${err.message} (see --help)`, 2);
  }
  if (o.help) {
    process.stdout.write(dynoHelpText());
    return;
  }
  if (o.version) {
    process.stdout.write(`${PROG} ${VERSION}\n`);
    return;
  }
  const cwd = process.cwd();
  const source = appSource(o, cwd);
  const stateDir = o.stateDir !== null ? resolve(cwd, o.stateDir) : defaultStateDir(source, cwd);
  try {
    // Loaded only now: --help, --version and usage errors need none of the driver.
    if (o.command === 'run') {
      const { runOneOff } = await import('./run.js');
      process.exitCode = await runOneOff({ source, stateDir, cwd, env: process.env, argv: o.argv });
      return;
    }
    const { Driver } = await import('./driver.js');
    await new Driver({
      source,
      types: o.types,
      stateDir,
      bind: o.bind,
      socketPath: resolve(cwd, o.socketPath ?? defaultDynoSocketPath()),
      ackMode: o.ackMode,
      ackTimeoutSec: o.ackTimeoutSec,
      signalTimeoutSec: o.signalTimeoutSec,
      killChildrenOnExit: o.killChildrenOnExit,
      stopSignal: o.stopSignal,
      oneshot: o.oneshot,
      startNumber: o.startNumber,
      quantities: o.quantities,
      verbosity: o.verbosity,
      cwd,
      env: process.env,
    }).start();
  } catch (err) {
    const e = err as Error;
    if (e.name === 'RunError') return fail(`run: ${e.message}`, (e as RunError).status);
    if (e instanceof UsageError) fail(e.message, 2);
    else if (KNOWN_FAILURES.has(e.name)) fail(e.message, 1);
    else throw err;
    // Nothing may keep us alive now: no process was started.
    setImmediate(() => process.exit(process.exitCode));
  }
}
