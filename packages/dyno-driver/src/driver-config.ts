/** How the dyno driver was started (its command line, resolved). */
import type { AppSource } from './app-location.js';
import type { DriverSettings } from './options.js';

/** The options the driver takes as given (declared, with their defaults, in options.ts), and what the command line resolved. */
export interface DriverConfig extends Readonly<DriverSettings> {
  source: AppSource;
  stateDir: string;
  socketPath: string;
  /** --http-token-file, resolved. */
  httpTokenFile: string | null;
  /** The driver's working directory. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The command line (re-used by reload). */
  argv: readonly string[];
  /** Set when this image is the new one of a reload: the snapshot of the old one. */
  stateFd: number | null;
}
