import { constants } from 'node:os';

/**
 * A signal name as users write it (`USR2`, `SIGUSR2`, `usr2`) in Node's
 * form (`SIGUSR2`), or null when there is no such signal. Numbers are not
 * accepted, as in einhorn.
 */
export function normalizeSignal(name: string): string | null {
  const upper = name.trim().toUpperCase();
  if (!/^[A-Z0-9]+$/.test(upper)) return null;
  const full = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return full in constants.signals ? full : null;
}
