/** What `state` and `status` show: per process type, its dynos, generation and release. */
import type { CoreSnapshot } from '@einhyrningsins/core';

export interface TypeFacts {
  type: string;
  /** Removed by a release (or the driver is stopping): draining. */
  retiring: boolean;
  releaseVersion: number;
  command: readonly string[];
  web: boolean;
  snapshot: CoreSnapshot;
}

export interface DriverFacts {
  pid: number;
  version: string;
  source: string;
  socketPath: string;
  bind: { address: string; port: number } | null;
  release: { version: number; slug: string; stack: string; cwd: string } | null;
  rejected: { file: string; reason: string; at: string } | null;
  releasePhase: { version: number; ok: boolean; status: string; at: string } | null;
  /** The first dyno number (web.1). */
  startNumber: number;
  stopSignal: string;
  shuttingDown: boolean;
  /** Core (monotonic) time now. */
  now: number;
  types: readonly TypeFacts[];
}

const round = (x: number) => Math.round(x * 1000) / 1000;

function typeState(t: TypeFacts, now: number, startNumber: number) {
  const s = t.snapshot;
  return {
    type: t.type,
    quantity: s.config.number,
    generation: s.generation,
    release_version: t.releaseVersion,
    command: t.command,
    web: t.web,
    retiring: t.retiring,
    upgrading: s.upgrade !== null,
    last_upgrade: s.lastUpgrade,
    consecutive_failed_starts: s.streak,
    gave_up: s.gaveUp,
    workers: s.workers
      .filter((w) => w.pid !== null)
      .sort((a, b) => a.slot - b.slot || a.generation - b.generation)
      .map((w) => ({
        pid: w.pid,
        dyno: `${t.type}.${w.slot + startNumber}`,
        slot: w.slot,
        generation: w.generation,
        state: w.state,
        acked: w.ackedAt !== null,
        age_s: round((now - w.spawnedAt) / 1000),
      })),
  };
}

export type TypeState = ReturnType<typeof typeState>;

/** The structured `state` field (and, as JSON, the `state` message). */
export function driverState(f: DriverFacts) {
  const types: Record<string, TypeState> = {};
  const retiring: TypeState[] = [];
  for (const t of f.types) {
    if (t.retiring) retiring.push(typeState(t, f.now, f.startNumber));
    else types[t.type] = typeState(t, f.now, f.startNumber);
  }
  return {
    driver_pid: f.pid,
    version: f.version,
    source: f.source,
    socket_path: f.socketPath,
    bind: f.bind,
    release: f.release,
    last_rejected: f.rejected,
    last_release_phase: f.releasePhase,
    stop_signal: f.stopSignal,
    shutting_down: f.shuttingDown,
    types,
    retiring,
  };
}

/** The `status` message: a table per process type. */
export function driverStatus(f: DriverFacts): string {
  const st = driverState(f);
  const lines = [
    `einhyrningsins-dyno ${f.version}, driver pid ${f.pid}${f.shuttingDown ? ', shutting down' : ''}`,
    `app: ${f.source}`,
    `release: ${f.release ? `version ${f.release.version}${f.release.slug ? `, slug ${f.release.slug}` : ''}, in ${f.release.cwd}` : 'none yet'}`,
    `web socket: ${f.bind ? `${f.bind.address.includes(':') ? `[${f.bind.address}]` : f.bind.address}:${f.bind.port}` : 'none'}`,
  ];
  if (f.rejected) lines.push(`last rejected release: ${f.rejected.file} at ${f.rejected.at}: ${f.rejected.reason}`);
  if (f.releasePhase) {
    lines.push(`release phase: release ${f.releasePhase.version} ${f.releasePhase.ok ? 'succeeded' : 'FAILED'} (${f.releasePhase.status}) at ${f.releasePhase.at}`);
  }
  lines.push('', 'TYPE             WANT  UP    GEN   RELEASE');
  const all = [...Object.values(st.types), ...st.retiring];
  for (const t of all) {
    const up = t.workers.filter((w) => w.state === 'up').length;
    const notes = [t.retiring ? 'draining' : '', t.upgrading ? 'upgrading' : '', t.gave_up ? 'gave up' : ''].filter(Boolean).join(', ');
    lines.push(
      `${t.type.padEnd(16)} ${String(t.quantity).padEnd(5)} ${String(up).padEnd(5)} ${String(t.generation).padEnd(5)} ${t.release_version}` +
        (notes ? `  (${notes})` : ''),
    );
    for (const w of t.workers) {
      lines.push(`  ${w.dyno.padEnd(14)} pid ${String(w.pid).padEnd(8)} gen ${String(w.generation).padEnd(3)} ${w.state.padEnd(9)} ${w.age_s.toFixed(1)}s`);
    }
  }
  if (all.length === 0) lines.push('(no process types running)');
  return lines.join('\n') + '\n';
}
