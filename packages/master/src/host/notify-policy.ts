/**
 * sd_notify, decided from the groups' state after every batch of events: READY once
 * every wanted worker of every group's current generation is up (MAINPID with it),
 * RELOADING when an upgrade starts and READY when it ends, STOPPING, STATUS when the
 * text changes. With one group the text is the master's: "2/2 workers up, generation 0".
 */
import type { CoreSnapshot, CoreSummary } from '@einhyrningsins/core';
import type { Notifier } from '../systemd.js';

/**
 * A group as sd_notify sees it: its engine's counts (Supervisor.summary, O(1): this runs
 * after every batch of events, and a snapshot of 1,000 workers each time made a burst O(n^2)).
 */
export interface NotifyGroup {
  name: string;
  summary: CoreSummary;
}

/** The counts of a snapshot (a group already gone: its last one). */
export function summaryOf(snap: CoreSnapshot): CoreSummary {
  return {
    generation: snap.generation,
    wanted: snap.config.number,
    up: snap.workers.filter((w) => w.generation === snap.generation && w.state === 'up').length,
    upgrading: snap.upgrade !== null,
    lastUpgrade: snap.lastUpgrade,
    shuttingDown: snap.shuttingDown,
  };
}

function groupStatus(s: CoreSummary): { up: number; wanted: number; text: string } {
  const { up, wanted } = s;
  let text = `${up}/${wanted} workers up, generation ${s.generation}`;
  if (s.upgrading) text += ', upgrading';
  else if (s.lastUpgrade && !s.lastUpgrade.ok) text += `, last upgrade failed: ${s.lastUpgrade.message}`;
  return { up, wanted, text };
}

export class NotifyPolicy {
  private readySent = false;
  private reloadingSent = false;
  private stoppingSent = false;

  constructor(private readonly notifier: Notifier) {}

  get enabled(): boolean {
    return this.notifier.enabled;
  }

  /** A reload failed in the old image: READY is owed again. */
  resetReady(): void {
    this.readySent = false;
  }

  update(groups: readonly NotifyGroup[], stopping: boolean): void {
    const n = this.notifier;
    if (!n.enabled) return;
    if (stopping) {
      if (!this.stoppingSent) n.stopping();
      this.stoppingSent = true;
      return;
    }
    const each = groups.map((g) => ({ name: g.name, ...groupStatus(g.summary) }));
    const allUp = each.every((g) => g.up >= g.wanted);
    const upgrading = groups.some((g) => g.summary.upgrading);
    const status = each.length === 1 && each[0]?.name === '' ? each[0].text : each.map((g) => `${g.name}: ${g.text}`).join('; ');
    if (!this.readySent) {
      if (allUp) {
        this.readySent = true;
        n.ready(status);
      } else n.status(status);
      return;
    }
    if (upgrading && !this.reloadingSent) {
      this.reloadingSent = true;
      n.reloading(status);
    } else if (!upgrading && this.reloadingSent) {
      this.reloadingSent = false;
      n.ready(status);
    } else n.status(status);
  }
}
