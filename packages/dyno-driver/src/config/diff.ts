/**
 * What `reread` reports and `update` applies, between the running config and
 * a new one, as supervisord's diff_to_active: a program is `changed` when any
 * setting of any of its processes differs (its command, environment, log
 * files, ... and its group: moving a program between groups changes it), and
 * `unchanged` otherwise; `added`/`removed` by name. Groups are diffed the
 * same way (a group changes with its priority, its member list or a member).
 * Pure: two models in, names out, each list sorted.
 */
import type { ConfigModel, ProcessConfig, ProgramConfig } from './model.js';

export interface DiffLists {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
}

export interface ConfigDiff extends DiffLists {
  /** For each changed program, the settings that differ (ProcessConfig field names, or `processes`, `group`). */
  changes: Record<string, string[]>;
  groups: DiffLists;
}

/** A JSON text with object keys sorted, so that two equal values compare equal however built. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

/** The settings in which two versions of a program differ; empty when equal. */
export function programChanges(a: ProgramConfig, b: ProgramConfig): string[] {
  const out: string[] = [];
  if (a.group !== b.group) out.push('group');
  if (a.processes.length !== b.processes.length || a.processes.some((p, i) => p.name !== b.processes[i]?.name)) {
    out.push('processes');
  }
  const keys = new Set<string>();
  const n = Math.min(a.processes.length, b.processes.length);
  for (let i = 0; i < n; i++) {
    const pa = a.processes[i] as ProcessConfig;
    const pb = b.processes[i] as ProcessConfig;
    for (const k of Object.keys({ ...pa, ...pb }) as (keyof ProcessConfig)[]) {
      if (k === 'name' || k === 'group' || k === 'processNum') continue;
      if (canonical(pa[k]) !== canonical(pb[k])) keys.add(k);
    }
  }
  if (n === 0 && a.priority !== b.priority) keys.add('priority');
  return [...out, ...[...keys].sort()];
}

function lists<T extends { name: string }>(
  olds: readonly T[],
  news: readonly T[],
  changed: (a: T, b: T) => boolean,
): DiffLists {
  const before = new Map(olds.map((x) => [x.name, x]));
  const after = new Map(news.map((x) => [x.name, x]));
  const out: DiffLists = { added: [], removed: [], changed: [], unchanged: [] };
  for (const [name, b] of after) {
    const a = before.get(name);
    if (a === undefined) out.added.push(name);
    else (changed(a, b) ? out.changed : out.unchanged).push(name);
  }
  for (const name of before.keys()) if (!after.has(name)) out.removed.push(name);
  for (const l of Object.values(out) as string[][]) l.sort();
  return out;
}

export function diff(before: ConfigModel, after: ConfigModel): ConfigDiff {
  const changes: Record<string, string[]> = {};
  const programs = lists(before.programs, after.programs, (a, b) => {
    const c = programChanges(a, b);
    if (c.length > 0) changes[b.name] = c;
    return c.length > 0;
  });
  const changedPrograms = new Set([...programs.changed, ...programs.added, ...programs.removed]);
  const groups = lists(before.groups, after.groups, (a, b) =>
    a.priority !== b.priority || canonical(a.programs) !== canonical(b.programs) || b.programs.some((p) => changedPrograms.has(p)),
  );
  return { ...programs, changes, groups };
}
