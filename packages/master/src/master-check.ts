/** What must hold before the master binds anything (also the whole of --upgrade-check). */
import * as native from 'native-reuseport';
import { StartupError } from './errors.js';
import { UsageError, type Options } from './options.js';
import { checkInterpreter, resolveProgram } from './program.js';
import { fetchTarget } from './release-checks.js';

export function checkMaster(opts: Options): void {
  native.ensureNative();
  native.assertLauncher();
  if (opts.program !== null) {
    try {
      resolveProgram(opts.program, process.env.PATH, process.cwd());
    } catch (err) {
      if (opts.bareAckModeThenProgram === opts.program && !opts.program.includes('/')) {
        throw new UsageError(
          `-m ${opts.program}: unknown ack mode (expected manual or a number of seconds; ` +
            `to run a program named ${opts.program} after a bare -m, write -m -- ${opts.program})`,
        );
      }
      throw err;
    }
    checkInterpreter(opts.program, process.env.PATH, process.cwd());
  }
  if (opts.program !== null && opts.fetch !== null) fetchTarget(opts, process.env, process.cwd());
  if (opts.reexecAs) {
    try {
      resolveProgram(opts.reexecAs[0] as string, process.env.PATH, process.cwd());
    } catch (err) {
      throw new StartupError(`--reexec-as: ${(err as Error).message}`);
    }
  }
}
