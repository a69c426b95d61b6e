/** What `status` shows of a slot's past: its restarts and how its last worker ended. */
export interface SlotRecord {
  /** Workers of this slot that exited without being asked to (crashes, failed starts). */
  restarts: number;
  /** How the last worker of this slot ended: `exit 0`, `exit 1`, `SIGKILL`; null: none has yet. */
  lastExit: string | null;
}

export function exitText(code: number | null, signal: string | null): string {
  return signal ? signal : `exit ${code ?? '?'}`;
}

/** Per-slot history, kept by the shell (the core forgets a worker when it exits). */
export class SlotHistory {
  private readonly slots = new Map<number, SlotRecord>();

  /** A worker of `slot` ended; `asked`: it had been told to stop (upgrade, dec, shutdown). */
  exited(slot: number, code: number | null, signal: string | null, asked: boolean): void {
    const r = this.slots.get(slot) ?? { restarts: 0, lastExit: null };
    r.lastExit = exitText(code, signal);
    if (!asked) r.restarts += 1;
    this.slots.set(slot, r);
  }

  /** A worker that could not even be started (program gone) counts as a restart of its slot. */
  spawnFailed(slot: number, error: string): void {
    const r = this.slots.get(slot) ?? { restarts: 0, lastExit: null };
    r.restarts += 1;
    r.lastExit = `not started: ${error}`;
    this.slots.set(slot, r);
  }

  get(slot: number): SlotRecord {
    return this.slots.get(slot) ?? { restarts: 0, lastExit: null };
  }

  toJSON(): Record<string, SlotRecord> {
    return Object.fromEntries([...this.slots].map(([k, v]) => [String(k), { ...v }]));
  }

  static from(data: Record<string, SlotRecord> | undefined): SlotHistory {
    const h = new SlotHistory();
    for (const [k, v] of Object.entries(data ?? {})) h.slots.set(Number(k), { restarts: v.restarts, lastExit: v.lastExit });
    return h;
  }
}
