/** What each event means to the engine (the decision pass runs after it, see decide.ts). */
import type { Event, ReplyTo, UpgradeMode } from './types.js';
import { MAX_WORKERS, ackHelp } from './config.js';
import { Decisions } from './decide.js';

export abstract class EventHandlers extends Decisions {
  protected dispatch(ev: Event): void {
    switch (ev.type) {
      case 'start':
        if (!this.started) {
          this.started = true;
          this.log('info', `Starting ${this.cfg.number} worker${this.cfg.number === 1 ? '' : 's'}`);
        }
        return;
      case 'spawned':
        return this.onSpawned(ev.id, ev.pid);
      case 'spawnFailed':
        return this.onSpawnFailed(ev.id, ev.error);
      case 'exited':
        return this.onExited(ev.pid, ev.code, ev.signal);
      case 'ack':
        return this.onAck(ev.pid);
      case 'ping': {
        const w = this.byPid.get(ev.pid);
        if (!w) return this.log('warn', `Could not find state for PID ${ev.pid}; ignoring ping.`);
        w.pingedAt = this.now;
        w.pingRequestId = ev.requestId;
        return;
      }
      case 'timer':
        return this.onTimer(ev.key);
      case 'inc':
        return this.setTarget(this.cfg.number + 1, ev.replyTo, 'inc');
      case 'dec':
        if (this.cfg.number <= 0) {
          return this.reply(ev.replyTo, `Can't decrease number of workers (already at 0).`, false);
        }
        return this.setTarget(this.cfg.number - 1, ev.replyTo, 'dec');
      case 'setWorkers':
        if (!Number.isInteger(ev.count) || ev.count < 0 || ev.count > MAX_WORKERS) {
          return this.reply(ev.replyTo, `Invalid count: '${ev.count}'. Must be an integer in [0,${MAX_WORKERS}].`, false);
        }
        return this.setTarget(ev.count, ev.replyTo, 'set');
      case 'setSlots':
        return this.setSlots(ev.slots, ev.replyTo);
      case 'upgrade':
        return this.onUpgrade(ev.mode, ev.replyTo);
      case 'signal':
        return this.onSignal(ev.signals, ev.slots, ev.replyTo);
      case 'shutdown':
        return this.onShutdown(ev.signal, ev.replyTo);
      case 'reconfigure': {
        const { number: _n, wantedSlots: _w, ...rest } = ev.config;
        Object.assign(this.cfg, rest);
        this.slotsDirty = true;
        return;
      }
      case 'configure': {
        Object.assign(this.cfg, ev.changes);
        this.slotsDirty = true;
        const what = Object.entries(ev.changes)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ');
        this.log('info', `Configuration changed: ${what}`);
        return this.reply(ev.replyTo, `Successfully merged in config: ${what}`, true);
      }
    }
  }

  protected onSpawned(id: number, pid: number): void {
    const w = this.workers.get(id);
    if (!w) return;
    w.pid = pid;
    this.byPid.set(pid, w);
    this.progress(`===> Launched ${pid} (index: ${w.slot})`, w);
    if (w.state === 'stopping' || w.state === 'killed') {
      // Retired (shutdown) before we knew its pid: deliver the signal now.
      const sig = w.signals[w.signals.length - 1] ?? this.cfg.drainSignal;
      this.effect({ type: 'kill', pid, signal: sig });
      return;
    }
    const mode = this.cfg.ackMode;
    if (mode.kind === 'timer') this.effect({ type: 'setTimer', key: `ack:${id}`, ms: mode.ms });
    else this.effect({ type: 'setTimer', key: `deadline:${id}`, ms: mode.deadlineMs });
  }

  protected onSpawnFailed(id: number, error: string): void {
    const w = this.workers.get(id);
    if (!w) return;
    this.dropWorker(w);
    this.log('error', `Could not start worker (index: ${w.slot}): ${error}`, w);
    this.recordFailure(w, `(index ${w.slot}) could not be started: ${error}`);
  }

