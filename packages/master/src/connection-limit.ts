/**
 * How many control connections the control server keeps, and which it closes to make room.
 *
 * Past MAX_CONNECTIONS the ones idle longest are closed (a client that holds connections
 * open and silent must not lock out workers' ACKs and operators), but only once they have
 * been idle for EVICT_MIN_IDLE_MS: a connection just accepted has not been read yet, and
 * 1,000 workers ACKing at once bring 1,000 of them in one burst. Closing those unread (as
 * "idle") lost the ACKs and killed the workers writing them with SIGPIPE. So a burst is
 * served over the limit, up to HARD_MAX_CONNECTIONS, and trimmed back once its idle ones
 * have had their chance.
 */

/** Most control connections kept open once the idle ones have had EVICT_MIN_IDLE_MS. */
export const MAX_CONNECTIONS = 512;
/** Most open at any moment (a burst); past it a new one is refused when none can be closed. */
export const HARD_MAX_CONNECTIONS = 4096;
/** A connection idle for less than this is never closed to make room. */
export const EVICT_MIN_IDLE_MS = 1000;

export interface Evictable {
  /** Owes nothing and is owed nothing (see ControlConnection.idle). */
  readonly idle: boolean;
  /** Monotonic ms of its last activity (its accept, at first). */
  readonly lastActive: number;
}

export interface Trim<T> {
  /** To close now, idlest first. */
  evict: T[];
  /** Still over the limit afterwards: look again in this many ms (null: not over). */
  againInMs: number | null;
}

/**
 * Which connections to close so that at most `max` stay: the idle ones idle at least
 * EVICT_MIN_IDLE_MS, idlest first; and when that is not enough, when to look again
 * (when the next idle one reaches EVICT_MIN_IDLE_MS; at least 50 ms from now).
 */
export function trim<T extends Evictable>(conns: Iterable<T>, size: number, now: number, max = MAX_CONNECTIONS): Trim<T> {
  if (size <= max) return { evict: [], againInMs: null };
  const ripe: T[] = [];
  let nextRipe = Infinity;
  for (const c of conns) {
    if (!c.idle) continue;
    if (now - c.lastActive >= EVICT_MIN_IDLE_MS) ripe.push(c);
    else nextRipe = Math.min(nextRipe, c.lastActive + EVICT_MIN_IDLE_MS);
  }
  ripe.sort((a, b) => a.lastActive - b.lastActive);
  const evict = ripe.slice(0, size - max);
  if (size - evict.length <= max) return { evict, againInMs: null };
  // Not enough ripe: when the next one ripens, or (all busy) in a second.
  const at = Number.isFinite(nextRipe) ? nextRipe - now : EVICT_MIN_IDLE_MS;
  return { evict, againInMs: Math.max(50, at) };
}
