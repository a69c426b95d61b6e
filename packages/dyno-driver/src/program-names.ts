/**
 * supervisorctl's way of naming what a command acts on, over a config's programs:
 * NAME (a program), GROUP:* (every program of a [group:x]), GROUP:NAME, and all.
 * Programs are the runtime's groups; one process of a several-process program is not
 * addressed on its own (yet): naming one says so.
 */
import type { ConfigModel } from './config/index.js';

export function resolveNames(model: ConfigModel, words: readonly string[], running: readonly string[]): { names: string[] } | { error: string } {
  const out = new Set<string>();
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
        for (const p of members) out.add(p.name);
        continue;
      }
      const p = members.find((m) => m.name === name);
      if (p) {
        out.add(p.name);
        continue;
      }
      const owner = members.find((m) => m.processes.some((x) => x.name === name));
      if (owner) return { error: `${w} is one process of program ${owner.name}: name the program (${group}:${owner.name}) or ${group}:*` };
      return { error: `No such process: ${w}` };
    }
    const p = programs.find((m) => m.name === w);
    if (p) {
      out.add(p.name);
      continue;
    }
    const owner = programs.find((m) => m.processes.some((x) => x.name === w));
    if (owner) return { error: `${w} is one process of program ${owner.name}: name the program (${owner.name})` };
    return { error: `No such process: ${w} (known programs: ${known()})` };
  }
  const names = [...out].filter((n) => running.includes(n));
  if (names.length === 0) return { error: `Not running: ${[...out].join(', ') || 'nothing named'}` };
  return { names };
}
