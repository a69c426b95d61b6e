/**
 * The decision pass (`reconcile`, run after every event) and the state changes it and
 * the event handlers share: a worker up, retired, a failed start, an upgrade's end.
 */
import { backoffDelay } from './backoff.js';
import { CoreState, type Worker } from './core-state.js';

export abstract class Decisions extends CoreState {
  /**
   * An ack is a promise, not yet a success: the streak of failed starts ends only when
   * this worker has lived stableAfterMs after it (an exit sooner is one more failed start),
   * and an upgrade counts it once it has been up for minReadyMs.
   */
  protected markUp(w: Worker, how: 'manual' | 'timer'): void {
    this.setState(w, 'up');
    w.ackedAt = this.now;
    this.clearTimers(w, ['ack', 'deadline']);
    if (this.cfg.minReadyMs > 0) this.effect({ type: 'setTimer', key: `ready:${w.id}`, ms: this.cfg.minReadyMs });
    else this.setReady(w);
    if (this.streak > 0) {
      this.lastProbeAckAt = this.now;
      this.effect({ type: 'setTimer', key: `stable:${w.id}`, ms: this.cfg.stableAfterMs });
    }
    const upCount = this.counted(this.generation).up;
    let msg = `Up to ${upCount} / ${this.cfg.number} ${how} ACKs`;
    if (this.streak > 0) msg += ` (after ${this.streak} failed start${this.streak === 1 ? '' : 's'}: on probation for ${this.cfg.stableAfterMs / 1000}s)`;
    this.progress(msg, w);
  }

  /** A worker acked after the last failed start has lived stableAfterMs: the streak is over. */
  protected onStable(w: Worker): void {
    if (w.state !== 'up' || w.ackedAt === null || this.streak === 0 || this.lastFailureAt > w.ackedAt) return;
    this.log('info', `Worker ${w.pid} is stable, breaking the streak of ${this.streak} failed starts`, w);
    this.streak = 0;
    this.gaveUp = false;
    this.respawnAt = null;
  }


  // ---- the decision pass ----------------------------------------------------

