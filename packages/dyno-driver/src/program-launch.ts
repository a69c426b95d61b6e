/**
 * A config file's program as a runtime group (the third release source's half of
 * release-applier.ts): its launch (argv, directory, environment over the driver's,
 * umask, per process where %(process_num)d makes them differ), its engine's
 * configuration (ack as -m, stopsignal, stopwaitsecs, numprocs) and the key whose
 * change rolls it.
 */
import type { CoreConfig } from '@einhyrningsins/core';
import { SYSTEMD_VARS, type LaunchSpec } from '@einhyrningsins/master';
import type { ProgramConfig, ProcessConfig } from './config/index.js';

/** What, when it changes, means the program's processes must be replaced (a rolling restart). */
export function programLaunchKey(p: ProgramConfig): string {
  return JSON.stringify(
    p.processes.map((x) => [
      x.name,
      x.argv,
      x.directory,
      x.umask,
      x.user ? [x.user.uid, x.user.gid, x.user.groups ?? []] : null,
      Object.entries(x.environment).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      x.socket?.text ?? null,
      x.handoff,
      x.ack,
      x.stopsignal,
      x.stopwaitsecs,
      x.stopasgroup,
      x.killasgroup,
      x.oneTime ?? false,
      x.minReadySecs ?? 0,
      x.respawnDelaySecs ?? null,
    ]),
  );
}

/** The program's processes as the group's workers: `autostart=false` starts none. */
export function programQuantity(p: ProgramConfig): number {
  const first = p.processes[0];
  return first && first.autostart && !first.oneTime ? p.processes.length : 0;
}

/**
 * `ackTimeoutSec`: the driver's --ack-timeout, the ACK deadline of an `ack=manual` program
 * that does not give its own (`ack=manual:SECONDS`).
 */
export function programCore(p: ProgramConfig, quantity: number, oneshot: boolean, ackTimeoutSec: number): Partial<CoreConfig> {
  const x = p.processes[0] as ProcessConfig;
  if (x.oneTime) {
    // A one-time task: each run ends by itself and is not replaced; a failed spawn is not retried.
    return {
      number: quantity,
      retries: 0,
      stableAfterMs: 0,
      ackMode: { kind: 'timer', ms: 0 },
      upgradeRetries: 0,
      respawnDelayMs: 1000,
      signalTimeoutMs: Math.max(1, x.stopwaitsecs * 1000),
      drainSignal: `SIG${x.stopsignal}`,
      slots: 'named',
      respawn: false,
    };
  }
  const ackSeconds = x.ack.kind === 'timer' ? x.ack.seconds : 0;
  return {
    number: quantity,
    // supervisord's startretries: FATAL after that many failed starts in a row (the engine gives up).
    retries: x.startretries,
    // supervisord's startsecs, counted from the start: a process must live that long (the ack included) to have started.
    stableAfterMs: Math.max(0, x.startsecs - ackSeconds) * 1000,
    ackMode:
      x.ack.kind === 'manual'
        ? { kind: 'manual', deadlineMs: (x.ack.deadlineSec ?? ackTimeoutSec) * 1000 }
        : { kind: 'timer', ms: x.ack.seconds * 1000 },
    upgradeRetries: 3,
    // minisv's restartPause (at least 0.1 s: a crash loop must not spin); supervisord's 1 s.
    respawnDelayMs: x.respawnDelaySecs !== undefined ? Math.max(100, x.respawnDelaySecs * 1000) : 1000,
    // minisv's startTime: a rolling restart's new process counts once it has lived this long.
    ...(x.minReadySecs ? { minReadyMs: x.minReadySecs * 1000 } : {}),
    // supervisord's stopwaitsecs: then SIGKILL. 0 means at once there; here the smallest wait.
    signalTimeoutMs: Math.max(1, x.stopwaitsecs * 1000),
    drainSignal: `SIG${x.stopsignal}`,
    slots: 'named',
    respawn: !oneshot,
    autorestart: x.autorestart,
    exitcodes: x.exitcodes,
    // supervisord's restart stops the old processes before it starts new ones (a program may hold
    // a lock or a port); a program with socket= rolls instead (the socket is shared: no request lost).
    stopFirst: x.socket === null && !x.newFirst,
    // Each process started and stopped on its own (supervisord's group:process names).
    wantedSlots: Array.from({ length: quantity }, (_, i) => i),
  };
}

/** What each process runs: slot N is the program's process N (its name, argv, directory, environment). */
export function programLaunch(p: ProgramConfig, driverEnv: NodeJS.ProcessEnv, configDir: string): LaunchSpec {
  const procs = p.processes;
  const at = (slot: number) => (procs[slot] ?? procs[0]) as ProcessConfig;
  const first = at(0);
  return {
    program: first.argv[0] as string,
    args: first.argv.slice(1),
    env: { ...driverEnv },
    dropEnv: SYSTEMD_VARS,
    cwd: first.directory ?? configDir,
    umask: first.umask,
    // user=: only set when it is not the driver's own user (config-source.ts refuses it unless root).
    user: first.user && first.user.uid !== (process.getuid?.() ?? 0) ? { uid: first.user.uid, gid: first.user.gid, groups: first.user.groups ?? [] } : null,
    perSlot: (slot) => {
      const x = at(slot);
      return { program: x.argv[0] as string, args: x.argv.slice(1), cwd: x.directory ?? configDir };
    },
    // supervisord's variables, then the program's environment= over the driver's.
    extraEnv: (slot) => {
      const x = at(slot);
      return { SUPERVISOR_ENABLED: '1', SUPERVISOR_PROCESS_NAME: x.name, SUPERVISOR_GROUP_NAME: x.group, ...x.environment };
    },
  };
}

/** The name a process is shown by (its output prefix, `status`): process_name expanded. */
export function processName(p: ProgramConfig, slot: number): string {
  return p.processes[slot]?.name ?? `${p.name}:${slot}`;
}
