/**
 * The group sources (hsup's release sources): what yields the app's releases, each a
 * desired set of process types (release-applier.ts turns one into the Fleet's group
 * specs). A Procfile (+ .env + formation) read at start and again on `upgrade`/SIGHUP
 * (ProcfileSource, here); hsup's control directory, whose DIR/new arrives by itself
 * (control-dir-source.ts). A config file will be the next one: one more ReleaseSource.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkControlDir, checkTypes, loadProcfileApp, peekControlDir, procfileDir, readControlFile, readDotenv, type AppSource, type Warn } from './app-source.js';
import { LOADED_FILE } from './control-dir.js';
import type { PreparedRelease, Release } from './release.js';
import { prepareSlug } from './slug.js';
import { WEB_TYPE } from './web-socket.js';

export interface SourceConfig {
  source: AppSource;
  /** Process types to run; empty: all. */
  types: readonly string[];
  stateDir: string;
  /** The driver's working directory. */
  cwd: string;
  /** hsup's `start TYPE=N` with a control dir: these quantities instead of the release's. */
  quantities: ReadonlyMap<string, number>;
}

/** What start-up needs to know before anything runs. */
export interface FirstLook {
  /** The release to start with (a Procfile); null: a control dir's releases come from its files. */
  initial: PreparedRelease | null;
  /** A web type may run: bind its socket. */
  webPossible: boolean;
  /** PORT as the app says it (.env, Env). */
  port: string | undefined;
}

export function selectedBy(types: readonly string[]): (type: string) => boolean {
  return (type) => types.length === 0 || types.includes(type);
}

/** A release file, checked and its slug unpacked, ready to apply. */
export async function prepareRelease(cfg: SourceConfig, rel: Release, current: PreparedRelease | null, warn: Warn): Promise<PreparedRelease> {
  const src = cfg.source;
  if (src.kind === 'procfile') return { ...rel, cwd: procfileDir(src), slugKey: null };
  if (src.kind === 'config') throw new Error('a config file has no release files');
  const env = src.envFile ? { ...readDotenv(src.envFile, true, warn), ...rel.env } : rel.env;
  const place = await prepareSlug({
    slug: rel.slug,
    version: rel.version,
    baseDir: src.dir,
    stateDir: cfg.stateDir,
    defaultCwd: cfg.cwd,
    current: current ? { cwd: current.cwd, key: current.slugKey } : null,
  });
  const q = cfg.quantities;
  const processes = q.size ? rel.processes.map((p) => (q.has(p.type) ? { ...p, quantity: q.get(p.type) as number } : p)) : rel.processes;
  return { ...rel, processes, env, cwd: place.cwd, slugKey: place.key };
}

/** Start-up's look at the app: everything that can be wrong with it fails here, in one line. */
export function firstLook(cfg: SourceConfig, warn: Warn): FirstLook {
  const src = cfg.source;
  const selected = selectedBy(cfg.types);
  if (src.kind === 'procfile') {
    const rel = loadProcfileApp(src, 1, warn);
    checkTypes(rel.processes.map((p) => p.type), cfg.types, '', src.procfile);
    return {
      initial: { ...rel, cwd: procfileDir(src), slugKey: null },
      webPossible: rel.processes.some((p) => p.type === WEB_TYPE && selected(p.type)),
      port: rel.env.PORT,
    };
  }
  if (src.kind === 'config') throw new Error('a config file is read by its ConfigSource');
  checkControlDir(src.dir);
  const dotenv = readDotenv(src.envFile, true, warn);
  const peek = peekControlDir(src.dir);
  if (peek.release) checkTypes(peek.release.processes.map((p) => p.type), cfg.types, '', peek.file);
  return { initial: null, webPossible: selected(WEB_TYPE), port: peek.release?.env.PORT ?? dotenv.PORT };
}

/** `upgrade` and SIGHUP: the app read again (the Procfile and .env, or DIR/loaded). */
export async function readAgain(cfg: SourceConfig, current: PreparedRelease | null, running: boolean, warn: Warn): Promise<PreparedRelease> {
  const src = cfg.source;
  if (src.kind === 'procfile') {
    const next = await prepareRelease(cfg, loadProcfileApp(src, (current?.version ?? 0) + 1, warn), current, warn);
    // All lines skipped: a mistake, not an app to stop everything for.
    if (next.processes.length === 0 && !next.releaseArgs && running) throw new Error(`${src.procfile}: no process types defined`);
    return next;
  }
  if (src.kind === 'config') throw new Error('a config file is read by its ConfigSource');
  const file = join(src.dir, LOADED_FILE);
  if (!existsSync(file)) throw new Error(`there is no ${file}`);
  return await prepareRelease(cfg, readControlFile(file), current, warn);
}

export function describeSource(src: AppSource): string {
  if (src.kind === 'control-dir') return `control directory ${src.dir}`;
  if (src.kind === 'config') return `config ${src.file}`;
  return `Procfile ${src.procfile}` + (src.envExplicit || existsSync(src.envFile) ? ` with ${src.envFile}` : '');
}

/** Where releases that arrive by themselves go (the driver). */
export interface ReleaseSink {
  /** The release phase of a new release; true when it passed (or there is none). */
  phase(next: PreparedRelease): Promise<boolean>;
  /** Apply a release whose release phase already ran. */
  apply(next: PreparedRelease, origin: string): Promise<void>;
  /** Run the serial queue's next step. */
  enqueue(step: () => Promise<void>): void;
  stopping(): boolean;
  current(): PreparedRelease | null;
  phaseStatus(): string | undefined;
}

export type Rejection = { file: string; reason: string; at: string };

/** A release source (hsup's): the app's releases, read when asked, and those that arrive by themselves. */
export interface ReleaseSource {
  /** Releases carry their own Version: a new Version is a new release (its release phase runs). */
  readonly versioned: boolean;
  /** The last release set aside, when the source sets any aside. */
  rejected: Rejection | null;
  /** The app, as the start-up line names it. */
  describe(): string;
  /** Start-up's look: everything that can be wrong fails here, in one line. */
  firstLook(warn: Warn): FirstLook;
  /** `upgrade` and SIGHUP: the app read again. */
  readAgain(current: PreparedRelease | null, running: boolean, warn: Warn): Promise<PreparedRelease>;
  /** From now on, releases that arrive by themselves go to `sink` (the first one too, when firstLook had none). */
  watch(sink: ReleaseSink): void;
  close(): void;
}

/** A Procfile app: read at start and again when asked; nothing arrives by itself. */
export class ProcfileSource implements ReleaseSource {
  readonly versioned = false;
  rejected: Rejection | null = null;

  constructor(private readonly cfg: SourceConfig) {}

  describe(): string {
    return describeSource(this.cfg.source);
  }

  firstLook(warn: Warn): FirstLook {
    return firstLook(this.cfg, warn);
  }

  readAgain(current: PreparedRelease | null, running: boolean, warn: Warn): Promise<PreparedRelease> {
    return readAgain(this.cfg, current, running, warn);
  }

  watch(): void {
    /* nothing arrives by itself */
  }

  close(): void {
    /* nothing to stop */
  }
}
