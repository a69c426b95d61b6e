/**
 * Applying releases to the runtime: the app read again (`upgrade`, SIGHUP), a new
 * release's release phase, its web socket moved, then one Fleet `apply` (each process
 * type started, scaled, rolled or drained), one step at a time in a serial queue.
 */
import type { CoreConfig, FleetEvent, GroupSpec } from '@einhyrningsins/core';
import { SYSTEMD_VARS, type LaunchSpec, type Logger, type Runtime } from '@einhyrningsins/master';
import type { DriverConfig } from './driver-config.js';
import type { ReleasePhase } from './release-phase.js';
import { describeChanges, diffReleases, type PreparedRelease, type ProcessDef } from './release.js';
import type { ReleaseSource } from './releases.js';
import { WEB_TYPE, type WebSocketBinding } from './web-socket.js';
import { programCore, programLaunch, programLaunchKey } from './program-launch.js';

/** What a process type's group launches. */
export interface TypeLaunch {
  process: ProcessDef;
  releaseVersion: number;
  web: boolean;
  launch: LaunchSpec;
}

export type Roll = { types: readonly string[]; replyTo: number | undefined; mode: 'smooth' | 'fleet' };

export class ReleaseApplier {
  /** The release running now. */
  release: PreparedRelease | null = null;
  private serial: Promise<void> = Promise.resolve();
  /** Steps in the serial queue (reading, a release phase, applying): no reload meanwhile. */
  serialBusy = 0;
  private readonly warn = (m: string) => this.log.warn(m);

  constructor(
    private readonly cfg: DriverConfig,
    private readonly source: ReleaseSource,
    private readonly runtime: Runtime<TypeLaunch>,
    private readonly phase: ReleasePhase,
    private readonly web: WebSocketBinding,
    private readonly log: Logger,
    private readonly selected: (type: string) => boolean,
    private readonly stopping: () => boolean,
    private readonly reply: (to: number, message: string, wait: boolean, ok: boolean) => void,
  ) {}

  enqueue(step: () => Promise<void>): void {
    this.serialBusy += 1;
    this.serial = this.serial
      .then(step)
      .catch((err) => this.log.error(`internal error: ${(err as Error).stack ?? err}`))
      .finally(() => (this.serialBusy -= 1));
  }

  /**
   * SIGHUP and `upgrade [TYPE...]`: read the app again (Procfile and .env, or
   * DIR/loaded), run its release phase if it is a new release, apply it, and
   * roll the named types (every type when none), replying to `replyTo`.
   */
  upgradeApp(types: readonly string[], replyTo: number | undefined, mode: 'smooth' | 'fleet'): void {
    this.enqueue(async () => {
      const fail = (message: string) => {
        this.log.error(message);
        if (replyTo !== undefined) this.reply(replyTo, message, false, false);
      };
      if (this.stopping()) return fail('Not upgrading: the driver is shutting down.');
      const keep = this.release ? `still running release ${this.release.version}` : 'nothing is running';
      let next: PreparedRelease;
      try {
        next = await this.source.readAgain(this.release, this.runtime.names().length > 0, this.warn);
      } catch (err) {
        return fail(`Upgrade failed: the app could not be read again: ${(err as Error).message}; ${keep}`);
      }
      if (this.stopping()) return fail('Not upgrading: the driver is shutting down.');
      const known = next.processes.filter((p) => this.selected(p.type)).map((p) => p.type);
      for (const t of types) {
        if (!known.includes(t)) return fail(`Upgrade failed: unknown process type '${t}' (the app has: ${known.join(', ') || 'none'}); ${keep}`);
      }
      for (const t of this.cfg.types) {
        if (!next.processes.some((p) => p.type === t)) this.log.warn(`Process type '${t}' is not in the reloaded app`);
      }
      if (replyTo !== undefined) this.reply(replyTo, `Read the app again: release ${next.version}`, true, true);
      await this.applyChecked(next, { types: types.length ? types : known, replyTo, mode }, replyTo !== undefined ? 'upgrade' : 'SIGHUP');
    });
  }

