import { helpText, parseArgs, UsageError } from './options.js';
import { VERSION } from './version.js';

const KNOWN_FAILURES = new Set(['StartupError', 'BindError', 'ProgramError']);

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
