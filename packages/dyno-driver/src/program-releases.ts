/**
 * `fetch=` and `watch=` of a config file's programs: each program that has either gets
 * its own `Releases` (the master's --fetch and --watch, packages/master/src/releases.ts)
 * with its own group handle (the program's runtime group: an upgrade restarts that
 * program alone, new processes up before old ones go), its own executable, options and
 * messages (`[program:NAME] fetch: ...`). The set follows the running release: a program
 * added gets its fetcher, a removed one loses it, a changed fetch=/watch= (or what decides
 * the executable) makes a new one that keeps what the old one knew; the processes are not
 * restarted for it. A reload carries each fetcher's memory (refused releases) over.
 */
import type { CoreSnapshot } from '@einhyrningsins/core';
import { Releases, type FetchMemory, type GroupHandle, type Logger, type Runtime } from '@einhyrningsins/master';
import type { ProcessConfig, ProgramConfig } from './config/index.js';
import type { PreparedRelease } from './release.js';
import type { TypeLaunch } from './release-applier.js';

interface Running {
  key: string;
  releases: Releases;
}

/** What, when it changes, means a program's fetcher/watchers are made again. */
function releasesKey(x: ProcessConfig, cwd: string): string {
  return JSON.stringify([x.fetch, x.watch, x.argv[0], x.directory ?? cwd, x.environment.PATH ?? null]);
}

export class ProgramReleases {
  private readonly running = new Map<string, Running>();
  /** From the image before a reload: each program's fetcher memory, handed over when its fetcher is made. */
  private carried: Record<string, FetchMemory> = {};
  private followed: PreparedRelease | null = null;
  private stopped = false;

  constructor(
    private readonly runtime: Runtime<TypeLaunch>,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv,
    private readonly now: () => number,
  ) {}

  /** A reload's new image: the old image's memories, used by the fetchers made from now on. */
  carry(memories: Record<string, FetchMemory> | undefined): void {
    this.carried = { ...(memories ?? {}) };
  }

  /** After every batch of events: a new running release re-makes the set; every upgrade tracker looks at its group. */
  changed(release: PreparedRelease | null): void {
    if (release !== this.followed && release !== null && !this.stopped) this.follow(release);
    for (const r of this.running.values()) r.releases.changed();
  }

  private follow(release: PreparedRelease): void {
    const programs = new Map<string, ProgramConfig>();
    for (const p of release.processes) if (p.program) programs.set(p.type, p.program);
    let pending = false;
    for (const [name, p] of programs) {
      const x = p.processes[0];
      const cur = this.running.get(name);
      if (!x || (x.fetch === null && x.watch.length === 0)) {
        if (cur?.releases.busy()) pending = true;
        else if (cur) this.drop(name, cur);
        continue;
      }
      const key = releasesKey(x, release.cwd);
      if (cur?.key === key) continue;
      // A release between its install and its upgrade's outcome is seen through first (its put-back needs this fetcher).
      if (cur?.releases.busy()) {
        pending = true;
        continue;
      }
      // Its group is made by the apply that follows the release: try again after the next batch.
      if (!this.runtime.group(name)) {
        pending = true;
        continue;
      }
      const memory = cur?.releases.memory() ?? this.carried[name] ?? null;
      if (cur) this.drop(name, cur);
      this.running.set(name, { key, releases: this.make(name, x, release.cwd, memory) });
    }
    for (const [name, cur] of this.running) if (!programs.has(name)) this.drop(name, cur);
    if (!pending) this.followed = release;
  }

  private drop(name: string, cur: Running): void {
    const m = cur.releases.memory();
    if (m) this.carried[name] = m;
    cur.releases.stop();
    this.running.delete(name);
  }

  private make(name: string, x: ProcessConfig, cwd: string, memory: FetchMemory | null): Releases {
    const releases = new Releases(
      {
        watch: x.watch,
        fetch: x.fetch?.url ?? null,
        fetchIntervalSec: x.fetch?.intervalSec ?? 60,
        fetchMaxBytes: x.fetch?.maxBytes ?? 0,
        program: x.argv[0] as string,
      },
      {
        group: this.handle(name),
        log: this.log,
        now: this.now,
        env: { ...this.env, ...x.environment },
        cwd: x.directory ?? cwd,
        labels: { fetch: `[program:${name}] fetch`, watch: `[program:${name}] watch`, size: 'fetch_max_size=' },
        memory,
        afterPutBack: () => this.startAgain(name),
      },
    );
    releases.start();
    return releases;
  }

  /**
   * After a failed upgrade's put-back: a program restarted stop-then-start (no socket=) has
   * lost its old processes, and the engine may have given up on the bad release (FATAL, or
   * `startretries` used up while the old processes still serve: a later crash of one would
   * not be replaced). Setting its quantity again clears that and starts what is missing, on
   * the previous release, which is back on disk; processes that serve are not touched.
   */
  private startAgain(name: string): void {
    const g = this.runtime.group(name);
    if (!g) return;
    const s = g.snapshot;
    const live = s.workers.filter((w) => w.state === 'starting' || w.state === 'up').length;
    if (s.shuttingDown !== null || s.upgrade !== null || (!s.gaveUp && live >= s.config.number)) return;
    this.log.info(`[program:${name}] fetch: the failed release left ${name} with ${live} of ${s.config.number} processes${s.gaveUp ? ' (given up)' : ''}; starting what is missing on the previous release`);
    this.runtime.feed({ type: 'request', targets: [name], request: { type: 'setWorkers', count: s.config.number } });
  }

  /** The program's group as a release trigger sees it: an upgrade of it alone; its engine's state. */
  private handle(name: string): GroupHandle {
    let last = this.runtime.group(name)?.snapshot as CoreSnapshot;
    return {
      feed: (ev) => {
        if (ev.type === 'upgrade') this.runtime.feed({ type: 'request', targets: [name], request: { type: 'upgrade', mode: ev.mode } });
      },
      snapshot: () => {
        const g = this.runtime.group(name);
        if (g) last = g.snapshot;
        return last;
      },
    };
  }

  /** What a reload carries: each fetching program's memory (of fetchers running, and of those not made yet). */
  memories(): Record<string, FetchMemory> {
    const out: Record<string, FetchMemory> = { ...this.carried };
    for (const [name, r] of this.running) {
      const m = r.releases.memory();
      if (m) out[name] = m;
    }
    return out;
  }

  /** Why a reload must wait, or null. */
  busy(): string | null {
    for (const r of this.running.values()) {
      const why = r.releases.busy();
      if (why) return why;
    }
    return null;
  }

  stop(): void {
    this.stopped = true;
    for (const [name, cur] of this.running) this.drop(name, cur);
  }
}
