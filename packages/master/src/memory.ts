import { createRequire } from 'node:module';
import * as native from 'native-reuseport';
import { probe, probeStart } from './loop-probe.js';

// node:v8 and node:vm are loaded at the first compaction or burst of workers, not at start-up
// (they cost ~1 MB of the master's RSS there, for nothing until workers have come and gone).
const load = createRequire(import.meta.url);

/** At most one compaction this often, and always this soon after the last worker exit. */
const COMPACT_AFTER_MS = 2000;
/** While the workers are not settled, whether they are is looked at again this often ... */
export const SETTLE_CHECK_MS = 500;
/** ... for at most this long after the compaction was due: then it runs anyway. */
export const MAX_DEFER_MS = 30_000;

/**
 * Every thread's malloc from now on in glibc's main arena (mallopt(M_ARENA_MAX, 1)): called
 * at start, before the spawner's two threads exist. glibc gives each thread that mallocs an
 * arena of its own (up to 8 per core), and each keeps what it once held: with 1,000 workers
 * the V8 platform's and the spawner's threads held 4-5.5 MB in four arenas after three
 * upgrades (RSS 65.7 MB; 61.6 with the cap; the main arena itself grew by 0.1 MB). A thread
 * that already has an arena keeps it (V8's own, from Node's start-up: one, ~1.4 MB).
 * False where refused (not glibc).
 */
export function capMallocArenas(): boolean {
  try {
    return native.mallocArenaMax(1);
  } catch {
    return false;
  }
}

type Gc = () => void;
/** Made at the first compaction (by any keeper): the context it lives in costs ~2 MB of start-up RSS. */
let gc: Gc | null | undefined = undefined;

/** Workers coming or going at once, past which the young generation is kept at its initial size. */
const BURST = 16;
/** Children's output passed through this process (bytes) that asks for a compaction. */
export const OUTPUT_BURST = 1 << 20;
let youngKeptSmall = false;

/** The young generation does not grow past its initial size from now on. */
function keepYoungGenerationSmall(): void {
  if (youngKeptSmall) return;
  youngKeptSmall = true;
  try {
    (load('node:v8') as typeof import('node:v8')).setFlagsFromString('--semi-space-growth-factor=1');
  } catch {
    /* a Node without this flag: the semi-spaces may grow */
  }
}

function gcFunction(): Gc | null {
  if (gc === undefined) {
    keepYoungGenerationSmall();
    try {
      const v8 = load('node:v8') as typeof import('node:v8');
      v8.setFlagsFromString('--expose-gc');
      const full = (load('node:vm') as typeof import('node:vm')).runInNewContext('gc') as Gc;
      // This GC also compacts the old generation: without it each upgrade left it more
      // fragmented and V8 kept the pages (1,000 workers, 6 upgrades: RSS 63.8 -> 66.8 MB and
      // still growing; with it 61.1 -> 62.4, flat from the second). Only this one: with every
      // full GC compacting (V8's own idle-time ones too) the idle master of 1,000 workers
      // used 50 ms of CPU per 10 s instead of 0.
      gc = () => {
        v8.setFlagsFromString('--compact-on-every-full-gc');
        try {
          full();
        } finally {
          v8.setFlagsFromString('--no-compact-on-every-full-gc');
        }
      };
    } catch {
      gc = null; // a Node without these flags: only malloc_trim
    }
  }
  return gc;
}

/**
 * Keeps the master's resident memory flat over many upgrades. The master allocates little,
 * but each upgrade's garbage is promoted and V8 collects its old generation only when that
 * reaches a limit that grows with it (RSS grew ~7 MiB from upgrade 50 to 350 and on), and
 * the young generation grows its semi-spaces under bursts. So: the young generation does
 * not grow past its initial size (from the first burst of 16 workers or the first compaction on),
 * and 2 s after workers start or exit (at most once per 2 s), or, when they are not settled
 * then (spawning, starting or stopping: in the middle of a burst), 2 s after they are, a full GC runs
 * that compacts the old generation, and glibc returns free pages (malloc_trim). The control server has one
 * too: it compacts 2 s after the last client that had much output built or queued for it
 * (one that never read its replies) is gone.
 */
export class MemoryKeeper {
  private timer: NodeJS.Timeout | null = null;
  /** How long the due compaction has waited for the workers to settle. */
  private deferredMs = 0;

  /**
   * `settled`: whether the workers are settled (nothing spawning, starting or stopping, no
   * upgrade): a compaction due while they are not waits until they are (at most
   * MAX_DEFER_MS). The compacting full GC holds the event loop for tens of ms (325 ms on a
   * loaded machine at 1,000 workers), and 2 s after the first worker of a burst of 1,000 is
   * in the middle of it: the ACKs and every operator's command waited behind it.
   */
  constructor(private readonly settled: () => boolean = () => true) {}

  /** Pokes since the last compaction. */
  private pokes = 0;
  /** Children's output passed through since the last compaction (bytes). */
  private outputBytes = 0;

  /**
   * A worker started: a burst of them (16 before a compaction) is compacted after like exits
   * are; a few (a small master's start-up) are not, so its RSS stays that of start-up.
   */
  spawned(): void {
    if (this.pokes + 1 >= BURST) this.poke();
    else this.pokes++;
  }

  /** Workers came or went: compact soon. */
  poke(): void {
    // A burst (16 workers or more before the compaction): the young generation keeps its
    // initial size from now on, not only from the first compaction on. Spawning 1,000 grew its
    // semi-spaces by ~13 MB that stayed (RSS at 1,000 workers 75 -> 62 MB). Not earlier: node:v8
    // costs ~0.4 MB, for nothing in a master of a few workers.
    if (++this.pokes === BURST) keepYoungGenerationSmall();
    if (this.timer) return;
    this.deferredMs = 0;
    this.arm(COMPACT_AFTER_MS);
  }

  private arm(ms: number, waited = false): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.deferredMs < MAX_DEFER_MS && !this.settled()) {
        this.deferredMs += SETTLE_CHECK_MS;
        this.arm(SETTLE_CHECK_MS, true);
        return;
      }
      // Settled after a wait: COMPACT_AFTER_MS more, as after the last exit of a small burst
      // (what the burst's last replies and the operators' first commands leave is collected too).
      if (waited && this.deferredMs < MAX_DEFER_MS) {
        this.deferredMs += COMPACT_AFTER_MS;
        this.arm(COMPACT_AFTER_MS);
        return;
      }
      this.compact();
    }, ms);
    this.timer.unref();
  }

  /**
   * Children's output read by this process (the dyno driver's log files and labelled lines):
   * every read leaves a buffer that V8 frees only at a later GC and that glibc then keeps
   * (measured: 20,000 lines, 2 MB, through the driver's log files left it 5-6 MB bigger for
   * good). Each MiB of it is compacted after, as a burst of workers is: at most once per 2 s
   * while output flows, and 2 s after it stops.
   */
  output(bytes: number): void {
    this.outputBytes += bytes;
    if (this.outputBytes < OUTPUT_BURST) return;
    this.outputBytes = 0;
    this.poke();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  compact(): void {
    this.pokes = 0;
    this.outputBytes = 0;
    this.collect();
  }

  /** A full GC that compacts, then glibc's malloc_trim. */
  protected collect(): void {
    const t0 = probeStart();
    gcFunction()?.();
    try {
      native.mallocTrim();
    } catch {
      /* not glibc */
    }
    probe?.task('compact', t0);
  }
}
