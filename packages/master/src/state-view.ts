import type { CoreSnapshot, WorkerView } from '@einhyrningsins/core';
import { yamlNumber, yamlScalar } from '@einhyrningsins/protocol';
import type { ProcSample } from './proc-stats.js';
import type { SlotRecord } from './slot-history.js';
import { isoTime } from './clock.js';

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
  /** The master's fd of each bound socket, in -b order (einhorn's bind_fds). */
  bindFds: number[];
  dropEnv: string[];
  commandSocketAsFd: boolean;
  nice: { master: number | null; worker: number | null };
  reexecCommandline: string[] | null;
  /** Reloads so far (einhorn's state `generation`). */
  reloads: number;
  /** A reload is under way (einhorn's reloading_for_upgrade). */
  reloading: boolean;
  /** Core time of the last spawn, or null. */
  lastSpinup: number | null;
  /** CPU% and RSS of a live worker (from /proc); null when it is gone. */
  sample: (pid: number, ageMs: number) => ProcSample | null;
  /** A slot's restarts and last exit. */
  slot: (slot: number) => SlotRecord;
  /** Converts a core (monotonic) time to wall-clock ms. */
  wall: (t: number) => number;
  now: number;
}

/** The structured view returned in the `state` field of `state` and `status` replies. */
export function stateObject(s: CoreSnapshot, f: MasterFacts) {
  const live = s.workers.filter((w) => w.pid !== null);
  const up = live.filter((w) => w.state === 'up');
  // The generation that serves: the newest one with a worker up (a failed upgrade's is not it).
  const serving = up.length ? Math.max(...up.map((w) => w.generation)) : null;
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
    last_upgrade: s.lastUpgrade
      ? { ...s.lastUpgrade, finished_ago_s: round((f.now - s.lastUpgrade.finishedAt) / 1000) }
      : null,
    workers_up: up.length,
    serving_generation: serving,
    shutting_down: s.shuttingDown !== null,
    consecutive_failed_starts: s.streak,
    gave_up: s.gaveUp,
    binds: f.binds,
    workers: live
      .sort((a, b) => a.slot - b.slot || a.generation - b.generation)
      .map((w) => {
        const ageMs = f.now - w.spawnedAt;
        const p = f.sample(w.pid as number, ageMs);
        const h = f.slot(w.slot);
        return {
          pid: w.pid as number,
          slot: w.slot,
          generation: w.generation,
          state: w.state,
          acked: w.ackedAt !== null,
          age_s: round(ageMs / 1000),
          uptime_s: round(ageMs / 1000),
          cpu_percent: p ? p.cpuPercent : null,
          rss_kb: p ? p.rssKb : null,
          restarts: h.restarts,
          last_exit: h.lastExit,
          signals: w.signals,
          stop_reason: w.stopReason,
        };
      }),
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
  const iso = isoTime(ms); // 2026-11-23T21:28:45.123Z
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
  const list = (key: string, items: string[]) => [`  :${key}:${items.length ? '' : ' []'}`, ...items.map((x) => `  - ${x}`)];
  const time = (t: number | null) => (t === null ? '' : ` ${rubyTime(f.wall(t))}`);
  const lastUpgraded = s.upgrade?.startedAt ?? s.lastUpgrade?.finishedAt ?? null;
  const lastSpinup = f.lastSpinup ?? (workers.length ? Math.max(...workers.map((w) => w.spawnedAt)) : null);
  const tcp = f.binds.filter((b) => !b.address.startsWith('/'));
  lines.push(
    '  :config:',
    `    :number: ${cfg.number}`,
    `    :backlog: ${f.backlog}`,
    `    :seconds: ${scalar(cfg.respawnDelayMs / 1000)}`,
    `    :max_unacked: ${Number.isFinite(cfg.maxUnacked) ? cfg.maxUnacked : ''}`.trimEnd(),
    `    :max_upgrade_additional: ${Number.isFinite(cfg.maxUpgradeAdditional) ? cfg.maxUpgradeAdditional : ''}`.trimEnd(),
    // einhorn keys versions by version for its state passing; nothing to pass here.
    '  :versions: {}',
    `  :version: ${s.generation}`,
  );
  // einhorn's socket cache: [host, port, flags] => fd.
  lines.push(`  :sockets:${f.binds.length ? '' : ' {}'}`);
  f.binds.forEach((b, i) => {
    lines.push(`    ? - ${scalar(b.address)}`, `      - ${b.port}`, `      -${b.flags.length ? '' : ' []'}`);
    for (const fl of b.flags) lines.push(`        - ${fl}`);
    lines.push(`    : ${f.bindFds[i] ?? ''}`.trimEnd());
  });
  lines.push(...list('orig_cmd', f.program.map(scalar)), `  :bind:${f.binds.length ? '' : ' []'}`);
  for (const b of f.binds) {
    lines.push(`  - - ${scalar(b.address)}`, `    - ${b.port}`, `    -${b.flags.length ? '' : ' []'}`);
    for (const fl of b.flags) lines.push(`      - ${fl}`);
  }
  lines.push(
    ...list('bind_fds', f.bindFds.map(String)),
    ...list('bound_ports', tcp.map((b) => String(b.port))),
    ...list('cmd', f.program.map(scalar)),
    '  :script_name:',
    `  :respawn: ${s.shuttingDown === null}`,
    `  :upgrading: ${s.upgrade !== null}`,
    `  :smooth_upgrade: ${s.upgrade?.mode === 'smooth'}`,
    `  :reloading_for_upgrade: ${f.reloading}`,
    '  :path:',
    `  :cmd_name: ${scalar(f.commandName)}`.trimEnd(),
    `  :verbosity: ${f.verbosity}`,
    `  :generation: ${f.reloads}`,
    `  :last_spinup:${time(lastSpinup)}`,
    '  :ack_mode:',
    f.ackMode.kind === 'manual' ? '    :type: :manual' : '    :type: :timer',
    f.ackMode.kind === 'manual' ? `    :timeout: ${scalar(f.ackMode.timeoutSec)}` : `    :timeout: ${scalar(f.ackMode.seconds)}`,
    `  :kill_children_on_exit: ${f.killChildrenOnExit}`,
    `  :command_socket_as_fd: ${f.commandSocketAsFd}`,
    `  :socket_path: ${scalar(f.socketPath)}`,
    `  :pidfile: ${scalar(f.pidfile)}`.trimEnd(),
    `  :lockfile: ${scalar(f.lockfile)}`.trimEnd(),
    `  :consecutive_deaths_before_ack: ${s.streak}`,
    `  :last_upgraded:${time(lastUpgraded)}`,
    '  :nice:',
    `    :master: ${f.nice.master ?? ''}`.trimEnd(),
    `    :worker: ${f.nice.worker ?? ''}`.trimEnd(),
    '    :renice_cmd: /usr/bin/renice',
    `  :reexec_commandline:${f.reexecCommandline ? '' : ''}`,
    ...(f.reexecCommandline ? f.reexecCommandline.map((w) => `  - ${scalar(w)}`) : []),
    ...list('drop_environment_variables', f.dropEnv.map(scalar)),
    `  :signal_timeout: ${cfg.signalTimeoutMs === null ? '' : scalar(cfg.signalTimeoutMs / 1000)}`.trimEnd(),
    '  :preloaded: false',
  );
  return lines.join('\n') + '\n';
}