  protected reconcile(): void {
    if (this.shuttingDown) {
      if (this.workers.size === 0 && !this.exitSent) {
        this.exitSent = true;
        this.log('info', 'All workers are gone; exiting');
        this.effect({ type: 'exit', code: 0 });
      }
      return;
    }
    if (!this.started) return;
    const target = this.cfg.number;
    const gen = this.generation;
    const isCur = (w: Worker) => w.generation === gen;
    const live = (w: Worker) => w.state === 'starting' || w.state === 'up';
    // This runs after every event, and 1,000 workers make thousands of events: every count
    // is kept as workers change (core-state.ts), and a list is built only to act on it.
    const cur = () => this.counted(gen);
    const oldLive = () => this.liveCount - cur().starting - cur().up;
    // 1. An upgrade is done once the new generation alone can carry the load (up for minReadyMs)
    // and, when the handover is paced, every old worker has been asked to drain.
    const oldLeft = () => (this.cfg.handover && this.upgrade?.mode === 'smooth' ? oldLive() : 0);
    const upgraded = () => this.upgrade && cur().ready >= target && oldLeft() === 0;
    if (upgraded()) this.finishUpgrade(true, `Upgraded successfully to generation ${gen}.`);

    // 2. Retire what is too much: a slot no longer wanted first (looked for only when the
    // wanted slots changed or a worker took another).
    const wantedSlots = this.cfg.wantedSlots;
    if (wantedSlots && this.slotsDirty) {
      this.slotsDirty = false;
      const wanted = new Set(wantedSlots);
      const unwanted = this.list((w) => live(w) && !wanted.has(w.slot));
      for (const w of unwanted) this.retire(w, 'its slot is no longer wanted', this.cfg.drainSignal);
      if (unwanted.length) this.progress(`Sending ${this.cfg.drainSignal} to [${unwanted.map((w) => w.pid).filter((p) => p !== null).join(', ')}] (slots no longer wanted)`);
    }
    // supervisord's restart: every old worker stopped before a new one starts.
    const stopFirst = this.upgrade !== null && this.cfg.stopFirst === true;
    if (stopFirst && oldLive() > 0) {
      const old = this.list((w) => !isCur(w) && live(w));
      for (const w of old) this.retire(w, 'restart: stopped before the new ones start', this.cfg.drainSignal);
      if (old.length) this.progress(`Restart: stopping ${old.length} old worker${old.length === 1 ? '' : 's'} first: [${old.map((w) => w.pid).filter((p) => p !== null).join(', ')}]`);
    }
    if (this.upgrade) {
      const curLive = cur().starting + cur().up;
      if (curLive > target) this.retireSome(this.list((w) => isCur(w) && live(w)), curLive - target, 'too many workers');
      if (this.upgrade.mode === 'smooth') {
        const old = oldLive();
        const excess = this.paceHandover(old + cur().ready - target, () => cur().starting > 0);
        if (excess > 0 && old > 0) {
          this.progress(`Smooth upgrade: killing off ${Math.min(excess, old)} old workers.`);
          this.retireOld(excess, 'replaced by a new generation');
          if (upgraded()) this.finishUpgrade(true, `Upgraded successfully to generation ${gen}.`);
        }
      }
    } else if (this.liveCount > target) {
      this.retireSome(this.list(live), this.liveCount - target, 'too many workers');
    }

    // 3. Start what is missing (after a stop-first restart's old workers are all gone).
    if (this.gaveUp) return;
    if (stopFirst && this.workers.size - cur().all > 0) return;
    const starting = cur().starting;
    const missing = this.upgrade ? target - (cur().starting + cur().up) : target - this.liveCount;
    if (missing <= 0) return;
    let n = Math.min(missing, this.cfg.maxUnacked - starting);
    if (this.upgrade) {
      n = Math.min(n, target + this.cfg.maxUpgradeAdditional - this.workers.size);
    }
    if (this.streak > 0) {
      // Failing: probe with one worker at a time, each the backoff delay after the last
      // failure and after the previous probe's ack (which may yet turn out to be a failure).
      if (starting > 0) return;
      const at =
        Math.max(this.lastFailureAt, this.lastProbeAckAt) + backoffDelay(this.streak, this.cfg.respawnDelayMs, this.cfg.backoffCapMs);
      if (this.now < at) {
        if (this.respawnAt !== at) {
          this.respawnAt = at;
          this.effect({ type: 'setTimer', key: 'respawn', ms: at - this.now });
        }
        return;
      }
      n = Math.min(n, 1);
    }
    if (n <= 0) return;
    // Named slots: the current generation's live ones, once for the whole burst. Unique
    // slots: every record's, kept as they come and go (slotUse).
    const used = this.cfg.slots === 'named' ? this.namedSlotsInUse() : null;
    for (let i = 0; i < n; i++) this.spawn(used);
  }

  /**
   * How many of `excess` old workers to ask to drain now, under the `handover` pacing:
   * none while a new worker boots (afterBoot), at most one per gapMs (a `handover` timer
   * for the next one).
   */
  private paceHandover(excess: number, booting: () => boolean): number {
    const h = this.cfg.handover;
    if (excess <= 0 || !h) return excess;
    if (h.afterBoot && booting()) return 0;
    if (h.gapMs <= 0) return excess;
    const at = this.lastHandoverAt + h.gapMs;
    if (this.now < at) {
      if (this.handoverAt !== at) {
        this.handoverAt = at;
        this.effect({ type: 'setTimer', key: 'handover', ms: at - this.now });
      }
      return 0;
    }
    this.lastHandoverAt = this.now;
    return 1;
  }

  /** With named slots, the slots a new worker may not take: the current generation's live ones. */
  private namedSlotsInUse(): Set<number> {
    const used = new Set<number>();
    this.visited += this.workers.size;
    for (const w of this.workers.values()) {
      if (w.generation === this.generation && (w.state === 'starting' || w.state === 'up')) used.add(w.slot);
    }
    return used;
  }

