/**
 * The host of the multi-group engine: one event queue, the fleet (pure, packages/core)
 * deciding, and one GroupShell per group acting. Both programs run their groups
 * through it: einhyrningsins one unnamed group from its command line, the dyno driver
 * one group per process type of a release.
 *
 * The queue makes the engine see one event at a time; effects that produce events
 * (a spawn yields `spawned`) are queued behind the current one.
 */
import { Fleet, type CoreConfig, type CoreSnapshot, type Event, type FleetEffect, type FleetEvent, type FleetOptions, type GroupSpec, type SerializedCore, type SerializedFleet } from '@einhyrningsins/core';
import type { Logger } from '../log.js';
import { spawner } from './spawner.js';
import { probe, probeStart } from '../loop-probe.js';

/** At most this many ACKs and pings wait for their worker's pid at once (a flood of bogus ones goes to the engine). */
const MAX_EARLY = 10_000;
import { GroupShell, type GroupShellOptions } from './group-shell.js';

export interface RuntimeOptions<L> {
  log: Logger;
  fleet?: FleetOptions;
  /** Monotonic ms of the process. */
  now: () => number;
  /** How a new group's workers are launched. */
  shell(spec: GroupSpec<L>): GroupShellOptions;
  /** A group's launch changed: the shell launches the new one from its next spawn. */
  relaunch(shell: GroupShell, spec: GroupSpec<L>): void;
  onReply(to: number, message: string, wait: boolean, ok: boolean): void;
  /** The fleet is done (shutdown finished, or one-shot ended). */
  onExit(code: number): void;
  /** A group is gone (empty after a drain); `last`: its engine's last state. */
  onRemoved?(gid: number, name: string, last: CoreSnapshot): void;
  /** After every batch of events (sd_notify watches the state with it). */
  onChange?(): void;
}

export interface RuntimeGroup<L> {
  gid: number;
  name: string;
  retiring: boolean;
  spec: GroupSpec<L>;
  snapshot: CoreSnapshot;
  shell: GroupShell;
}

export class Runtime<L> {
  private fleet: Fleet<L>;
  private readonly shells = new Map<number, GroupShell>();
  private readonly queue: Array<FleetEvent<L>> = [];
  /** ACKs and pings waiting for their worker's pid (beforeItsPid). */
  private early = 0;
  private busy = false;

  constructor(private readonly opts: RuntimeOptions<L>) {
    this.fleet = new Fleet<L>(opts.fleet);
  }

  feed(event: FleetEvent<L>): void {
    if ((event.type === 'ack' || event.type === 'ping') && this.beforeItsPid(event)) return;
    this.queue.push(event);
    if (this.busy) return;
    this.busy = true;
    const t0 = probeStart();
    try {
      while (this.queue.length) {
        const ev = this.queue.shift() as FleetEvent<L>;
        this.before(ev);
        const effects = this.fleet.handle(ev, this.opts.now());
        for (const shell of this.shells.values()) shell.after();
        for (const e of effects) this.apply(e);
      }
    } finally {
      this.busy = false;
    }
    this.opts.onChange?.();
    probe?.task('engine', t0);
  }

  /**
   * A worker's ACK (or ping) can come before its pid does: the spawn runs on another thread
   * and its result reaches this one in a later turn, while the worker may already have
   * exec'd, connected and spoken. Take the results completed so far; if the pid is still
   * unknown while spawns are in flight, the event waits for the next batch of results
   * (once nothing is in flight it goes to the engine whatever it is: an unknown pid is
   * logged there). True when it waits.
   */
  private beforeItsPid(event: { pid: number }): boolean {
    if (this.hasPid(event.pid) || spawner.inFlight === 0) return false;
    spawner.poll();
    if (this.hasPid(event.pid) || spawner.inFlight === 0 || this.early >= MAX_EARLY) return false;
    this.early += 1;
    spawner.whenResults(() => {
      this.early -= 1;
      this.feed(event as FleetEvent<L>);
    });
    return true;
  }

  /** The wanted groups first, then the draining ones, each with its shell. */
  groups(): Array<RuntimeGroup<L>> {
    return this.fleet.groups().map((g) => ({ ...g, shell: this.shells.get(g.gid) as GroupShell }));
  }

  /** Every group's counts (sd_notify), without a copy of any worker. */
  summaries(): ReturnType<Fleet<L>['summaries']> {
    return this.fleet.summaries();
  }

  /** The wanted group of that name. */
  group(name: string): RuntimeGroup<L> | undefined {
    return this.groups().find((g) => g.name === name && !g.retiring);
  }

  names(): string[] {
    return this.fleet.names();
  }

  get shuttingDown(): boolean {
    return this.fleet.shuttingDown;
  }

  /** Nothing in motion: no spawn in flight, no event waiting, every group settled (a queued spawn's worker is starting). */
  get settled(): boolean {
    if (spawner.inFlight > 0 || this.queue.length > 0 || this.early > 0) return false;
    return this.fleet.settled;
  }

