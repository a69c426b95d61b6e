/**
 * supervisorctl's way of naming what a command acts on, over a config's programs:
 * NAME (a program), GROUP:* (every program of a [group:x]), GROUP:NAME (a program of
 * the group, or one process: `multi:multi_01`, supervisord's group:process name), and
 * all. Programs are the runtime's groups, a program's processes its slots: a process
 * named alone is its program with that slot (`slots`); a program named whole has none.
 */
import type { ConfigModel } from './config/index.js';

export interface Resolved {
  /** The programs named (whole, or by some of their processes), in the config's order. */
  names: string[];
  /** For a program named only by some of its processes: their slots. */
  slots: Record<string, number[]>;
}

export function resolveNames(model: ConfigModel, words: readonly string[], running: readonly string[]): Resolved | { error: string } {
  const out = new Set<string>();
  const whole = new Set<string>();
  const slots = new Map<string, Set<number>>();
  const programs = model.programs;
  const known = () => programs.map((p) => p.name).join(', ') || 'none';
  for (const w of words) {
    if (w === 'all') {
      for (const p of programs) out.add(p.name);
      continue;
    }
    const colon = w.indexOf(':');
    if (colon >= 0) {
      const group = w.slice(0, colon);
      const name = w.slice(colon + 1);
      const members = programs.filter((p) => p.group === group);
      if (members.length === 0) return { error: `No such group: ${group} (known programs: ${known()})` };
      if (name === '*') {
        for (const p of members) (out.add(p.name), whole.add(p.name));
        continue;
      }
      // A process first (supervisord's group:process), then a program of the group.
      const owner = members.find((m) => m.processes.some((x) => x.name === name));
      if (owner && !(owner.processes.length === 1 && owner.name === name)) {
        out.add(owner.name);
        const set = slots.get(owner.name) ?? new Set<number>();
        set.add(owner.processes.findIndex((x) => x.name === name));
        slots.set(owner.name, set);
        continue;
      }
      const p = members.find((m) => m.name === name);
      if (p) {
        out.add(p.name);
        whole.add(p.name);
        continue;
      }
      return { error: `No such process: ${w}` };
    }
    const p = programs.find((m) => m.name === w);
    if (p) {
      out.add(p.name);
      whole.add(p.name);
      continue;
    }
    const owner = programs.find((m) => m.processes.some((x) => x.name === w));
    if (owner) return { error: `No such process: ${w} (a process of program ${owner.name}: name it ${owner.group}:${w})` };
    return { error: `No such process: ${w} (known programs: ${known()})` };
  }
  const order = programs.map((p) => p.name).filter((n) => out.has(n));
  const names = order.filter((n) => running.includes(n));
  if (names.length === 0) return { error: `Not running: ${order.join(', ') || 'nothing named'}` };
  const bySlot: Record<string, number[]> = {};
  for (const [n, set] of slots) if (!whole.has(n) && names.includes(n)) bySlot[n] = [...set].sort((a, b) => a - b);
  return { names, slots: bySlot };
}
