/**
 * The multi-group engine: many single-group engines ({@link Supervisor}), none of
 * which knows it has siblings (s6's svscan, supervisord's process groups). Pure, like
 * the single group: `Fleet.handle(event, now) -> effects`, no clock, no processes.
 *
 * It decides what only a set of groups has:
 * - applying a new set of group specs (a release, a config file): a new group starts,
 *   a changed quantity scales, a changed launch rolls (a smooth upgrade), a group no
 *   longer wanted drains and is dropped once empty (a new one of the same name may
 *   start beside it meanwhile);
 * - routing kernel events (spawned, exited, ack, ping, timers) to their group;
 * - fanning one request out over groups with one final reply (fanout.ts);
 * - shutdown: every group drains, a second request escalates to SIGKILL;
 * - one-shot: the exit status is the highest one, once every group is empty;
 * - exit once every group is gone after a shutdown.
 */
import { Supervisor, type SerializedCore } from './supervisor.js';
import type { ConfigChanges, CoreConfig, CoreSnapshot, CoreSummary, Effect, Event, LogLevel, ReplyTo, UpgradeMode, WorkerView } from './types.js';
import { FanOuts, type Finish } from './fanout.js';

export interface GroupSpec<L = unknown> {
  /** The group's name; '' is the master's one unnamed group (its replies pass through unchanged). */
  name: string;
  /** How many workers it wants. */
  quantity: number;
  /** Identity of what its workers run: when it changes, the group rolls. */
  launchKey: string;
  /** What the shell launches (opaque here). */
  launch: L;
  /** The group's engine configuration (its `number` is `quantity`). */
  config: Partial<CoreConfig>;
}

/** A request to the groups (the single-group events, without their reply token). */
export type GroupRequest =
  | { type: 'inc' }
  | { type: 'dec' }
  | { type: 'setWorkers'; count: number }
  | { type: 'setSlots'; slots: readonly number[] }
  | { type: 'upgrade'; mode: UpgradeMode }
  | { type: 'signal'; signals: string[]; slots?: readonly number[] }
  | { type: 'configure'; changes: ConfigChanges };

/** Which groups a request goes to: the wanted ones, every one (the draining ones too), or these names. */
export type Targets = 'active' | 'every' | readonly string[];

export type FleetEvent<L = unknown> =
  | {
      type: 'apply';
      specs: ReadonlyArray<GroupSpec<L>>;
      roll?: { groups: readonly string[]; mode: UpgradeMode; replyTo?: ReplyTo };
      /** false: new groups are set up but not started (a stop signal came first: start nothing). */
      start?: boolean;
      /** Why a group left out is drained, for the log ("not in release 3"); default "no longer wanted". */
      why?: string;
    }
  | { type: 'spawned'; gid: number; id: number; pid: number }
  | { type: 'spawnFailed'; gid: number; id: number; error: string }
  | { type: 'timer'; gid: number; key: string }
  | { type: 'exited'; pid: number; code: number | null; signal: string | null }
  | { type: 'ack'; pid: number }
  | { type: 'ping'; pid: number; requestId: string | number | null }
  | {
      type: 'request';
      targets: Targets;
      request: GroupRequest | ((group: string) => GroupRequest);
      finish?: Finish;
      replyTo?: ReplyTo;
      /** The reply when there is no group to ask (default: a "none" error naming the noun). */
      none?: { message: string; ok: boolean };
    }
  /** own: each group is asked with its own drain signal (a config's per-program stopsignal), not `signal`. */
  | { type: 'shutdown'; signal: string; own?: boolean; replyTo?: ReplyTo };

/** What a group's engine asks of the shell (its replies and its exit are the fleet's business). */
export type GroupEffect = Exclude<Effect, { type: 'reply' } | { type: 'exit' }>;

export type FleetEffect<L = unknown> =
  | { type: 'group'; gid: number; name: string; effect: GroupEffect }
  /** A new group: the shell prepares to launch its workers (its start follows). */
  | { type: 'added'; gid: number; name: string; spec: GroupSpec<L> }
  /** The group's launch changed: workers spawned from now on run the new one. */
  | { type: 'changed'; gid: number; name: string; spec: GroupSpec<L> }
  /** The group is empty and gone: the shell drops its timers. `snapshot`: its engine's last state. */
  | { type: 'removed'; gid: number; name: string; snapshot: CoreSnapshot }
  | { type: 'reply'; to: ReplyTo; message: string; wait: boolean; ok: boolean }
  | { type: 'log'; level: LogLevel; message: string }
  | { type: 'exit'; code: number };