  hasPid(pid: number): boolean {
    for (const s of this.shells.values()) if (s.hasPid(pid)) return true;
    return false;
  }

  /** Every live worker's pid, of every group. */
  *pids(): IterableIterator<number> {
    for (const s of this.shells.values()) yield* s.pids();
  }

  /** Drop every pending timer (at exit). */
  stopTimers(): void {
    for (const s of this.shells.values()) s.stopTimers();
  }

  serialize(): SerializedFleet {
    this.flushSpawns();
    return this.fleet.serialize(this.opts.now());
  }

  /**
   * Run every spawn still waiting for its turn, now, and wait (blocking) for every spawn in
   * flight to come back with its pid: a snapshot for a reload must not hold a starting
   * worker without a pid (the next image would wait for a spawn nobody makes). What the
   * engines do with those pids may ask for more spawns (a worker that died at once is
   * replaced): those too, a bounded number of rounds.
   */
  flushSpawns(): void {
    for (let round = 0; round < 100; round++) {
      let started = false;
      for (const s of this.shells.values()) started = s.startQueued() || started;
      let pending = 0;
      for (const s of this.shells.values()) pending += s.spawnsPending;
      if (!started && pending === 0) return;
      spawner.settle();
    }
  }

  /** The one group's engine in the single-group snapshot format (what every master image reads). */
  serializeOnly(): SerializedCore {
    this.flushSpawns();
    const [g, ...more] = this.fleet.groups();
    if (!g || more.length) throw new Error('serializeOnly: the runtime has no group or more than one');
    return this.fleet.serializeGroup(g.gid, this.opts.now()) as SerializedCore;
  }

  /**
   * Carry on from the engine of the image before a reload (a fleet, or one group's
   * engine from an image of the single-group kind): every group's workers adopted by
   * pid, its timers re-armed for what is left of them.
   */
  restore(data: SerializedFleet | SerializedCore, elapsedMs: number, spec: (name: string, gid: number) => GroupSpec<L>): void {
    for (const s of this.shells.values()) s.stopTimers();
    this.shells.clear();
    const { fleet, effects } = Fleet.restore<L>(data, this.opts.now(), elapsedMs, spec, this.opts.fleet);
    this.fleet = fleet;
    for (const e of effects) this.apply(e);
    for (const g of fleet.groups()) {
      const pids = g.snapshot.workers.flatMap((w) => (w.pid === null ? [] : [w.pid]));
      this.shells.get(g.gid)?.adopt(pids);
    }
  }

  private shellEvent(gid: number) {
    return (ev: Event) => {
      switch (ev.type) {
        case 'spawned':
          return this.feed({ type: 'spawned', gid, id: ev.id, pid: ev.pid });
        case 'spawnFailed':
          return this.feed({ type: 'spawnFailed', gid, id: ev.id, error: ev.error });
        case 'timer':
          return this.feed({ type: 'timer', gid, key: ev.key });
        case 'exited':
          return this.feed(ev);
        default:
          return undefined;
      }
    };
  }

  /** The shell hears of an event of its group before the engine does (a slot's history). */
  private before(ev: FleetEvent<L>): void {
    let gid: number | undefined;
    let groupEvent: Event | null = null;
    if (ev.type === 'exited') {
      gid = this.fleet.gidOf(ev.pid) ?? this.fleet.groups().find((g) => g.name === '' && !g.retiring)?.gid;
      groupEvent = ev;
    } else if (ev.type === 'spawnFailed') {
      gid = ev.gid;
      groupEvent = { type: 'spawnFailed', id: ev.id, error: ev.error };
    }
    if (gid !== undefined && groupEvent) this.shells.get(gid)?.before(groupEvent);
  }

  private apply(e: FleetEffect<L>): void {
    switch (e.type) {
      case 'group':
        this.shells.get(e.gid)?.apply(e.effect);
        return;
      case 'added': {
        const gid = e.gid;
        const shell = new GroupShell(
          this.opts.shell(e.spec),
          {
            snapshot: () => this.fleet.snapshotOf(gid) as CoreSnapshot,
            worker: (ref) => this.fleet.workerOf(gid, ref),
            olderUp: (generation) => this.fleet.olderUpOf(gid, generation),
            config: () => this.fleet.configOf(gid) as CoreConfig,
            shuttingDown: () => this.fleet.shuttingDownOf(gid) ?? null,
          },
          this.shellEvent(gid),
          this.opts.now,
        );
        this.shells.set(gid, shell);
        return;
      }
      case 'changed': {
        const shell = this.shells.get(e.gid);
        if (shell) this.opts.relaunch(shell, e.spec);
        return;
      }
      case 'removed':
        this.shells.get(e.gid)?.stopTimers();
        this.shells.delete(e.gid);
        this.opts.onRemoved?.(e.gid, e.name, e.snapshot);
        return;
      case 'reply':
        return this.opts.onReply(e.to, e.message, e.wait, e.ok);
      case 'log':
        return this.opts.log.log(e.level, e.message);
      case 'exit':
        this.stopTimers();
        return this.opts.onExit(e.code);
    }
  }
}
