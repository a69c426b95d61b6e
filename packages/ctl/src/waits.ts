/**
 * Client-side waits for orchestrators and deploy scripts, built on `status`:
 * `wait-ready` (every wanted worker up, no upgrade running) and the end of
 * `upgrade --wait-exit` (no worker of an older generation left).
 */
import { ControlClient, type Reply } from './client.js';

interface StatusState {
  number: number;
  generation: number;
  upgrading: boolean;
  shutting_down?: boolean;
  workers: Array<{ pid: number; generation: number; state: string }>;
}

async function status(client: ControlClient): Promise<StatusState | null> {
  let last: Reply | null = null;
  for await (const r of client.request('status', [])) last = r;
  const st = (last as (Reply & { state?: StatusState }) | null)?.state;
  return st && Array.isArray(st.workers) ? st : null;
}

export function readiness(st: StatusState): { ready: boolean; text: string } {
  const up = st.workers.filter((w) => w.generation === st.generation && w.state === 'up').length;
  const ready = up >= st.number && !st.upgrading && !st.shutting_down;
  return { ready, text: `${up}/${st.number} workers up, generation ${st.generation}${st.upgrading ? ', upgrading' : ''}` };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll until ready or `timeoutMs`; a master that is not there yet (starting up,
 * reloading) is retried. Returns the exit status: 0 ready, 1 timed out, 3 the
 * master does not tell its workers (not einhyrningsins).
 */
export async function waitReady(connect: () => Promise<ControlClient>, timeoutMs: number, say: (line: string) => void): Promise<number> {
  const end = Date.now() + timeoutMs;
  let last = 'no master answered';
  for (;;) {
    let client: ControlClient | null = null;
    try {
      client = await connect();
      for (;;) {
        const st = await status(client);
        if (st === null) {
          say('wait-ready: the master does not report its workers in `status` (not einhyrningsins?)');
          return 3;
        }
        const r = readiness(st);
        last = r.text;
        if (r.ready) {
          say(`ready: ${r.text}`);
          return 0;
        }
        if (Date.now() > end) break;
        await sleep(100);
      }
    } catch (err) {
      last = (err as Error).message;
    } finally {
      client?.close();
    }
    if (Date.now() > end) {
      say(`not ready after ${timeoutMs / 1000} s: ${last}`);
      return 1;
    }
    await sleep(100);
  }
}

/** After an upgrade: poll until no worker of a generation before `generation` is left. */
export async function waitOldGone(client: ControlClient, say: (line: string) => void): Promise<boolean> {
  for (;;) {
    const st = await status(client);
    if (st === null) return false;
    const old = st.workers.filter((w) => w.generation < st.generation);
    if (old.length === 0) {
      say(`Old workers gone (generation ${st.generation})`);
      return true;
    }
    await sleep(50);
  }
}
