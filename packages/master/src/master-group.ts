/**
 * The master's one group: its spec from the command line, and the single group's events
 * (what the commands, the signals and --watch/--fetch/--exit-with-child speak) as the
 * runtime's events for it.
 */
import type { CoreConfig, Event, FleetEvent, GroupSpec } from '@einhyrningsins/core';
import type { LaunchSpec } from './host/group-shell.js';
import type { Options } from './options.js';
import type { Logger } from './log.js';
import { SYSTEMD_VARS } from './systemd.js';

export function coreConfig(o: Options): Partial<CoreConfig> {
  return {
    number: o.number,
    ackMode:
      o.ackMode.kind === 'manual'
        ? { kind: 'manual', deadlineMs: o.ackTimeoutSec * 1000 }
        : { kind: 'timer', ms: o.ackMode.seconds * 1000 },
    minReadyMs: o.minReadySec * 1000,
    ...(o.handoverAfterBoot || o.handoverGapSec > 0 ? { handover: { afterBoot: o.handoverAfterBoot, gapMs: o.handoverGapSec * 1000 } } : {}),
    retries: o.retries ?? Infinity,
    upgradeRetries: o.retries ?? 3,
    respawnDelayMs: o.seconds * 1000,
    signalTimeoutMs: o.signalTimeoutSec > 0 ? o.signalTimeoutSec * 1000 : null,
    drainSignal: o.stopSignal,
    maxUnacked: o.maxUnacked ?? Infinity,
    maxUpgradeAdditional: o.maxUpgradeAdditional ?? Infinity,
  };
}

/** A single-group event (what the commands and signals speak) for the one unnamed group. */
export function fleetEvent(ev: Event): FleetEvent<LaunchSpec> | null {
  const to = ev.type !== 'start' && 'replyTo' in ev && ev.replyTo !== undefined ? { replyTo: ev.replyTo } : {};
  switch (ev.type) {
    case 'ack':
    case 'ping':
    case 'exited':
      return ev;
    case 'shutdown':
      return { type: 'shutdown', signal: ev.signal, ...to };
    case 'inc':
    case 'dec':
      return { type: 'request', targets: 'active', request: { type: ev.type }, ...to };
    case 'setWorkers':
      return { type: 'request', targets: 'active', request: { type: 'setWorkers', count: ev.count }, ...to };
    case 'upgrade':
      return { type: 'request', targets: 'active', request: { type: 'upgrade', mode: ev.mode }, ...to };
    case 'signal':
      return { type: 'request', targets: 'active', request: { type: 'signal', signals: ev.signals }, ...to };
    case 'configure':
      return { type: 'request', targets: 'active', request: { type: 'configure', changes: ev.changes }, ...to };
    default:
      return null;
  }
}

/** The one unnamed group: the command line's program, -n workers. */
export function masterGroupSpec(opts: Options, cwd: string): GroupSpec<LaunchSpec> {
  const launch: LaunchSpec = {
    program: opts.program as string,
    args: opts.programArgs,
    env: process.env,
    // What systemd told the master is not for the children.
    dropEnv: [...opts.dropEnv, ...SYSTEMD_VARS],
    cwd,
  };
  return { name: '', quantity: opts.number, launchKey: 'command line', launch, config: coreConfig(opts) };
}

/** einhorn's signals: HUP upgrades, INT/TERM/QUIT/USR2 stop, TTIN/TTOU add/remove a worker, USR1 is passed on. */
export function installMasterSignals(feed: (ev: Event) => void, log: Logger, stopSignal: string): void {
  const on = (sig: NodeJS.Signals, fn: () => void) => process.on(sig, fn);
  on('SIGHUP', () => {
    log.info('Got SIGHUP: upgrading');
    feed({ type: 'upgrade', mode: 'smooth' });
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR2'] as const) {
    on(sig, () => {
      log.info(`Got ${sig}: stopping the workers gracefully`);
      feed({ type: 'shutdown', signal: stopSignal });
    });
  }
  on('SIGTTIN', () => feed({ type: 'inc' }));
  on('SIGTTOU', () => feed({ type: 'dec' }));
  on('SIGUSR1', () => feed({ type: 'signal', signals: ['SIGUSR1'] }));
}