  /** Run the release phase of a new release, then apply it; a failed release phase keeps the running release. */
  async applyChecked(next: PreparedRelease, roll: Roll | null, origin: string, phaseDone = false): Promise<void> {
    const keep = this.release ? `still running release ${this.release.version}` : 'nothing is running';
    const fail = (message: string) => {
      this.log.error(message);
      if (roll?.replyTo !== undefined) this.reply(roll.replyTo, message, false, false);
    };
    const progress = roll?.replyTo !== undefined ? (m: string) => this.reply(roll.replyTo as number, m, true, true) : undefined;
    if (!phaseDone && !(await this.phase.run(this.release, next, () => this.stopping(), progress))) {
      return fail(`Upgrade failed: the release phase of release ${next.version} failed (${this.phase.last?.status}); ${keep}`);
    }
    if (this.stopping()) return fail('Not upgrading: the driver is shutting down.');
    try {
      const moved = await this.web.rebind(next);
      if (moved) this.runtime.group(WEB_TYPE)?.shell.setListeners(this.web.listenersFor(WEB_TYPE));
    } catch (err) {
      return fail(`Upgrade failed: ${(err as Error).message}; ${keep}`);
    }
    this.applyRelease(next, roll, origin);
  }

  /** Run `next`: per process type, start, scale, roll or drain (the fleet decides); `roll`: also roll these types. */
  applyRelease(next: PreparedRelease, roll: Roll | null, origin: string): void {
    if (this.stopping()) return;
    const changes = diffReleases(this.release, next, this.selected);
    this.log.info(`Release ${next.version} from ${origin}: ${describeChanges(changes)}`);
    for (const c of changes) {
      if (c.kind === 'add' || (c.kind === 'update' && c.relaunch.includes('command'))) this.web.checkCommand(c.process, next);
      if (c.kind === 'add' && c.type === WEB_TYPE && !c.process.program && !this.web.listener && !this.web.warnedNoSocket) {
        this.web.warnedNoSocket = true;
        this.log.warn('The web processes get no listening socket: no -b and no PORT (EINHORN_FD_COUNT=0)');
      }
    }
    this.release = next;
    const specs = next.processes.filter((p) => this.selected(p.type)).map((p) => this.spec(p, next));
    const ev: FleetEvent<TypeLaunch> = { type: 'apply', specs, why: `not in release ${next.version}` };
    if (roll) ev.roll = { groups: roll.types, mode: roll.mode, ...(roll.replyTo !== undefined ? { replyTo: roll.replyTo } : {}) };
    this.runtime.feed(ev);
  }

  spec(p: ProcessDef, rel: PreparedRelease): GroupSpec<TypeLaunch> {
    if (p.program) {
      // A config file's program: its own launch and stop rules (program-launch.ts).
      return {
        name: p.type,
        quantity: p.quantity,
        launchKey: programLaunchKey(p.program),
        launch: { process: p, releaseVersion: rel.version, web: false, launch: programLaunch(p.program, this.cfg.env, rel.cwd) },
        config: programCore(p.program, p.quantity, this.cfg.oneshot, this.cfg.ackTimeoutSec),
      };
    }
    const env = Object.entries(rel.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      name: p.type,
      quantity: p.quantity,
      launchKey: JSON.stringify([p.args, env, rel.slug, rel.slugKey, rel.cwd]),
      launch: { process: p, releaseVersion: rel.version, web: p.type === WEB_TYPE, launch: this.launchSpec(p, rel) },
      config: this.coreConfig(p.quantity),
    };
  }

  coreConfig(quantity: number): Partial<CoreConfig> {
    const c = this.cfg;
    return {
      number: quantity,
      ackMode:
        c.ackMode.kind === 'manual'
          ? { kind: 'manual', deadlineMs: c.ackTimeoutSec * 1000 }
          : { kind: 'timer', ms: c.ackMode.seconds * 1000 },
      retries: Infinity,
      upgradeRetries: 3,
      respawnDelayMs: 1000,
      signalTimeoutMs: c.signalTimeoutSec > 0 ? c.signalTimeoutSec * 1000 : null,
      drainSignal: c.stopSignal,
      slots: 'named',
      respawn: !c.oneshot,
    };
  }

  launchSpec(p: ProcessDef, rel: PreparedRelease): LaunchSpec {
    return {
      program: p.args[0] as string,
      args: p.args.slice(1),
      env: { ...this.cfg.env, ...rel.env },
      // What systemd told the driver is not for the dynos.
      dropEnv: SYSTEMD_VARS,
      cwd: rel.cwd,
      extraEnv: (slot) => {
        const e: Record<string, string> = { DYNO: `${p.type}.${slot + this.cfg.startNumber}` };
        // Read at each spawn: PORT follows the socket when a release moves it.
        const l = this.web.listener;
        const port = l ? String(l.port) : (rel.env.PORT ?? this.cfg.env.PORT);
        if (port !== undefined && port !== '') e.PORT = port;
        return e;
      },
    };
  }
}