export interface FleetOptions {
  /** hsup's --oneshot: exit, with the highest status, once every group is empty. */
  oneshot?: boolean;
  /** What a group is called in replies and logs ("process type"). */
  noun?: string;
  /** Signal name -> number, for 128+N exit statuses (the core has no OS tables). */
  signalNumber?: (name: string) => number;
}

export interface FleetGroupView<L = unknown> {
  gid: number;
  name: string;
  /** No longer wanted: draining, dropped once empty. */
  retiring: boolean;
  spec: GroupSpec<L>;
  snapshot: CoreSnapshot;
}

interface Group<L> {
  gid: number;
  name: string;
  spec: GroupSpec<L>;
  core: Supervisor;
  retiring: boolean;
}

/** The fleet's whole state as JSON, for a reload (see Fleet.serialize). */
export interface SerializedFleet {
  format: 'fleet-1';
  shutdowns: number;
  oneshotStatus: number;
  nextGid: number;
  groups: Array<{ gid: number; name: string; retiring: boolean; quantity: number; launchKey: string; core: SerializedCore }>;
}

export class Fleet<L = unknown> {
  private readonly all = new Map<number, Group<L>>();
  private readonly active = new Map<string, Group<L>>();
  private readonly byPid = new Map<number, number>();
  private readonly fans = new FanOuts();
  private nextGid = 1;
  private shutdowns = 0;
  private oneshotStatus = 0;
  private exitSent = false;
  private now = 0;
  private out: Array<FleetEffect<L>> = [];
  private readonly noun: string;

  constructor(private readonly opts: FleetOptions = {}) {
    this.noun = opts.noun ?? 'group';
  }

  handle(ev: FleetEvent<L>, now: number): Array<FleetEffect<L>> {
    this.now = now;
    this.out = [];
    switch (ev.type) {
      case 'apply':
        this.apply(ev.specs, ev.roll ?? null, ev.start !== false, ev.why ?? 'no longer wanted');
        break;
      case 'spawned': {
        const g = this.all.get(ev.gid);
        if (g) {
          this.byPid.set(ev.pid, g.gid);
          this.feed(g, { type: 'spawned', id: ev.id, pid: ev.pid });
        }
        break;
      }
      case 'spawnFailed':
      case 'timer': {
        const g = this.all.get(ev.gid);
        if (g) this.feed(g, ev.type === 'timer' ? { type: 'timer', key: ev.key } : { type: 'spawnFailed', id: ev.id, error: ev.error });
        break;
      }
      case 'exited':
        this.exited(ev.pid, ev.code, ev.signal);
        break;
      case 'ack':
      case 'ping':
        this.ackOrPing(ev);
        break;
      case 'request':
        this.request(ev.targets, ev.request, ev.finish ?? 'lines', ev.replyTo, ev.none);
        break;
      case 'shutdown':
        this.shutdown(ev.signal, ev.replyTo, ev.own === true);
        break;
    }
    return this.out;
  }

  // ---- views ------------------------------------------------------------------

  /** Every group, the wanted ones first (in the order they were added), then the draining ones. */
  groups(): Array<FleetGroupView<L>> {
    const order = [...this.active.values(), ...[...this.all.values()].filter((g) => g.retiring)];
    return order.map((g) => ({ gid: g.gid, name: g.name, retiring: g.retiring, spec: g.spec, snapshot: g.core.snapshot() }));
  }

  /** Every group's counts, in the order of groups(), without copying any worker. */
  summaries(): Array<{ gid: number; name: string; retiring: boolean; summary: CoreSummary }> {
    return this.every().map((g) => ({ gid: g.gid, name: g.name, retiring: g.retiring, summary: g.core.summary() }));
  }

  /** The wanted group of this name. */
  group(name: string): FleetGroupView<L> | undefined {
    return this.groups().find((g) => g.name === name && !g.retiring);
  }

