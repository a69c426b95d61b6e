import { helpText, parseArgs, UsageError } from './options.js';
import { VERSION } from './version.js';

const KNOWN_FAILURES = new Set(['NativeMissingError', 'StartupError', 'BindError', 'ProgramError']);

/** `einhyrningsins [OPTIONS] [--] PROGRAM [ARGS...]` */
export async function main(argv: readonly string[]): Promise<void> {
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
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  try {
    const { Master } = await import('./master.js');
    await new Master(opts).start();
  } catch (err) {
    const e = err as Error;
    if (!KNOWN_FAILURES.has(e.name)) throw err;
    process.stderr.write(`einhyrningsins: ${e.message}\n`);
    process.exitCode = 1;
    // Nothing may keep us alive now: no child was started.
    setImmediate(() => process.exit(1));
  }
}
