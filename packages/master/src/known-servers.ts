/**
 * Servers known to read einhorn's stop signal (USR2) as something else: one
 * start-time warning names the --stop-signal each needs. Each entry was
 * checked against the server's own signal handling (its source or manual,
 * Debian 12's packages) and by running it under the master.
 */
import { basename } from 'node:path';

interface KnownServer {
  /** Its graceful stop: finish the requests in flight, close the listener, exit. */
  stop: string;
  /** What the other signals a user may pick mean to it. */
  means: Readonly<Record<string, string>>;
}

/** "dies at once" is Python's (and the kernel's) default action: nothing drains. */
const KILLED = 'kills it at once (it has no handler)';

const KNOWN: Readonly<Record<string, KnownServer>> = {
  gunicorn: {
    stop: 'SIGTERM',
    means: { SIGUSR2: 're-executes its master (a binary upgrade)', SIGQUIT: 'is its quick shutdown', SIGINT: 'is its quick shutdown', SIGHUP: 'reloads its workers' },
  },
  uvicorn: { stop: 'SIGTERM', means: { SIGUSR2: KILLED, SIGUSR1: KILLED, SIGQUIT: KILLED, SIGHUP: KILLED } },
  hypercorn: { stop: 'SIGTERM', means: { SIGUSR2: KILLED, SIGUSR1: KILLED, SIGQUIT: KILLED, SIGHUP: KILLED } },
  puma: { stop: 'SIGTERM', means: { SIGUSR2: 'restarts it (re-executes itself)', SIGUSR1: 'is its phased restart', SIGHUP: 'reopens its log (or stops it at once without one)' } },
  unicorn: {
    stop: 'SIGQUIT',
    means: { SIGUSR2: 're-executes its master (a binary upgrade)', SIGTERM: 'is its quick shutdown (requests in flight are cut)', SIGINT: 'is its quick shutdown', SIGHUP: 'reloads its configuration' },
  },
  nginx: {
    stop: 'SIGQUIT',
    means: { SIGUSR2: 'starts a new binary beside the old one (an upgrade)', SIGTERM: 'is its fast shutdown (requests in flight are cut)', SIGINT: 'is its fast shutdown', SIGHUP: 'reloads its configuration' },
  },
};

/** The server a command line runs: the program's name, or X of `python3 -m X` and `bundle exec X`. */
export function serverName(program: string | null, args: readonly string[]): string | null {
  if (program === null) return null;
  const base = basename(program);
  if (/^python[0-9.]*$/.test(base)) {
    const m = args.indexOf('-m');
    return m >= 0 && args[m + 1] !== undefined ? (args[m + 1] as string).split('.')[0] as string : null;
  }
  if (base === 'bundle' && args[0] === 'exec') {
    const word = args.slice(1).find((a) => !a.startsWith('-'));
    return word === undefined ? null : basename(word);
  }
  return base;
}

/** One warning when the program is a known server and the stop signal is not its graceful stop; else null. */
export function stopSignalWarning(program: string | null, args: readonly string[], stopSignal: string): string | null {
  const name = serverName(program, args);
  if (name === null || !Object.hasOwn(KNOWN, name)) return null;
  const server = KNOWN[name] as KnownServer;
  if (server.stop === stopSignal) return null;
  const what = server.means[stopSignal] ?? 'is not its graceful stop';
  return (
    `${name}: the stop signal ${stopSignal} ${what}, so every upgrade and stop would wait --signal-timeout and SIGKILL it; ` +
    `start it with --stop-signal ${server.stop.slice(3)} (its graceful stop)`
  );
}
