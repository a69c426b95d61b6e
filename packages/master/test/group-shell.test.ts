import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CoreConfig, CoreSnapshot, Event, WorkerView } from '@einhyrningsins/core';
import { DEFAULT_CONFIG } from '@einhyrningsins/core';
import { GroupShell, type GroupView } from '../src/host/group-shell.js';
import { Logger } from '../src/log.js';

// At 1,000 workers a copy of every worker's state at each spawn (for the boot priority) and
// at each exit (for the slot's history) made spawning and upgrading O(n^2) in copies and
// garbage: the shell now asks for the one worker it needs. Counted, not timed.
for (const upgradeNice of [0, 10]) {
test(`the shell spawns and notes exits without a snapshot of every worker${upgradeNice ? ', booting workers niced during an upgrade (--upgrade-nice)' : ''}`, async (t) => {
  // --upgrade-nice lowers a booting worker's priority only where it can raise it back (root here).
  if (upgradeNice && process.getuid?.() !== 0) return t.skip('--upgrade-nice needs root to give the priority back');
  const generation = upgradeNice ? 1 : 0;
  let snapshots = 0;
  const workers = new Map<number, WorkerView>();
  const view: GroupView = {
    snapshot: () => {
      snapshots += 1;
      return { config: { ...DEFAULT_CONFIG }, workers: [...workers.values()] } as unknown as CoreSnapshot;
    },
    worker: (ref) => ('pid' in ref ? [...workers.values()].find((w) => w.pid === ref.pid) : workers.get(ref.id)),
    config: () => ({ ...DEFAULT_CONFIG }) as CoreConfig,
    shuttingDown: () => null,
    // An upgrade's spawns: generation 0 is up and serving.
    olderUp: (g) => g > 0,
  };
  const n = 12;
  let exited = 0;
  const done = new Promise<void>((resolve) => {
    const shell: GroupShell = new GroupShell(
      {
        name: '',
        core: {},
        launch: { program: 'true', args: [], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, dropEnv: [], cwd: process.cwd() },
        listeners: [],
        socketPath: '/nonexistent/ein.sock',
        killChildrenOnExit: false,
        upgradeNice,
        log: new Logger(0, process.pid, () => {}),
      },
      view,
      (ev: Event) => {
        if (ev.type === 'spawned') {
          workers.set(ev.id, { id: ev.id, pid: ev.pid, slot: ev.id, generation, state: 'up' } as WorkerView);
          shell.after(); // what the runtime does after every event (a niced worker up gets its priority back)
        } else if (ev.type === 'exited') {
          shell.before(ev); // what the runtime does before the engine hears of an exit
          if (++exited === n) resolve();
        } else if (ev.type === 'spawnFailed') assert.fail(`spawn failed: ${ev.error}`);
      },
      () => 0,
    );
    for (let id = 1; id <= n; id++) {
      // The engine knows a worker from its spawn effect on (its pid comes back in a later turn).
      workers.set(id, { id, pid: null, slot: id, generation, state: 'starting' } as unknown as WorkerView);
      shell.apply({ type: 'spawn', id, slot: id, generation });
    }
  });
  await done;
  assert.equal(snapshots, 0, `snapshots of every worker taken for ${n} spawns and exits`);
});
}

test("a live worker does not keep its spawn's environment (issue 24: every worker held a copy of the master's, ~2.5 KB)", async () => {
  // What the heap snapshot of a master of 1,000 workers showed: 1,000 copies of every
  // variable's value, kept by spawn()'s context through the worker's exit handler.
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const { spawner } = await import('../src/host/spawner.js');
  let envRef: WeakRef<object> | null = null;
  const start = spawner.start.bind(spawner);
  spawner.start = (spec, done) => {
    envRef = new WeakRef(spec.env);
    start(spec, done);
  };
  const workers = new Map<number, WorkerView>();
  const view: GroupView = {
    snapshot: () => ({ config: { ...DEFAULT_CONFIG }, workers: [...workers.values()] }) as unknown as CoreSnapshot,
    worker: (ref) => ('pid' in ref ? [...workers.values()].find((w) => w.pid === ref.pid) : workers.get(ref.id)),
    config: () => ({ ...DEFAULT_CONFIG }) as CoreConfig,
    shuttingDown: () => null,
    olderUp: () => false,
  };
  let pid = 0;
  let exited: () => void = () => {};
  const gone = new Promise<void>((r) => (exited = r));
  try {
    await new Promise<void>((resolve, reject) => {
      const shell: GroupShell = new GroupShell(
        {
          name: '',
          core: {},
          launch: { program: 'sleep', args: ['30'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MARK: 'x'.repeat(64) }, dropEnv: [], cwd: process.cwd() },
          listeners: [],
          socketPath: '/nonexistent/ein.sock',
          killChildrenOnExit: false,
          upgradeNice: 0,
          // Debug on: the spawn's debug line reads the environment too.
          log: new Logger(-1, process.pid, () => {}),
        },
        view,
        (ev: Event) => {
          if (ev.type === 'spawned') {
            pid = ev.pid;
            workers.set(ev.id, { id: ev.id, pid: ev.pid, slot: 1, generation: 0, state: 'up' } as WorkerView);
            resolve();
          } else if (ev.type === 'exited') exited();
          else if (ev.type === 'spawnFailed') reject(new Error(ev.error));
        },
        () => 0,
      );
      workers.set(1, { id: 1, pid: null, slot: 1, generation: 0, state: 'starting' } as unknown as WorkerView);
      shell.apply({ type: 'spawn', id: 1, slot: 1, generation: 0 });
    });
    assert.ok(envRef, 'the spawn went through spawner.start');
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    assert.equal((envRef as WeakRef<object>).deref(), undefined, 'the live worker still holds the environment it was spawned with');
  } finally {
    spawner.start = start;
    if (pid) process.kill(pid, 'SIGKILL');
  }
  await gone;
});