  /**
   * A new worker in the lowest slot not in use: with named slots not in `used` (which then
   * holds it too), with unique slots held by no record (slotUse; the search starts at
   * lowestFree, below which every slot is held, so a burst of n costs O(n), not O(n^2)).
   */
  protected spawn(used: Set<number> | null): void {
    const taken = (s: number) => (used ? used.has(s) : this.slotUse.has(s));
    let slot: number;
    const wanted = this.cfg.wantedSlots?.find((s) => !taken(s));
    if (wanted !== undefined) slot = wanted;
    else if (used) {
      slot = 0;
      while (used.has(slot)) slot += 1;
    } else {
      slot = this.lowestFree;
      while (this.slotUse.has(slot)) slot += 1;
      this.lowestFree = slot + 1;
    }
    used?.add(slot);
    const w: Worker = {
      id: this.nextId++,
      pid: null,
      slot,
      generation: this.generation,
      state: 'starting',
      spawnedAt: this.now,
      ackedAt: null,
      ready: false,
      signaledAt: null,
      signals: [],
      stopReason: null,
      counted: false,
      pingedAt: null,
      pingRequestId: null,
    };
    this.addWorker(w);
    this.effect({ type: 'spawn', id: w.id, slot, generation: w.generation });
  }

  /**
   * The old generations' live workers in the order they are retired (unique slots; see
   * retireSome), sorted once per upgrade and taken from the front: a smooth upgrade retires
   * one or a few per new worker up, and listing and ordering 1,000 old workers each time
   * cost O(n) per event. Rebuilt when the generation changes, or when an old worker's
   * place in the order moves (it ACKs).
   */
  private oldQueue: { generation: number; workers: Worker[]; head: number } | null = null;

  /** Retire `n` of the old generations' live workers (the order of retireSome). */
  private retireOld(n: number, reason: string): void {
    const gen = this.generation;
    const live = (w: Worker) => w.generation !== gen && (w.state === 'starting' || w.state === 'up') && this.workers.get(w.id) === w;
    if (this.cfg.slots === 'named') return this.retireSome(this.list(live), n, reason);
    let q = this.oldQueue;
    if (!q || q.generation !== gen) {
      q = { generation: gen, workers: this.list(live).sort(uniqueOrder), head: 0 };
      this.oldQueue = q;
    }
    const victims: Worker[] = [];
    while (victims.length < n && q.head < q.workers.length) {
      const w = q.workers[q.head++] as Worker;
      this.visited += 1;
      if (live(w)) victims.push(w);
    }
    if (q.head >= q.workers.length) this.oldQueue = null;
    this.retireThese(victims, reason);
  }

  protected override stateChanged(w: Worker, was: Worker['state']): void {
    // An old worker that ACKs moves from the front of the order (unacked first) to its place among the up ones.
    if (this.oldQueue && was === 'starting' && w.state === 'up' && w.generation !== this.generation) this.oldQueue = null;
  }

  /** Retire `n` of `pool`: unacked before acked, then older generations, then the youngest. */
  protected retireSome(pool: Worker[], n: number, reason: string): void {
    this.visited += pool.length;
    let order: Worker[];
    if (this.cfg.slots === 'named') {
      // Older generations first; among them the ones whose name a new up worker
      // already has; then the highest numbers (Heroku scales down from the top).
      const taken = new Set(this.list((w) => w.generation === this.generation && w.state === 'up').map((w) => w.slot));
      const replaced = (w: Worker) => Number(w.generation !== this.generation && taken.has(w.slot));
      order = firstN(pool, n, (a, b) => a.generation - b.generation || replaced(b) - replaced(a) || b.slot - a.slot || a.id - b.id);
    } else {
      order = firstN(pool, n, uniqueOrder);
    }
    this.retireThese(order, reason);
  }

  private retireThese(victims: readonly Worker[], reason: string): void {
    for (const w of victims) this.retire(w, reason, this.cfg.drainSignal);
    const pids = victims.map((w) => w.pid).filter((p) => p !== null);
    if (pids.length) this.progress(`Sending ${this.cfg.drainSignal} to [${pids.join(', ')}]`);
  }