  /** One group's engine state (cheaper than groups() when only one is wanted). */
  snapshotOf(gid: number): CoreSnapshot | undefined {
    return this.all.get(gid)?.core.snapshot();
  }

  /** One worker of a group, by pid or id (without a snapshot of every worker). */
  workerOf(gid: number, ref: { pid: number } | { id: number }): WorkerView | undefined {
    return this.all.get(gid)?.core.worker(ref);
  }

  /** Whether one of a group's workers older than `generation` is up. */
  olderUpOf(gid: number, generation: number): boolean {
    return this.all.get(gid)?.core.olderUp(generation) ?? false;
  }

  /** One group's engine configuration. */
  configOf(gid: number): CoreConfig | undefined {
    return this.all.get(gid)?.core.config();
  }

  /** One group's shutdown signal while it shuts down, else null. */
  shuttingDownOf(gid: number): string | null | undefined {
    return this.all.get(gid)?.core.shutdownSignal;
  }

  /** One group's engine, as JSON (a host with one group keeps the single-group snapshot format). */
  serializeGroup(gid: number, now: number): SerializedCore | undefined {
    return this.all.get(gid)?.core.serialize(now);
  }

  /** The group a worker's pid belongs to. */
  gidOf(pid: number): number | undefined {
    return this.byPid.get(pid);
  }

  /** The names of the wanted groups. */
  names(): string[] {
    return [...this.active.keys()];
  }

  get shuttingDown(): boolean {
    return this.shutdowns > 0;
  }

  /** Every group settled (no upgrade, no worker starting or stopping), none draining. */
  get settled(): boolean {
    for (const g of this.all.values()) if (g.retiring || !g.core.settled) return false;
    return true;
  }

  /** Open fan-outs (a leak shows here). */
  get pendingReplies(): number {
    return this.fans.size;
  }

  // ---- applying a set of group specs ----------------------------------------------

  private apply(
    specs: ReadonlyArray<GroupSpec<L>>,
    roll: { groups: readonly string[]; mode: UpgradeMode; replyTo?: ReplyTo } | null,
    start: boolean,
    why: string,
  ): void {
    if (this.shutdowns > 0) {
      if (roll?.replyTo !== undefined) this.reply(roll.replyTo, 'Not upgrading: shutting down.', false, false);
      return;
    }
    const rolled: string[] = [];
    const wanted = new Set<string>();
    for (const spec of specs) {
      if (wanted.has(spec.name)) continue;
      wanted.add(spec.name);
      const g = this.active.get(spec.name);
      if (!g) {
        this.add(spec, undefined, undefined, false, start);
        continue;
      }
      const relaunch = g.spec.launchKey !== spec.launchKey;
      const quantity = g.spec.quantity !== spec.quantity;
      g.spec = spec;
      if (relaunch) this.out.push({ type: 'changed', gid: g.gid, name: g.name, spec });
      if (quantity) this.feed(g, { type: 'setWorkers', count: spec.quantity });
      if (roll?.groups.includes(spec.name)) rolled.push(spec.name);
      else if (relaunch) this.feed(g, { type: 'upgrade', mode: 'smooth' });
      // Its new settings (stop signal and timeout, retries, restart order ...) from now on:
      // the old workers were asked under the old ones.
      if (relaunch) this.feed(g, { type: 'reconfigure', config: spec.config });
    }
    for (const g of [...this.active.values()]) {
      if (wanted.has(g.name)) continue;
      this.active.delete(g.name);
      g.retiring = true;
      this.log('info', `[${g.name}] ${why}: draining its processes`);
      this.feed(g, { type: 'shutdown', signal: g.core.snapshot().config.drainSignal });
    }
    if (!roll) return;
    if (rolled.length === 0) {
      if (roll.replyTo !== undefined) this.reply(roll.replyTo, 'Upgrade done', false, true);
      return;
    }
    this.request(rolled, { type: 'upgrade', mode: roll.mode }, 'upgrade', roll.replyTo);
  }

