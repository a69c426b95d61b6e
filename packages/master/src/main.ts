import { helpText, parseArgs, UsageError } from './options.js';
import { VERSION } from './version.js';

const KNOWN_FAILURES = new Set(['NativeMissingError', 'StartupError', 'BindError', 'BindUsageError', 'ProgramError', 'UsageError', 'HandoffError']);
/**
 * Usage errors found once the master runs: a malformed -b, -m WORD taken for the program,
 * a --handoff that cannot express the sockets bound. Exit 2, as parse errors.
 */
const USAGE_FAILURES = new Set(['BindUsageError', 'UsageError', 'HandoffError']);

// Node opens its inspector on SIGUSR1 (anyone local could then attach and run code as us)
// unless the signal has a listener: have one from the first moment; the master's own
// (pass USR1 on to the workers) is added once it runs.
process.on('SIGUSR1', () => undefined);

/** `einhyrningsins [OPTIONS] [--] PROGRAM [ARGS...]` */
export async function main(argvIn: readonly string[]): Promise<void> {
  // The master's own reload re-executes it as `... --with-state-fd N <its argv>`.
  let stateFd: number | null = null;
  let argv = argvIn;
  if (argv[0] === '--with-state-fd') {
    const fd = argv[1];
    if (fd === undefined || !/^\d+$/.test(fd)) {
      process.stderr.write('einhyrningsins: --with-state-fd expects a file descriptor number\n');
      process.exitCode = 2;
      return;
    }
    stateFd = Number(fd);
    argv = argv.slice(2);
  }
  if (argv.length === 0) {
    // einhorn's behaviour (its integration suite checks it): the usage on stdout, under
    // einhorn's '## Usage' heading, exit 1.
    process.stdout.write(`## Usage\n\n${helpText()}`);
    process.exitCode = 1;
    return;
  }
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`einhyrningsins: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  if (opts.help) {
    process.stdout.write(helpText());
    return;
  }
  if (opts.version) {
    process.stdout.write(`einhyrningsins ${VERSION}\n`);
    return;
  }
  // A log reader that goes away (`einhyrningsins ... | logger` and logger dies) must not
  // take the master down: writes to a broken stdout/stderr are dropped from then on.
  // (stdout only where the master writes to it, --prefix-output: creating the stream costs RSS.)
  process.stderr.on('error', () => undefined);
  if (opts.prefixOutput) process.stdout.on('error', () => undefined);
  try {
    const { Master } = await import('./master.js');
    if (opts.upgradeCheck) {
      // What reload runs before it re-executes: everything loads, the options hold.
      Master.check(opts);
      process.stdout.write(`einhyrningsins ${VERSION}: upgrade check passed\n`);
      return;
    }
    await new Master(opts, argv, stateFd).start();
  } catch (err) {
    const e = err as Error;
    if (!KNOWN_FAILURES.has(e.name)) throw err;
    const code = USAGE_FAILURES.has(e.name) ? 2 : 1;
    process.stderr.write(`einhyrningsins: ${e.message}\n`);
    process.exitCode = code;
    // Nothing may keep us alive now: no child was started.
    setImmediate(() => process.exit(code));
  }
}
