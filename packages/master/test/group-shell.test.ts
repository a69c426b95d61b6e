import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CoreConfig, CoreSnapshot, Event, WorkerView } from '@einhyrningsins/core';
import { DEFAULT_CONFIG } from '@einhyrningsins/core';
import { GroupShell, type GroupView } from '../src/host/group-shell.js';
import { Logger } from '../src/log.js';

// At 1,000 workers a copy of every worker's state at each spawn (for the boot priority) and
// at each exit (for the slot's history) made spawning and upgrading O(n^2) in copies and
// garbage: the shell now asks for the one worker it needs. Counted, not timed.
test('the shell spawns and notes exits without a snapshot of every worker', async () => {
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
        log: new Logger(0, process.pid, () => {}),
      },
      view,
      (ev: Event) => {
        if (ev.type === 'spawned') {
          workers.set(ev.id, { id: ev.id, pid: ev.pid, slot: ev.id, generation: 0, state: 'up' } as WorkerView);
        } else if (ev.type === 'exited') {
          shell.before(ev); // what the runtime does before the engine hears of an exit
          if (++exited === n) resolve();
        } else if (ev.type === 'spawnFailed') assert.fail(`spawn failed: ${ev.error}`);
      },
      () => 0,
    );
    for (let id = 1; id <= n; id++) {
      // The engine knows a worker from its spawn effect on (its pid comes back in a later turn).
      workers.set(id, { id, pid: null, slot: id, generation: 0, state: 'starting' } as unknown as WorkerView);
      shell.apply({ type: 'spawn', id, slot: id, generation: 0 });
    }
  });
  await done;
  assert.equal(snapshots, 0, `snapshots of every worker taken for ${n} spawns and exits`);
});
