/** The engine's defaults and limits, and what it tells an operator about ACKs. */
import type { CoreConfig } from './types.js';

export const DEFAULT_CONFIG: Readonly<CoreConfig> = Object.freeze<CoreConfig>({
  number: 1,
  ackMode: { kind: 'timer', ms: 1000 },
  retries: Infinity,
  upgradeRetries: 3,
  respawnDelayMs: 1000,
  backoffCapMs: 30_000,
  stableAfterMs: 10_000,
  minReadyMs: 0,
  signalTimeoutMs: 30_000,
  drainSignal: 'SIGUSR2',
  maxUnacked: Infinity,
  maxUpgradeAdditional: Infinity,
  slots: 'unique',
  respawn: true,
});

/** At most this many workers per group (einhorn's limit). */
export const MAX_WORKERS = 10_000;

/**
 * What to do about a missed manual-mode ACK deadline: said once (with the first one),
 * so that a worker that does not know the protocol learns it from the log.
 */
export function ackHelp(secs: number): string {
  return (
    `In manual ACK mode (-m manual) each worker must say it is ready within ${secs}s (--ack-timeout): ` +
    'connect to the UNIX socket named in its EINHORN_SOCK_PATH and send the line ' +
    '{"command":"worker:ack","pid":<its pid>} followed by a newline; ' +
    "in Node, the worker library does it: import { ack } from 'einhyrningsins/worker'; await ack(). " +
    'Or let the master count a worker up once it has lived SECONDS, with timer mode: -m SECONDS. ' +
    '(This is said once; later misses log one line each.)'
  );
}
