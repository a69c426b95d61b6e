import { createRequire } from 'node:module';
import * as native from 'native-reuseport';

// node:v8 and node:vm are loaded at the first compaction, not at start-up (they cost
// ~1 MB of the master's RSS there, for nothing until workers have come and gone).
const load = createRequire(import.meta.url);

/** At most one compaction this often, and always this soon after the last worker exit. */
const COMPACT_AFTER_MS = 2000;

type Gc = () => void;
/** Made at the first compaction (by any keeper): the context it lives in costs ~2 MB of start-up RSS. */
let gc: Gc | null | undefined = undefined;

function gcFunction(): Gc | null {
  if (gc === undefined) {
    try {
      const v8 = load('node:v8') as typeof import('node:v8');
      // From the first compaction on, the young generation keeps its initial size.
      v8.setFlagsFromString('--semi-space-growth-factor=1');
      v8.setFlagsFromString('--expose-gc');
      gc = (load('node:vm') as typeof import('node:vm')).runInNewContext('gc') as Gc;
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
 * not grow past its initial size, and within 2 s of worker exits (at most once per 2 s)
 * a full GC runs and glibc returns free pages (malloc_trim). The control server has one
 * too: it compacts 2 s after the last client that had much output built or queued for it
 * (one that never read its replies) is gone.
 */
export class MemoryKeeper {
  private timer: NodeJS.Timeout | null = null;

  /** Workers came or went: compact soon. */
  poke(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.compact();
    }, COMPACT_AFTER_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  compact(): void {
    gcFunction()?.();
    try {
      native.mallocTrim();
    } catch {
      /* not glibc */
    }
  }
}
