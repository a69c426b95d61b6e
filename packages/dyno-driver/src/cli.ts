/** `einhyrningsins-dyno start|run`: options to configuration, failures to one line and an exit status. */
import { resolve } from 'node:path';
import { defaultStateDir, type AppSource } from './app-location.js';
import { UsageError } from './errors.js';
import { driverSettings, dynoHelpText, parseDynoArgs, type DynoOptions } from './options.js';
import type { RunError } from './run.js';
import { VERSION } from './version.js';
import { defaultDynoSocketPath } from '@einhyrningsins/protocol/socket-path';

const PROG = 'einhyrningsins-dyno';
/** The option that carries a reload's snapshot fd (the master's STATE_FD_OPTION; not imported: start-up stays light). */
const STATE_FD_OPTION = '--with-state-fd';

// Node opens its inspector on SIGUSR1 (anyone local could then attach and run code as the
// driver's user) unless the signal has a listener: have one from the first moment (`run`
// passes it on to its command, `start` logs and ignores it).
process.on('SIGUSR1', () => undefined);
/** Failures of start-up that are the user's to fix (status 1). */
const KNOWN_FAILURES = new Set(['NativeMissingError', 'StartupError', 'BindError', 'AppError', 'ReleaseError', 'SlugError', 'ProgramError']);

export { defaultDynoSocketPath };

export function appSource(o: DynoOptions, cwd: string): AppSource {
  if (o.config !== null) return { kind: 'config', file: resolve(cwd, o.config) };
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

export async function main(argvIn: readonly string[]): Promise<void> {
  // A reload re-executes the driver as `... --with-state-fd N <its argv>`, after checking
  // the new code with `... --upgrade-check <its argv>`.
  let argv = argvIn;
  let stateFd: number | null = null;
  let upgradeCheck = false;
  if (argv[0] === STATE_FD_OPTION) {
    const fd = argv[1];
    if (fd === undefined || !/^\d+$/.test(fd)) return fail(`${STATE_FD_OPTION} expects a file descriptor number`, 2);
    stateFd = Number(fd);
    argv = argv.slice(2);
  } else if (argv[0] === '--upgrade-check') {
    upgradeCheck = true;
    argv = argv.slice(1);
  }
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
    // A driver that runs for months: V8 kept lean (lean-v8.ts) before its code loads and runs.
    if (!upgradeCheck) await (await import('./lean-v8.js')).leanV8();
    const { Driver } = await import('./driver.js');
    // Only --config reads a config file: a Procfile start loads none of it.
    const kit = source.kind === 'config' ? (await import('./config-kit.js')).configKit : null;
    if (upgradeCheck) {
      // What reload runs before it re-executes: everything loads, the options hold.
      (await import('native-reuseport')).ensureNative();
      process.stdout.write(`${PROG} ${VERSION}: upgrade check passed\n`);
      return;
    }
    const cfg = {
      ...driverSettings(o),
      source,
      stateDir,
      socketPath: resolve(cwd, o.socketPath ?? defaultDynoSocketPath()),
      httpTokenFile: o.httpTokenFile === null ? null : resolve(cwd, o.httpTokenFile),
      cwd,
      env: process.env,
      argv,
      stateFd,
    };
    await new Driver(cfg, kit).start();
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
