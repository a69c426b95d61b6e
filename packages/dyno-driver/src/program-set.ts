/**
 * supervisorctl's `add` and `remove` over the running config, pure: which process
 * groups (a [group:x], or a program's own group) come in from the file read now, or
 * go, and the running config that results. `add NAME` takes only NAME's part of
 * reread's diff (the rest of the file waits for `update`); `remove NAME` takes a group
 * out only once none of its processes runs (as supervisord: stop it first). One line
 * per name, in supervisorctl's words; the shell (config-control.ts) applies the model.
 *
 * Used by `add`/`remove` on the control socket and by anything else that adds or
 * removes programs at run time (a program given as JSON is a ConfigModel of one).
 */
import type { ConfigModel, GroupConfig, ProgramConfig } from './config/index.js';

export interface SetChange {
  /** The running config after the change (the same object when nothing changed). */
  model: ConfigModel;
  /** One line per name: `NAME: added process group`, `ERROR: ...`. */
  lines: string[];
  /** Whether every name was done. */
  ok: boolean;
  /** The process groups added or removed. */
  done: string[];
}

const byPriorityName = (a: { priority: number; name: string }, b: { priority: number; name: string }) =>
  a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Programs in the order the config reader gives them: their group's order, then priority and name. */
function ordered(programs: ProgramConfig[], groups: GroupConfig[]): { programs: ProgramConfig[]; groups: GroupConfig[] } {
  const gs = [...groups].sort(byPriorityName);
  const order = new Map(gs.map((g, i) => [g.name, i]));
  const ps = [...programs].sort((a, b) => (order.get(a.group) ?? 0) - (order.get(b.group) ?? 0) || byPriorityName(a, b));
  return { programs: ps, groups: gs };
}

/** `add NAME...`: each process group named, from `file` (the config read now), joins the running config. */
export function addGroups(running: ConfigModel, file: ConfigModel, names: readonly string[]): SetChange {
  let programs = [...running.programs];
  let groups = [...running.groups];
  const lines: string[] = [];
  const done: string[] = [];
  let ok = true;
  for (const name of new Set(names)) {
    const g = file.groups.find((x) => x.name === name);
    if (!g) {
      ok = false;
      lines.push(`ERROR: no such process/group: ${name}`);
      continue;
    }
    if (groups.some((x) => x.name === name)) {
      ok = false;
      lines.push(`ERROR: process group already active: ${name}`);
      continue;
    }
    const members = file.programs.filter((p) => p.group === name);
    const clash = members.find((p) => programs.some((q) => q.name === p.name));
    if (clash) {
      ok = false;
      const other = programs.find((q) => q.name === clash.name) as ProgramConfig;
      lines.push(`ERROR: program ${clash.name} of group ${name} is already active in group ${other.group}: remove that one first, or run update`);
      continue;
    }
    programs = [...programs, ...members];
    groups = [...groups, g];
    done.push(name);
    lines.push(`${name}: added process group`);
  }
  if (done.length === 0) return { model: running, lines, ok, done };
  return { model: { ...running, ...ordered(programs, groups) }, lines, ok, done };
}

/**
 * `remove NAME...`: each process group named leaves the running config, once none of its
 * processes runs (`running(program)`: whether a process of that program is not yet
 * STOPPED, EXITED or FATAL).
 */
export function removeGroups(current: ConfigModel, names: readonly string[], running: (program: string) => boolean): SetChange {
  let programs = [...current.programs];
  let groups = [...current.groups];
  const lines: string[] = [];
  const done: string[] = [];
  let ok = true;
  for (const name of new Set(names)) {
    if (!groups.some((g) => g.name === name)) {
      ok = false;
      lines.push(`ERROR: no such process/group: ${name}`);
      continue;
    }
    const members = programs.filter((p) => p.group === name);
    if (members.some((p) => running(p.name))) {
      ok = false;
      lines.push(`ERROR: process/group still running: ${name} (stop it first: stop ${members.length === 1 && members[0]?.name === name ? name : `${name}:*`})`);
      continue;
    }
    programs = programs.filter((p) => p.group !== name);
    groups = groups.filter((g) => g.name !== name);
    done.push(name);
    lines.push(`${name}: removed process group`);
  }
  if (done.length === 0) return { model: current, lines, ok, done };
  return { model: { ...current, programs, groups }, lines, ok, done };
}