  protected retire(w: Worker, reason: string, signal: string): void {
    this.setState(w, 'stopping');
    w.stopReason = reason;
    w.signals.push(signal);
    w.signaledAt = this.now;
    this.clearTimers(w, ['ack', 'deadline', 'ready', 'stable']);
    if (w.pid !== null) this.effect({ type: 'kill', pid: w.pid, signal });
    if (this.cfg.signalTimeoutMs !== null) {
      this.effect({ type: 'setTimer', key: `kill:${w.id}`, ms: this.cfg.signalTimeoutMs });
    }
  }

  protected recordFailure(w: Worker, why: string): void {
    this.streak += 1;
    this.lastFailureAt = this.now;
    const up = this.upgrade;
    if (up && w.generation === up.generation) {
      up.failures += 1;
      if (up.failures > this.cfg.upgradeRetries) {
        this.finishUpgrade(
          false,
          `Upgrade to generation ${up.generation} failed: a new worker ${why}, ${up.failures} failed starts ` +
            `(limit ${this.cfg.upgradeRetries} retries); the previous workers keep serving.`,
        );
        return;
      }
    }
    if (this.streak > this.cfg.retries) {
      this.gaveUp = true;
      this.log(
        'error',
        `Giving up after ${this.streak} consecutive failed starts (last: ${why}). ` +
          `Run upgrade, inc or set_workers to try again.`,
      );
      if (this.upgrade) this.finishUpgrade(false, `Upgrade failed: giving up after ${this.streak} failed starts (last: ${why}).`);
      return;
    }
    const delay = backoffDelay(this.streak, this.cfg.respawnDelayMs, this.cfg.backoffCapMs);
    this.log('info', `${this.streak} consecutive failed start${this.streak === 1 ? '' : 's'}; next attempt in ${delay / 1000}s`);
  }

  protected finishUpgrade(ok: boolean, message: string): void {
    const up = this.upgrade;
    if (!up) return;
    this.upgrade = null;
    this.oldQueue = null; // no old worker's record kept past its upgrade
    this.lastUpgrade = { generation: up.generation, ok, message, finishedAt: this.now };
    this.log(ok ? 'info' : 'error', message);
    for (const to of up.waiters) {
      this.out.push({ type: 'reply', to, message, wait: true, ok });
      this.out.push({ type: 'reply', to, message: ok ? 'Upgrade done' : 'Upgrade failed', wait: false, ok });
    }
    if (!ok) {
      // Stop the new generation's workers that never came up; the acked ones keep serving.
      for (const w of this.workers.values()) {
        if (w.generation === up.generation && w.state === 'starting') this.retire(w, 'upgrade abandoned', this.cfg.drainSignal);
      }
    }
  }

}

/** Unique slots' order of retirement: unacked before acked, then older generations, then the youngest (unacked) or the oldest (up). */
function uniqueOrder(a: Worker, b: Worker): number {
  return (
    Number(a.state === 'up') - Number(b.state === 'up') ||
    a.generation - b.generation ||
    (a.state === 'up' && b.state === 'up' ? a.spawnedAt - b.spawnedAt : b.spawnedAt - a.spawnedAt) ||
    a.id - b.id
  );
}

/**
 * The first `n` of `pool` in the order of `cmp` (a total order: ties end on the id). A
 * smooth upgrade retires one old worker per new one up: a full sort of 1,000 each time cost
 * O(n^2 log n) over an upgrade; a few passes of selection cost O(n) each.
 */
function firstN<T>(pool: readonly T[], n: number, cmp: (a: T, b: T) => number): T[] {
  if (n <= 0) return [];
  if (n > 8 || n >= pool.length) return [...pool].sort(cmp).slice(0, n);
  const left = [...pool];
  const out: T[] = [];
  while (out.length < n) {
    let best = 0;
    for (let i = 1; i < left.length; i++) if (cmp(left[i] as T, left[best] as T) < 0) best = i;
    out.push(left[best] as T);
    left[best] = left[left.length - 1] as T;
    left.pop();
  }
  return out;
}
