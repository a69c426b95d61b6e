/**
 * The app model (hsup's): a release is a version, an environment, a slug and
 * the process types with their argv and quantity. And what changes, per
 * process type, from one release to the next.
 */
import type { ProgramConfig } from './config/index.js';
import type { ProcfileEntry } from './procfile.js';
import { procfileArgs } from './procfile.js';
import { programLaunchKey } from './program-launch.js';

export interface ProcessDef {
  type: string;
  /** argv: Args[0] is found in PATH (or relative to the release's directory). */
  args: readonly string[];
  quantity: number;
  /** A config file's program (config-source.ts): its own directory, environment, socket, stop rules. */
  program?: ProgramConfig;
}

/** The Procfile entry (or control-file process type) that is the release phase, never in the formation. */
export const RELEASE_TYPE = 'release';

export interface Release {
  version: number;
  /** The release phase's argv (a `release` process type), run once per release before the others roll. */
  releaseArgs: readonly string[] | null;
  env: Readonly<Record<string, string>>;
  /** As written in the release ('' when none). */
  slug: string;
  stack: string;
  processes: readonly ProcessDef[];
}

/** A release ready to run: its slug unpacked (or none). */
export interface PreparedRelease extends Release {
  /** Where its processes run. */
  cwd: string;
  /** Identity of the slug's content (path, size, mtime), null without a slug. */
  slugKey: string | null;
}

/** What a new release means for one process type. */
export type TypeChange =
  | { kind: 'add'; type: string; process: ProcessDef }
  | { kind: 'remove'; type: string }
  /** relaunch: argv, environment or slug changed (roll the type); quantity: the new one when it changed. */
  | { kind: 'update'; type: string; process: ProcessDef; relaunch: string[]; quantity: number | null };

/** A Procfile app as a release; types absent from the formation run once. */
export function releaseFromProcfile(
  version: number,
  entries: readonly ProcfileEntry[],
  env: Readonly<Record<string, string>>,
  formation: ReadonlyMap<string, number>,
): Release {
  const rel = entries.find((e) => e.type === RELEASE_TYPE);
  return {
    version,
    releaseArgs: rel ? procfileArgs(rel.command) : null,
    env: { ...env },
    slug: '',
    stack: '',
    processes: entries
      .filter((e) => e.type !== RELEASE_TYPE)
      .map((e) => ({ type: e.type, args: procfileArgs(e.command), quantity: formation.get(e.type) ?? 1 })),
  };
}

export function sameEnv(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Per process type, what `next` changes relative to `prev` (null: nothing
 * runs yet). Only types accepted by `selected` are considered (start TYPE...).
 */
export function diffReleases(
  prev: PreparedRelease | null,
  next: PreparedRelease,
  selected: (type: string) => boolean = () => true,
): TypeChange[] {
  const out: TypeChange[] = [];
  const before = new Map((prev?.processes ?? []).filter((p) => selected(p.type)).map((p) => [p.type, p]));
  const after = next.processes.filter((p) => selected(p.type));
  for (const p of after) {
    const old = before.get(p.type);
    if (!old || !prev) {
      out.push({ kind: 'add', type: p.type, process: p });
      continue;
    }
    const relaunch: string[] = [];
    if (!sameArgs(old.args, p.args)) relaunch.push('command');
    if (old.program && p.program && programLaunchKey(old.program) !== programLaunchKey(p.program)) relaunch.push('program settings');
    if (!sameEnv(prev.env, next.env)) relaunch.push('environment');
    if (prev.slug !== next.slug || prev.slugKey !== next.slugKey || prev.cwd !== next.cwd) relaunch.push('slug');
    out.push({ kind: 'update', type: p.type, process: p, relaunch, quantity: old.quantity === p.quantity ? null : p.quantity });
  }
  const kept = new Set(after.map((p) => p.type));
  for (const type of before.keys()) if (!kept.has(type)) out.push({ kind: 'remove', type });
  return out;
}

/**
 * Whether `next` is a new release of the app, not the same one read again
 * (its release phase then runs). `versioned`: releases carry their own
 * Version (a control directory), and a new Version is a new release.
 */
export function isNewRelease(prev: PreparedRelease | null, next: PreparedRelease, versioned: boolean): boolean {
  if (!prev) return true;
  if (versioned && prev.version !== next.version) return true;
  const a = (r: Release) => JSON.stringify([r.releaseArgs, r.processes.map((p) => [p.type, p.args])]);
  return a(prev) !== a(next) || !sameEnv(prev.env, next.env) || prev.slug !== next.slug || prev.slugKey !== next.slugKey || prev.cwd !== next.cwd;
}

/** One line for the log: "web: environment changed, 2 -> 3; worker: removed". */
export function describeChanges(changes: readonly TypeChange[]): string {
  const parts = changes.map((c) => {
    if (c.kind === 'add') return `${c.type}: new (${c.process.quantity})`;
    if (c.kind === 'remove') return `${c.type}: removed`;
    const bits: string[] = [];
    if (c.relaunch.length) bits.push(`${c.relaunch.join(', ')} changed`);
    if (c.quantity !== null) bits.push(`quantity ${c.quantity}`);
    return `${c.type}: ${bits.length ? bits.join(', ') : 'unchanged'}`;
  });
  return parts.length ? parts.join('; ') : 'no process types';
}
