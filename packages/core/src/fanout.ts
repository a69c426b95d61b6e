/**
 * One request fanned out over several groups, answered once: each group gets its own
 * reply token, its progress is passed on (`[name] message`), and when every group has
 * given its final reply, one final reply is made from all of them. A fan-out to the one
 * unnamed group (the master's) passes every reply through unchanged, so einhorn's
 * replies stay byte-for-byte what the single-group engine says.
 */
import type { ReplyTo } from './types.js';

/** How a fan-out's final reply is made from the groups' final replies. */
export type Finish = 'lines' | 'upgrade';

export interface GroupResult {
  group: string;
  ok: boolean;
  message: string;
  /** The last progress message before the final one. */
  detail: string | null;
}

export interface FanReply {
  to: ReplyTo;
  message: string;
  wait: boolean;
  ok: boolean;
}

interface Fan {
  to: ReplyTo;
  total: number;
  results: GroupResult[];
  finish: Finish;
  /** One unnamed group: replies pass through unchanged. */
  through: boolean;
}

interface Sub {
  fan: Fan;
  group: string;
  last: string | null;
}

/** `[web] Upgrade done\n[worker] Upgrade done` */
export function resultLines(results: readonly GroupResult[]): string {
  return results.map((r) => `[${r.group}] ${r.message}`).join('\n');
}

/** The final reply of a fan-out (the dyno driver's wording, kept). */
export function finalReply(finish: Finish, results: readonly GroupResult[]): { message: string; ok: boolean } {
  const ok = results.every((r) => r.ok);
  if (finish === 'lines') return { message: resultLines(results), ok };
  if (ok) return { message: 'Upgrade done', ok };
  const why = results.filter((r) => !r.ok).map((r) => `[${r.group}] ${r.detail ?? r.message}`);
  return { message: `Upgrade failed: ${why.join('; ')}`, ok };
}

/**
 * The table of sub-routes. Tokens it hands to groups are its own (they never
 * collide with the host's: the host only ever sees the top-level token).
 */
export class FanOuts {
  private readonly subs = new Map<number, Sub>();
  private next = 1;

  /** Sub-tokens for `groups`, all answering to `to`. */
  open(to: ReplyTo, groups: readonly string[], finish: Finish): number[] {
    const fan: Fan = { to, total: groups.length, results: [], finish, through: groups.length === 1 && groups[0] === '' };
    return groups.map((group) => {
      const id = this.next++;
      this.subs.set(id, { fan, group, last: null });
      return id;
    });
  }

  /** A group's reply on a sub-token: what to say on the top-level route, if anything. */
  reply(sub: number, message: string, wait: boolean, ok: boolean): FanReply | null {
    const s = this.subs.get(sub);
    if (!s) return null;
    const fan = s.fan;
    if (wait) {
      s.last = message;
      return { to: fan.to, message: fan.through ? message : `[${s.group}] ${message}`, wait: true, ok };
    }
    this.subs.delete(sub);
    if (fan.through) return { to: fan.to, message, wait: false, ok };
    fan.results.push({ group: s.group, ok, message, detail: s.last });
    if (fan.results.length < fan.total) return null;
    return { to: fan.to, wait: false, ...finalReply(fan.finish, fan.results) };
  }

  /** How many sub-routes are waiting (tests; a leak shows here). */
  get size(): number {
    return this.subs.size;
  }
}