/** A shell over `n` spawns of `true`, its workers' spawns and exits counted; `runnable`: the machine's runnable threads as the shell reads them. */
function countingShell(runnable: () => number, maxHoldMs: number, lines: string[], paced = true) {
  const workers = new Map<number, WorkerView>();
  const counts = { spawned: 0, exited: 0 };
  const view: GroupView = {
    snapshot: () => ({ config: { ...DEFAULT_CONFIG }, workers: [...workers.values()] }) as unknown as CoreSnapshot,
    worker: (ref) => ('pid' in ref ? [...workers.values()].find((w) => w.pid === ref.pid) : workers.get(ref.id)),
    config: () => ({ ...DEFAULT_CONFIG }) as CoreConfig,
    shuttingDown: () => null,
    olderUp: () => false,
  };
  const shell: GroupShell = new GroupShell(
    {
      name: '',
      core: {},
      launch: { program: 'true', args: [], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, dropEnv: [], cwd: process.cwd() },
      listeners: [],
      socketPath: '/nonexistent/ein.sock',
      killChildrenOnExit: false,
      log: new Logger(0, process.pid, (l) => void lines.push(l)),
      spawnPace: paced ? { cpus: 2, perCpu: 4, maxHoldMs, retryMs: 1 } : null,
      runnableThreads: runnable,
    },
    view,
    (ev: Event) => {
      if (ev.type === 'spawned') {
        counts.spawned += 1;
        const w = [...workers.values()].find((x) => x.id === ev.id);
        if (w) workers.set(ev.id, { ...w, pid: ev.pid, state: 'up' } as WorkerView);
      } else if (ev.type === 'exited') counts.exited += 1;
      else if (ev.type === 'spawnFailed') assert.fail(`spawn failed: ${ev.error}`);
    },
    () => performance.now(),
  );
  const spawn = (n: number) => {
    for (let id = 1; id <= n; id++) {
      workers.set(id, { id, pid: null, slot: id, generation: 0, state: 'starting' } as unknown as WorkerView);
      shell.apply({ type: 'spawn', id, slot: id, generation: 0 });
    }
  };
  return { shell, counts, spawn };
}

const settle = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 2000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), what);
};

test('a burst of spawns waits while the machine has more runnable threads than its limit, and goes on once they are down', async () => {
  let busy = true;
  let reads = 0;
  // The base when the burst begins: 1 (this thread); then 100 runnable until `busy` is cleared.
  const lines: string[] = [];
  const s = countingShell(() => (reads++ === 0 ? 1 : busy ? 100 : 2), 60_000, lines);
  s.spawn(24);
  await settle('the first batch spawned', () => s.counts.spawned === 8);
  const seen = reads;
  await settle('the shell looked again while held', () => reads >= seen + 5);
  assert.equal(s.counts.spawned, 8, 'no spawn while over the limit');
  assert.match(lines.join(''), /DEBUG: Pacing spawns: 100 threads runnable on the machine \(limit 9 for this burst\); 16 waiting/);
  busy = false;
  await settle('every worker spawned', () => s.counts.spawned === 24);
  await settle('every worker exited', () => s.counts.exited === 24);
  s.shell.stopTimers();
});

test('a held batch of spawns goes anyway after the longest hold (other load never stalls a burst)', async () => {
  let reads = 0;
  const lines: string[] = [];
  const s = countingShell(() => (reads++ === 0 ? 1 : 100), 15, lines);
  s.spawn(32);
  await settle('every worker spawned', () => s.counts.spawned === 32);
  // Three batches held (the first went at once), each looked at more than once.
  assert.ok(reads >= 1 + 3 * 2, `runnable threads read ${reads} times`);
  await settle('every worker exited', () => s.counts.exited === 32);
  s.shell.stopTimers();
});

test('spawns are not paced when pacing is off, nor when the machine is not busy', async () => {
  for (const [pace, runnable] of [[false, 100], [true, 1]] as const) {
    const lines: string[] = [];
    let reads = 0;
    const s = countingShell(() => (reads++, runnable), 60_000, lines, pace);
    s.spawn(24);
    await settle('every worker spawned', () => s.counts.spawned === 24);
    assert.doesNotMatch(lines.join(''), /Pacing spawns/);
    assert.equal(reads, pace ? 3 : 0, 'the burst base and one look per batch after the first');
    await settle('every worker exited', () => s.counts.exited === 24);
    s.shell.stopTimers();
  }
});