  protected onExited(pid: number, code: number | null, signal: string | null): void {
    const w = this.byPid.get(pid);
    if (!w) {
      this.log('debug', `Reaped unknown child ${pid}`);
      return;
    }
    this.byPid.delete(pid);
    this.dropWorker(w);
    this.clearTimers(w);
    const how = signal ? `killed by ${signal}` : `exit status ${code ?? '?'}`;
    if (w.state === 'stopping' || w.state === 'killed') {
      this.progress(`===> Exited worker ${pid} (${how})`, w);
      return;
    }
    if (!this.cfg.respawn) {
      // One-shot: a worker that ends is not replaced.
      this.unwant(w.slot);
      this.progress(`===> Worker ${pid} ended (${how}); not replaced (one-shot), ${this.cfg.number} left`, w);
      return;
    }
    if (w.state === 'starting') {
      this.progress(`===> Exited worker ${pid} before it was ACKed (${how})`, w, 'warn');
      if (!w.counted) this.recordFailure(w, `${pid} (index ${w.slot}) exited before it was acked (${how})`);
      return;
    }
    // An acked worker died without being asked to.
    const upFor = this.now - (w.ackedAt ?? w.spawnedAt);
    if (upFor < this.cfg.stableAfterMs) {
      this.log('warn', `Worker ${pid} exited ${Math.round(upFor)} ms after its ack (${how})`, w);
      this.recordFailure(w, `${pid} (index ${w.slot}) exited ${Math.round(upFor)} ms after its ack (${how})`);
    } else if (this.keepsExited(code, signal)) {
      // supervisord's autorestart=false, or unexpected with an expected status: EXITED, not replaced.
      this.unwant(w.slot);
      this.progress(`===> Worker ${pid} exited (${how}); not restarted (autorestart=${this.cfg.autorestart}), ${this.cfg.number} wanted`, w);
    } else {
      this.log('warn', `Worker ${pid} exited unexpectedly (${how}); replacing it`, w);
    }
  }

  /** Whether a started worker that exited unasked stays exited (supervisord's autorestart and exitcodes). */
  private keepsExited(code: number | null, signal: string | null): boolean {
    const r = this.cfg.autorestart;
    if (r === undefined || r === 'true') return false;
    if (r === 'false') return true;
    return signal === null && code !== null && (this.cfg.exitcodes ?? [0]).includes(code);
  }

  protected onAck(pid: number): void {
    const w = this.byPid.get(pid);
    if (!w) {
      this.log('warn', `Could not find state for PID ${pid}; ignoring ACK.`);
      return;
    }
    if (w.state !== 'starting') {
      this.log(w.state === 'up' ? 'warn' : 'debug', `Pid ${pid} already ACKed or stopping; ignoring new ACK.`, w);
      return;
    }
    this.markUp(w, 'manual');
  }

  protected onTimer(key: string): void {
    const sep = key.indexOf(':');
    const kind = sep < 0 ? key : key.slice(0, sep);
    if (kind === 'respawn') {
      this.respawnAt = null;
      return;
    }
    if (kind === 'handover') {
      this.handoverAt = null;
      return;
    }
    const w = this.workers.get(Number(key.slice(sep + 1)));
    if (!w) return;
    if (kind === 'ack' && w.state === 'starting') {
      this.markUp(w, 'timer');
    } else if (kind === 'ready' && w.state === 'up') {
      this.setReady(w);
    } else if (kind === 'stable') {
      this.onStable(w);
    } else if (kind === 'deadline' && w.state === 'starting') {
      const secs = (this.cfg.ackMode.kind === 'manual' ? this.cfg.ackMode.deadlineMs : 0) / 1000;
      this.log('error', `Worker ${w.pid} did not ACK within ${secs}s; stopping it`, w);
      if (!this.ackHelpShown) {
        this.ackHelpShown = true;
        this.log('error', ackHelp(secs));
      }
      w.counted = true;
      this.retire(w, 'no ack before the deadline', this.cfg.drainSignal);
      this.recordFailure(w, `${w.pid} (index ${w.slot}) did not ack within ${secs}s`);
    } else if (kind === 'kill' && (w.state === 'stopping' || w.state === 'killed') && w.pid !== null) {
      this.log('warn', `Child ${w.pid} is still active after ${(this.cfg.signalTimeoutMs ?? 0) / 1000}s. Sending SIGKILL.`, w);
      this.setState(w, 'killed');
      w.signals.push('SIGKILL');
      w.signaledAt = this.now;
      this.effect({ type: 'kill', pid: w.pid, signal: 'SIGKILL' });
    }
  }

  /** A worker that ended is not replaced: one fewer wanted (its own slot, when slots are named one by one). */
  private unwant(slot: number): void {
    this.cfg.number = Math.max(0, this.cfg.number - 1);
    if (this.cfg.wantedSlots) this.cfg.wantedSlots = this.cfg.wantedSlots.filter((s) => s !== slot);
    this.slotsDirty = true;
  }

  /** Exactly these slots wanted: the others' workers are stopped, the missing ones started. */
  protected setSlots(slots: readonly number[], replyTo: ReplyTo | undefined): void {
    if (slots.some((s) => !Number.isInteger(s) || s < 0 || s >= MAX_WORKERS)) {
      return this.reply(replyTo, `Invalid slots: ${slots.join(', ')}. Each must be an integer in [0,${MAX_WORKERS - 1}].`, false);
    }
    const wanted = [...new Set(slots)].sort((a, b) => a - b);
    this.cfg.wantedSlots = wanted;
    this.slotsDirty = true;
    this.cfg.number = wanted.length;
    this.gaveUp = false;
    this.streak = 0;
    this.respawnAt = null;
    const msg = `Wanted slots: ${wanted.length ? wanted.join(', ') : 'none'}`;
    this.log('info', msg);
    this.reply(replyTo, msg, true);
  }

