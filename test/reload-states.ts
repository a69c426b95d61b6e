/** Parts of reload snapshots as an image of ours writes them, for the tests that feed `--with-state-fd` by hand. */

/** One engine (a SerializedCore) with no worker yet; `cfg` adds to or overrides its configuration. */
export function serializedCore(cfg: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 1,
    cfg: { number: 1, ackMode: { kind: 'timer', ms: 1000 }, retries: -1, maxUnacked: -1, maxUpgradeAdditional: -1, ...cfg },
    workers: [],
    nextId: 1,
    generation: 0,
    streak: 0,
    lastFailureAge: 0,
    gaveUp: false,
    shuttingDown: null,
    started: true,
    upgrade: null,
    lastUpgrade: null,
    respawnAge: null,
  };
}