/** 75s -> "1m15s", 7300s -> "2h01m", 200000s -> "2d07h". */
export function duration(sec: number): string {
  const t = Math.max(0, Math.floor(sec));
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  if (t < 86400) return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(t / 86400)}d${String(Math.floor((t % 86400) / 3600)).padStart(2, '0')}h`;
}

function memory(kb: number | null): string {
  if (kb === null) return '-';
  if (kb < 1024) return `${kb}K`;
  if (kb < 1024 * 1024) return `${(kb / 1024).toFixed(1)}M`;
  return `${(kb / 1024 / 1024).toFixed(2)}G`;
}

/** The header line about the last upgrade: a failed one says so, with its reason, until one succeeds. */
function upgradeLine(o: ReturnType<typeof stateObject>): string | null {
  const u = o.last_upgrade;
  if (o.upgrading && o.upgrade) {
    const prev = u && !u.ok ? ` (the last one, to generation ${u.generation}, failed ${duration(u.finished_ago_s)} ago)` : '';
    return `upgrade: in progress to generation ${o.upgrade.generation} (${o.upgrade.mode}), ${o.upgrade.failures} failed starts so far${prev}`;
  }
  if (!u) return null;
  return u.ok
    ? `last upgrade: generation ${u.generation} succeeded ${duration(u.finished_ago_s)} ago`
    : `last upgrade: FAILED ${duration(u.finished_ago_s)} ago, generation ${u.generation}: ${u.message}`;
}

/** The `status` message: a human summary, one row per worker (pm2-like columns). */
export function statusText(s: CoreSnapshot, f: MasterFacts): string {
  const o = stateObject(s, f);
  const gen =
    o.serving_generation === null || o.serving_generation === o.generation
      ? `generation ${o.generation}`
      : `generation ${o.serving_generation} serving (current ${o.generation})`;
  const head = [
    `einhyrningsins ${f.version}, master pid ${f.masterPid}${f.commandName ? ` (${f.commandName})` : ''}`,
    `program: ${f.program.join(' ')}`,
    `master up ${duration((Date.now() - f.startedAtWall) / 1000)}${f.reloads ? `, reloaded ${f.reloads} time${f.reloads === 1 ? '' : 's'}` : ''}`,
    `workers: ${o.workers_up} up of ${o.number} wanted, ${gen}` +
      (o.shutting_down ? ', shutting down' : '') +
      (o.gave_up ? `, gave up after ${o.consecutive_failed_starts} failed starts` : ''),
  ];
  const up = upgradeLine(o);
  if (up) head.push(up);
  head.push(
    `ack mode: ${f.ackMode.kind === 'manual' ? `manual (deadline ${f.ackMode.timeoutSec}s)` : `timer (${f.ackMode.seconds}s)`}`,
    `sockets: ${f.binds.map((b) => (b.port === 0 && b.address.startsWith('/') ? `unix:${b.address}` : `${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`)).join(', ') || 'none'}`,
    '',
  );
  const rows: string[][] = [['PID', 'INDEX', 'GEN', 'STATE', 'UPTIME', 'CPU%', 'RSS', 'RESTARTS', 'LAST EXIT']];
  for (const w of o.workers) {
    rows.push([
      String(w.pid),
      String(w.slot),
      String(w.generation),
      w.state,
      duration(w.uptime_s),
      w.cpu_percent === null ? '-' : w.cpu_percent.toFixed(1),
      memory(w.rss_kb),
      String(w.restarts),
      w.last_exit ?? '-',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) head.push(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd());
  if (o.workers.length === 0) head.push('(no workers)');
  return head.join('\n') + '\n';
}