  protected setTarget(n: number, replyTo: ReplyTo | undefined, how: 'inc' | 'dec' | 'set'): void {
    const old = this.cfg.number;
    if (n > MAX_WORKERS) {
      return this.reply(replyTo, `Can't increase number of workers beyond ${MAX_WORKERS}.`, false);
    }
    this.cfg.number = n;
    delete this.cfg.wantedSlots;
    this.gaveUp = false;
    this.streak = 0;
    this.respawnAt = null;
    let msg: string;
    if (how === 'inc') msg = `Incrementing number of workers from ${old} -> ${n}`;
    else if (how === 'dec') msg = `Decrementing number of workers from ${old} -> ${n}`;
    else if (n === old) msg = `Worker count is already ${n}`;
    else if (n > old) msg = `Altering worker count, ${old} -> ${n}. Will spin up additional workers.`;
    else msg = `Altering worker count, ${old} -> ${n}. Will gracefully terminate workers.`;
    if (this.shuttingDown) msg += ' (shutting down: no new workers will start)';
    this.log('info', msg);
    this.reply(replyTo, msg, true);
  }

  protected onUpgrade(mode: UpgradeMode, replyTo: ReplyTo | undefined): void {
    if (this.shuttingDown) {
      return this.reply(replyTo, 'Not upgrading: the master is shutting down.', false);
    }
    const from = this.generation;
    this.generation += 1;
    this.streak = 0;
    this.gaveUp = false;
    this.respawnAt = null;
    const as = this.cfg.stopFirst ? 'stopping the old workers first' : mode === 'smooth' ? 'smoothly' : 'fleet';
    if (this.upgrade) {
      const acked = this.counted(from).up;
      const up = this.upgrade;
      up.mode = mode;
      up.generation = this.generation;
      up.failures = 0;
      this.reply(replyTo, `Upgrade merged into the running one: upgrading ${as} to generation ${this.generation}`, true, true);
      if (replyTo !== undefined) up.waiters.push(replyTo);
      this.progress(
        `Currently upgrading (${acked} / ${this.cfg.number} ACKs; bumping version and starting over)...`,
      );
      return;
    }
    this.lastHandoverAt = -Infinity;
    this.upgrade = {
      mode,
      generation: this.generation,
      startedAt: this.now,
      failures: 0,
      waiters: replyTo === undefined ? [] : [replyTo],
    };
    this.reply(replyTo, this.cfg.stopFirst ? 'Restarting, the old workers stopped first, as commanded' : `Upgrading ${as}, as commanded`, true, true);
    this.progress(`Starting ${mode} upgrade from generation ${from} to ${this.generation}...`);
  }

  protected onSignal(signals: string[], slots: readonly number[] | undefined, replyTo: ReplyTo | undefined): void {
    const pids = this.pids((w) => w.pid !== null && (slots === undefined || slots.includes(w.slot)));
    for (const sig of signals) for (const pid of pids) this.effect({ type: 'kill', pid, signal: sig });
    const msg = `Sent ${signals.join(', ')} to ${pids.length} worker${pids.length === 1 ? '' : 's'}`;
    this.log('info', pids.length ? `${msg}: [${pids.join(', ')}]` : msg);
    this.reply(replyTo, msg, true);
  }

  protected onShutdown(signal: string, replyTo: ReplyTo | undefined): void {
    if (this.shuttingDown) {
      // Asked again: stop waiting.
      const pids = this.pids((w) => w.pid !== null && w.state !== 'killed');
      for (const w of this.workers.values()) {
        if (w.pid === null || w.state === 'killed') continue;
        this.setState(w, 'killed');
        w.signals.push('SIGKILL');
        this.effect({ type: 'kill', pid: w.pid, signal: 'SIGKILL' });
      }
      this.log('warn', `Asked to stop again: sending SIGKILL to [${pids.join(', ')}]`);
      this.reply(replyTo, `Already going down; sent SIGKILL to ${pids.length} workers`, true);
      return;
    }
    this.shuttingDown = signal;
    if (this.upgrade) this.finishUpgrade(false, 'the master is shutting down');
    let n = 0;
    for (const w of this.workers.values()) {
      if (w.state === 'killed') continue;
      this.retire(w, 'shutdown', signal);
      n += 1;
    }
    this.log('info', `Shutting down: sent ${signal} to ${n} worker${n === 1 ? '' : 's'}`);
    this.reply(replyTo, `Einhorn is going down! Sent ${signal} to ${n} worker${n === 1 ? '' : 's'}.`, true);
  }

}
