/** How the dyno driver was started (its command line, resolved). */
import type { AppSource } from './app-source.js';

export interface DriverConfig {
  source: AppSource;
  /** Process types to run; empty: all. */
  types: readonly string[];
  stateDir: string;
  /** -b as written; null: 0.0.0.0:$PORT when PORT is set. */
  bind: string | null;
  socketPath: string;
  /** --http ADDR:PORT (with --http-token-file): the HTTP API on TCP too. */
  http: { host: string; port: number; text: string } | null;
  httpTokenFile: string | null;
  ackMode: { kind: 'manual' } | { kind: 'timer'; seconds: number };
  ackTimeoutSec: number;
  signalTimeoutSec: number;
  killChildrenOnExit: boolean;
  /** Asks a process (its whole process group) to stop: SIGTERM, as Heroku. */
  stopSignal: string;
  /** hsup's --oneshot: processes are not restarted; the driver exits when all have, with the highest status. */
  oneshot: boolean;
  /** hsup's --start-number: the first dyno number (web.1). */
  startNumber: number;
  /** hsup's `start TYPE=N` with a control dir: these quantities instead of the release's. */
  quantities: ReadonlyMap<string, number>;
  verbosity: number;
  /** The driver's working directory. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The command line (re-used by reload). */
  argv: readonly string[];
  /** Set when this image is the new one of a reload: the snapshot of the old one. */
  stateFd: number | null;
}
