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
    w.state = 'up';
    w.ackedAt = this.now;
    this.clearTimers(w, ['ack', 'deadline']);
    if (this.cfg.minReadyMs > 0) this.effect({ type: 'setTimer', key: `ready:${w.id}`, ms: this.cfg.minReadyMs });
    else w.ready = true;
    if (this.streak > 0) {
      this.lastProbeAckAt = this.now;
      this.effect({ type: 'setTimer', key: `stable:${w.id}`, ms: this.cfg.stableAfterMs });
    }
    const upCount = this.count((x) => x.generation === this.generation && x.state === 'up');
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

    const ready = (w: Worker) => w.state === 'up' && w.ready;
    // 1. An upgrade is done once the new generation alone can carry the load (up for minReadyMs).
    if (this.upgrade && this.count((w) => isCur(w) && ready(w)) >= target) {
      this.finishUpgrade(true, `Upgraded successfully to generation ${gen}.`);
    }

    // 2. Retire what is too much: a slot no longer wanted first.
    const wantedSlots = this.cfg.wantedSlots;
    if (wantedSlots) {
      const unwanted = this.list((w) => live(w) && !wantedSlots.includes(w.slot));
      for (const w of unwanted) this.retire(w, 'its slot is no longer wanted', this.cfg.drainSignal);
      if (unwanted.length) this.progress(`Sending ${this.cfg.drainSignal} to [${unwanted.map((w) => w.pid).filter((p) => p !== null).join(', ')}] (slots no longer wanted)`);
    }
    // supervisord's restart: every old worker stopped before a new one starts.
    const stopFirst = this.upgrade !== null && this.cfg.stopFirst === true;
    if (stopFirst) {
      const old = this.list((w) => !isCur(w) && live(w));
      for (const w of old) this.retire(w, 'restart: stopped before the new ones start', this.cfg.drainSignal);
      if (old.length) this.progress(`Restart: stopping ${old.length} old worker${old.length === 1 ? '' : 's'} first: [${old.map((w) => w.pid).filter((p) => p !== null).join(', ')}]`);
    }
    if (this.upgrade) {
      const cur = this.list((w) => isCur(w) && live(w));
      if (cur.length > target) this.retireSome(cur, cur.length - target, 'too many workers');
      if (this.upgrade.mode === 'smooth') {
        const old = this.list((w) => !isCur(w) && live(w));
        const curUp = this.count((w) => isCur(w) && ready(w));
        const excess = old.length + curUp - target;
        if (excess > 0) {
          this.progress(`Smooth upgrade: killing off ${Math.min(excess, old.length)} old workers.`);
          this.retireSome(old, excess, 'replaced by a new generation');
        }
      }
    } else {
      const all = this.list(live);
      if (all.length > target) this.retireSome(all, all.length - target, 'too many workers');
    }

    // 3. Start what is missing (after a stop-first restart's old workers are all gone).
    if (this.gaveUp) return;
    if (stopFirst && this.count((w) => !isCur(w)) > 0) return;
    const curLive = this.count((w) => isCur(w) && live(w));
    const missing = this.upgrade ? target - curLive : target - this.count(live);
    if (missing <= 0) return;
    const starting = this.count((w) => isCur(w) && w.state === 'starting');
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
    for (let i = 0; i < n; i++) this.spawn();
  }

  protected spawn(): void {
    const used = new Set<number>();
    const named = this.cfg.slots === 'named';
    for (const w of this.workers.values()) {
      if (!named || (w.generation === this.generation && (w.state === 'starting' || w.state === 'up'))) used.add(w.slot);
    }
    let slot = 0;
    const wanted = this.cfg.wantedSlots?.find((s) => !used.has(s));
    if (wanted !== undefined) slot = wanted;
    else while (used.has(slot)) slot += 1;
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
    this.workers.set(w.id, w);
    this.effect({ type: 'spawn', id: w.id, slot, generation: w.generation });
  }

  /** Retire `n` of `pool`: unacked before acked, then older generations, then the youngest. */
  protected retireSome(pool: Worker[], n: number, reason: string): void {
    let order: Worker[];
    if (this.cfg.slots === 'named') {
      // Older generations first; among them the ones whose name a new up worker
      // already has; then the highest numbers (Heroku scales down from the top).
      const taken = new Set(this.list((w) => w.generation === this.generation && w.state === 'up').map((w) => w.slot));
      const replaced = (w: Worker) => Number(w.generation !== this.generation && taken.has(w.slot));
      order = [...pool].sort((a, b) => a.generation - b.generation || replaced(b) - replaced(a) || b.slot - a.slot || a.id - b.id);
    } else {
      order = [...pool].sort(
        (a, b) =>
          Number(a.state === 'up') - Number(b.state === 'up') ||
          a.generation - b.generation ||
          (a.state === 'up' && b.state === 'up' ? a.spawnedAt - b.spawnedAt : b.spawnedAt - a.spawnedAt) ||
          a.id - b.id,
      );
    }
    const victims = order.slice(0, Math.max(0, n));
    for (const w of victims) this.retire(w, reason, this.cfg.drainSignal);
    const pids = victims.map((w) => w.pid).filter((p) => p !== null);
    if (pids.length) this.progress(`Sending ${this.cfg.drainSignal} to [${pids.join(', ')}]`);
  }

  protected retire(w: Worker, reason: string, signal: string): void {
    w.state = 'stopping';
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