  private add(spec: GroupSpec<L>, core?: Supervisor, gid = this.nextGid++, retiring = false, start = true): Group<L> {
    const g: Group<L> = { gid, name: spec.name, spec, core: core ?? new Supervisor({ ...spec.config, number: spec.quantity }), retiring };
    this.all.set(g.gid, g);
    if (!retiring) this.active.set(g.name, g);
    this.out.push({ type: 'added', gid: g.gid, name: g.name, spec });
    if (!core && start) this.feed(g, { type: 'start' });
    return g;
  }

  // ---- kernel events ----------------------------------------------------------------

  private exited(pid: number, code: number | null, signal: string | null): void {
    const gid = this.byPid.get(pid);
    const g = gid === undefined ? this.active.get('') : this.all.get(gid);
    if (!g) return;
    this.byPid.delete(pid);
    if (this.opts.oneshot && this.shutdowns === 0) {
      const status = signal ? 128 + (this.opts.signalNumber?.(signal) ?? 0) : (code ?? 1);
      this.oneshotStatus = Math.max(this.oneshotStatus, status);
    }
    this.feed(g, { type: 'exited', pid, code, signal });
    if (this.opts.oneshot && this.shutdowns === 0 && !this.exitSent) {
      // Counts, not snapshots: this runs at every exit.
      const left = [...this.all.values()].some((x) => x.core.summary().wanted > 0 || x.core.size > 0);
      if (!left) {
        this.log('info', `--oneshot: every process has ended; exiting with status ${this.oneshotStatus}`);
        this.exit(this.oneshotStatus);
      }
    }
  }

  private ackOrPing(ev: { type: 'ack'; pid: number } | { type: 'ping'; pid: number; requestId: string | number | null }): void {
    const gid = this.byPid.get(ev.pid);
    // The unnamed group says it in einhorn's words.
    const g = gid === undefined ? this.active.get('') : this.all.get(gid);
    if (!g) return this.log('warn', `No process with pid ${ev.pid}; ignoring its ${ev.type === 'ping' ? 'ping' : 'ACK'}`);
    this.feed(g, ev);
  }

  // ---- requests ---------------------------------------------------------------------

  private request(
    targets: Targets,
    request: GroupRequest | ((group: string) => GroupRequest),
    finish: Finish,
    replyTo: ReplyTo | undefined,
    none?: { message: string; ok: boolean },
  ): void {
    let groups: Array<Group<L>>;
    if (targets === 'active') groups = [...this.active.values()];
    else if (targets === 'every') groups = this.every();
    else {
      groups = [];
      for (const n of new Set(targets)) {
        const g = this.active.get(n);
        if (!g) {
          const running = this.names().join(', ') || 'none';
          return this.reply(replyTo, `Unknown ${this.noun} '${n}' (running: ${running})`, false, false);
        }
        groups.push(g);
      }
    }
    if (groups.length === 0) {
      const r = none ?? { message: `No ${this.noun} is running.`, ok: false };
      return this.reply(replyTo, r.message, false, r.ok);
    }
    const make = (g: Group<L>) => (typeof request === 'function' ? request(g.name) : request);
    if (replyTo === undefined) {
      for (const g of groups) this.feed(g, make(g));
      return;
    }
    const subs = this.fans.open(replyTo, groups.map((g) => g.name), finish);
    groups.forEach((g, i) => this.feed(g, { ...make(g), replyTo: subs[i] } as Event));
  }

  /** Drain everything, exit 0 once every group is gone. A second request escalates to SIGKILL. */
  private shutdown(given: string, replyTo: ReplyTo | undefined, own: boolean): void {
    const signalOf = (g: Group<L>) => (own ? g.core.snapshot().config.drainSignal : given);
    this.shutdowns += 1;
    if (this.all.size === 0) {
      this.reply(replyTo, 'No processes are running; exiting.', false, true);
      this.exit(0);
      return;
    }
    // The first time, the draining groups are already stopping; asking them again would SIGKILL them.
    const targets = this.shutdowns === 1 ? [...this.active.values()] : this.every();
    if (targets.length === 0) {
      this.reply(replyTo, 'Already stopping: waiting for the draining processes.', false, true);
      return;
    }
    if (replyTo === undefined) {
      for (const g of targets) this.feed(g, { type: 'shutdown', signal: signalOf(g) });
      return;
    }
    const subs = this.fans.open(replyTo, targets.map((g) => g.name), 'lines');
    targets.forEach((g, i) => this.feed(g, { type: 'shutdown', signal: signalOf(g), replyTo: subs[i] as number }));
  }

