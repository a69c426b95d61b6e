/** The hand-off protocols' names and --handoff's parser (kept apart: the option parser loads nothing heavy). */

export const HANDOFF_NAMES = ['einhorn', 'systemd', 'server-starter', 'port'] as const;
export type HandoffName = (typeof HANDOFF_NAMES)[number];

/** Bad --handoff input (a usage error: exit 2). */
export class HandoffError extends Error {
  override name = 'HandoffError';
}

/** --handoff values (each a name or a comma-separated list) to the set of protocols, in a fixed order. */
export function parseHandoffs(values: readonly string[]): HandoffName[] {
  const wanted = new Set<HandoffName>(['einhorn']);
  for (const value of values) {
    for (const raw of value.split(',')) {
      const word = raw.trim();
      if (!(HANDOFF_NAMES as readonly string[]).includes(word)) {
        throw new HandoffError(`--handoff: unknown hand-off '${raw}' (known: ${HANDOFF_NAMES.join(', ')})`);
      }
      wanted.add(word as HandoffName);
    }
  }
  return HANDOFF_NAMES.filter((n) => wanted.has(n));
}
