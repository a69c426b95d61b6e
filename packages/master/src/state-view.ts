import type { CoreSnapshot, WorkerView } from '@einhyrningsins/core';
import { yamlNumber, yamlScalar } from '@einhyrningsins/protocol';

/** What the master knows besides the core's snapshot. */
export interface MasterFacts {
  masterPid: number;
  version: string;
  commandName: string | null;
  socketPath: string;
  pidfile: string | null;
  lockfile: string | null;
  program: string[];
  binds: Array<{ text: string; address: string; port: number; flags: string[] }>;
  backlog: number;
  verbosity: number;
  ackMode: { kind: 'manual'; timeoutSec: number } | { kind: 'timer'; seconds: number };
  killChildrenOnExit: boolean;
  startedAtWall: number;
  /** Converts a core (monotonic) time to wall-clock ms. */
  wall: (t: number) => number;
  now: number;
}

/** The structured view returned in the `state` field of `state` and `status` replies. */
export function stateObject(s: CoreSnapshot, f: MasterFacts) {
  return {
    master_pid: f.masterPid,
    version: f.version,
    command_name: f.commandName,
    socket_path: f.socketPath,
    program: f.program,
    number: s.config.number,
    generation: s.generation,
    ack_mode: f.ackMode,
    upgrading: s.upgrade !== null,
    upgrade: s.upgrade,
    last_upgrade: s.lastUpgrade,
    shutting_down: s.shuttingDown !== null,
    consecutive_failed_starts: s.streak,
    gave_up: s.gaveUp,
    binds: f.binds,
    workers: s.workers
      .filter((w) => w.pid !== null)
      .sort((a, b) => a.slot - b.slot)
      .map((w) => ({
        pid: w.pid,
        slot: w.slot,
        generation: w.generation,
        state: w.state,
        acked: w.ackedAt !== null,
        age_s: round((f.now - w.spawnedAt) / 1000),
        signals: w.signals,
        stop_reason: w.stopReason,
      })),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A scalar of the state dump: one that psych, PyYAML and yaml all read back exactly (null: nil). */
function scalar(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return yamlNumber(v);
  if (typeof v === 'boolean') return String(v);
  return yamlScalar(String(v));
}

function sym(name: string): string {
  return `:${name}`;
}

function rubyTime(ms: number): string {
  // psych reads `2026-11-23 21:28:45.123000000 Z` as a Time.
  const iso = new Date(ms).toISOString(); // 2026-11-23T21:28:45.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}000000 Z`;
}

function child(w: WorkerView, f: MasterFacts): string[] {
  const lines = [
    `    ${w.pid}:`,
    `      :type: :worker`,
    `      :version: ${w.generation}`,
    `      :acked: ${w.ackedAt !== null}`,
    `      :signaled:${w.signals.length ? '' : ' []'}`,
    ...w.signals.map((s) => `      - ${s.replace(/^SIG/, '')}`),
    `      :last_signaled_at: ${w.signaledAt === null ? '' : rubyTime(f.wall(w.signaledAt))}`.trimEnd(),
    `      :index: ${w.slot}`,
    `      :spinup_time: ${rubyTime(f.wall(w.spawnedAt))}`,
    `      :state: ${sym(w.state)}`,
  ];
  if (w.pingedAt !== null) {
    lines.push(`      :pinged_at: ${rubyTime(f.wall(w.pingedAt))}`);
    lines.push(`      :pinged_request_id: ${scalar(w.pingRequestId)}`.trimEnd());
  }
  return lines;
}

/**
 * The `state` message: einhorn's `YAML.dump({state: ...})` shape (symbol keys,
 * `:type: :worker`, `:acked:`, `:signaled:`, `:index:`), so scripts and clients
 * written against einhorn read it unchanged.
 */
export function einhornStateYaml(s: CoreSnapshot, f: MasterFacts): string {
  const cfg = s.config;
  const workers = s.workers.filter((w) => w.pid !== null).sort((a, b) => a.spawnedAt - b.spawnedAt);
  const lines = ['---', ':state:', '  :children:' + (workers.length ? '' : ' {}')];
  for (const w of workers) lines.push(...child(w, f));
  lines.push(
    '  :config:',
    `    :number: ${cfg.number}`,
    `    :backlog: ${f.backlog}`,
    `    :seconds: ${scalar(cfg.respawnDelayMs / 1000)}`,
    `    :max_unacked: ${Number.isFinite(cfg.maxUnacked) ? cfg.maxUnacked : ''}`.trimEnd(),
    `    :max_upgrade_additional: ${Number.isFinite(cfg.maxUpgradeAdditional) ? cfg.maxUpgradeAdditional : ''}`.trimEnd(),
    `  :version: ${s.generation}`,
    `  :orig_cmd:`,
    ...f.program.map((a) => `  - ${scalar(a)}`),
    `  :bind:${f.binds.length ? '' : ' []'}`,
  );
  for (const b of f.binds) {
    lines.push(`  - - ${scalar(b.address)}`, `    - ${b.port}`, `    -${b.flags.length ? '' : ' []'}`);
    for (const fl of b.flags) lines.push(`      - ${fl}`);
  }
  lines.push(
    `  :bound_ports:${f.binds.length ? '' : ' []'}`,
    ...f.binds.map((b) => `  - ${b.port}`),
    `  :respawn: ${s.shuttingDown === null}`,
    `  :upgrading: ${s.upgrade !== null}`,
    `  :smooth_upgrade: ${s.upgrade?.mode === 'smooth'}`,
    `  :cmd_name: ${scalar(f.commandName)}`.trimEnd(),
    `  :verbosity: ${f.verbosity}`,
    `  :generation: 0`,
    '  :ack_mode:',
    f.ackMode.kind === 'manual' ? '    :type: :manual' : '    :type: :timer',
    f.ackMode.kind === 'manual' ? `    :timeout: ${scalar(f.ackMode.timeoutSec)}` : `    :timeout: ${scalar(f.ackMode.seconds)}`,
    `  :kill_children_on_exit: ${f.killChildrenOnExit}`,
    `  :socket_path: ${scalar(f.socketPath)}`,
    `  :pidfile: ${scalar(f.pidfile)}`.trimEnd(),
    `  :lockfile: ${scalar(f.lockfile)}`.trimEnd(),
    `  :consecutive_deaths_before_ack: ${s.streak}`,
    `  :signal_timeout: ${cfg.signalTimeoutMs === null ? '' : scalar(cfg.signalTimeoutMs / 1000)}`.trimEnd(),
  );
  return lines.join('\n') + '\n';
}

/** The `status` message: a human summary. */
export function statusText(s: CoreSnapshot, f: MasterFacts): string {
  const o = stateObject(s, f);
  const up = o.workers.filter((w) => w.state === 'up').length;
  const head = [
    `einhyrningsins ${f.version}, master pid ${f.masterPid}${f.commandName ? ` (${f.commandName})` : ''}`,
    `program: ${f.program.join(' ')}`,
    `workers: ${up} up of ${o.number} wanted, generation ${o.generation}` +
      (o.upgrading ? `, upgrading (${s.upgrade?.mode})` : '') +
      (o.shutting_down ? ', shutting down' : '') +
      (o.gave_up ? `, gave up after ${o.consecutive_failed_starts} failed starts` : ''),
    `ack mode: ${f.ackMode.kind === 'manual' ? `manual (deadline ${f.ackMode.timeoutSec}s)` : `timer (${f.ackMode.seconds}s)`}`,
    `sockets: ${f.binds.map((b) => `${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`).join(', ') || 'none'}`,
    '',
    'PID      INDEX  GEN  STATE     ACKED  AGE',
  ];
  for (const w of o.workers) {
    head.push(
      `${String(w.pid).padEnd(8)} ${String(w.slot).padEnd(6)} ${String(w.generation).padEnd(4)} ${w.state.padEnd(9)} ${(w.acked ? 'yes' : 'no').padEnd(6)} ${w.age_s.toFixed(1)}s`,
    );
  }
  return head.join('\n') + '\n';
}