  // ---- one group's engine -------------------------------------------------------------

  private feed(g: Group<L>, ev: Event): void {
    for (const e of g.core.handle(ev, this.now)) {
      if (e.type === 'reply') {
        const r = this.fans.reply(e.to, e.message, e.wait, e.ok);
        if (r) this.out.push({ type: 'reply', ...r });
      } else if (e.type === 'exit') {
        this.remove(g);
      } else {
        this.out.push({ type: 'group', gid: g.gid, name: g.name, effect: e });
      }
    }
  }

  private remove(g: Group<L>): void {
    this.all.delete(g.gid);
    if (this.active.get(g.name) === g) this.active.delete(g.name);
    for (const [pid, gid] of this.byPid) if (gid === g.gid) this.byPid.delete(pid);
    this.out.push({ type: 'removed', gid: g.gid, name: g.name, snapshot: g.core.snapshot() });
    if (this.shutdowns === 0) this.log('info', `[${g.name}] every process has exited; ${this.noun} removed`);
    else if (this.all.size === 0) this.exit(0);
  }

  private every(): Array<Group<L>> {
    return [...this.active.values(), ...[...this.all.values()].filter((g) => g.retiring)];
  }

  private exit(code: number): void {
    if (this.exitSent) return;
    this.exitSent = true;
    this.out.push({ type: 'exit', code });
  }

  private reply(to: ReplyTo | undefined, message: string, wait: boolean, ok: boolean): void {
    if (to !== undefined) this.out.push({ type: 'reply', to, message, wait, ok });
  }

  private log(level: LogLevel, message: string): void {
    this.out.push({ type: 'log', level, message });
  }

  // ---- hand-over across a reload ------------------------------------------------------

  /** Every group's engine, as JSON (the launch itself is the shell's to give again at restore). */
  serialize(now: number): SerializedFleet {
    return {
      format: 'fleet-1',
      shutdowns: this.shutdowns,
      oneshotStatus: this.oneshotStatus,
      nextGid: this.nextGid,
      groups: [...this.all.values()].map((g) => ({
        gid: g.gid,
        name: g.name,
        retiring: g.retiring,
        quantity: g.spec.quantity,
        launchKey: g.spec.launchKey,
        core: g.core.serialize(now),
      })),
    };
  }

  /**
   * The fleet of {@link serialize} on the new clock, or, from an image that had one group
   * (a bare SerializedCore), one unnamed group. `spec(name, gid)` gives each group's launch and
   * configuration again; the effects re-arm the groups' timers.
   */
  static restore<L>(
    data: SerializedFleet | SerializedCore,
    now: number,
    elapsedMs: number,
    spec: (name: string, gid: number) => GroupSpec<L>,
    opts: FleetOptions = {},
  ): { fleet: Fleet<L>; effects: Array<FleetEffect<L>> } {
    const fleet = new Fleet<L>(opts);
    const groups: SerializedFleet['groups'] =
      data.format === 'fleet-1' ? data.groups : [{ gid: 1, name: '', retiring: false, quantity: data.cfg.number, launchKey: '', core: data }];
    if (data.format === 'fleet-1') {
      fleet.shutdowns = data.shutdowns;
      fleet.oneshotStatus = data.oneshotStatus;
    }
    fleet.now = now;
    fleet.out = [];
    for (const sg of groups) {
      const { core, effects } = Supervisor.restore(sg.core, now, elapsedMs);
      const base = spec(sg.name, sg.gid);
      const g = fleet.add({ ...base, quantity: sg.quantity, launchKey: sg.launchKey || base.launchKey }, core, sg.gid, sg.retiring);
      for (const w of core.snapshot().workers) if (w.pid !== null) fleet.byPid.set(w.pid, g.gid);
      for (const e of effects) if (e.type !== 'reply' && e.type !== 'exit') fleet.out.push({ type: 'group', gid: g.gid, name: g.name, effect: e });
    }
    fleet.nextGid = data.format === 'fleet-1' ? data.nextGid : 2;
    return { fleet, effects: fleet.out };
  }
}
