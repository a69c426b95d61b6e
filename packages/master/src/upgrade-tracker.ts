/**
 * Upgrades a program asks for itself (a watched path changed, a fetched release was
 * installed), with their outcome: the same upgrade event a control client sends, and a
 * promise settled when the core records how that generation (or a later one merged into
 * it) ended, from the group's state after each batch of events.
 */
import type { CoreSnapshot, Event } from '@einhyrningsins/core';

/** One group as the release triggers see it: the master's, or later one program's of a config file. */
export interface GroupHandle {
  feed(event: Event): void;
  snapshot(): CoreSnapshot;
}

export interface UpgradeOutcome {
  ok: boolean;
  message: string;
}

export class UpgradeTracker {
  private waiting: Array<{ generation: number; settle: (o: UpgradeOutcome) => void }> = [];

  constructor(private readonly group: GroupHandle) {}

  /** Start a smooth upgrade (or merge into the running one); resolves with its outcome. */
  request(): Promise<UpgradeOutcome> {
    this.group.feed({ type: 'upgrade', mode: 'smooth' });
    const snap = this.group.snapshot();
    if (snap.upgrade === null) {
      // Refused (the master is stopping) or already over.
      const last = snap.lastUpgrade;
      if (last && last.generation === snap.generation) return Promise.resolve({ ok: last.ok, message: last.message });
      return Promise.resolve({ ok: false, message: snap.shuttingDown ? 'the master is shutting down' : 'the upgrade did not start' });
    }
    const generation = snap.upgrade.generation;
    return new Promise((settle) => this.waiting.push({ generation, settle }));
  }

  /** Call after every batch of events of the group. */
  changed(): void {
    if (this.waiting.length === 0) return;
    const last = this.group.snapshot().lastUpgrade;
    if (!last) return;
    const done = this.waiting.filter((w) => last.generation >= w.generation);
    if (done.length === 0) return;
    this.waiting = this.waiting.filter((w) => last.generation < w.generation);
    for (const w of done) w.settle({ ok: last.ok, message: last.message });
  }
}
