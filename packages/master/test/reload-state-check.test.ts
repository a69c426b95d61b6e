import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { checkOwnChildren, workerPids } from '../src/reload-state-check.js';
import { StateError, checkShape, coreShape, fleetShape, list, obj, int, record, str, tuple, variant } from '../src/shape-check.js';

const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof StateError && re.test(e.message));

test('a snapshot naming pid 1, 0, a negative pid or this process as a worker is refused before anything is signalled', () => {
  // The runtime signals a worker's process group: kill(-1) would reach every process.
  for (const pid of [1, 0, -1, -5, process.pid]) refused(() => checkOwnChildren([[pid, 'state.core.workers[0].pid']]), new RegExp(`^state\\.core\\.workers\\[0\\]\\.pid is ${pid}, which cannot be a worker$`));
});

test('a live worker that is not our child (our parent) is refused; our own child passes, and a pid nobody has (reaped during the exec)', async () => {
  refused(() => checkOwnChildren([[process.ppid, 'w']]), /^w is \d+, which is not a child of this process$/);
  // A --reexec-as wrapper (sh -c) may reap a worker that died during the exec: it is gone, the new image sees it exit.
  checkOwnChildren([[4_194_304 + 7, 'w']]);
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  try {
    checkOwnChildren([[child.pid as number, 'w']]);
  } finally {
    child.kill('SIGKILL');
  }
  await new Promise((r) => child.once('exit', r));
});

test('workerPids lists every pid of one engine or of every group of a fleet, with where it is', () => {
  const core = (pids: Array<number | null>) => ({ workers: pids.map((pid) => ({ pid })) }) as never;
  assert.deepEqual(workerPids({ format: 1, ...(core([10, null, 12]) as object) } as never, 'state.core'), [
    [10, 'state.core.workers[0].pid'],
    [12, 'state.core.workers[2].pid'],
  ]);
  const fleet = { format: 'fleet-1', groups: [{ core: core([20]) }, { core: core([]) }, { core: core([null, 31]) }] } as never;
  assert.deepEqual(workerPids(fleet, 'state.fleet'), [
    [20, 'state.fleet.groups[0].core.workers[0].pid'],
    [31, 'state.fleet.groups[2].core.workers[1].pid'],
  ]);
});

test('the shape checks name the first bad field with its path', () => {
  refused(() => checkShape({ a: [1, 'x'] }, obj({ a: list(int) })), /^state\.a\[1\] is "x", expected an integer$/);
  refused(() => checkShape({ m: { k: 5 } }, obj({ m: record(str) })), /^state\.m\["k"\] is 5, expected a string$/);
  refused(() => checkShape([1], tuple(int, int)), /^state is a list, expected a list of 2$/);
  refused(() => checkShape({ kind: 'odd' }, variant('kind', [['a', obj({})]])), /^state\.kind is "odd", expected one of "a"$/);
  refused(() => checkShape({ kind: 'a', n: null }, variant('kind', [['a', obj({ n: int })]])), /^state\.n is null, expected an integer$/);
  refused(() => checkShape({ format: 1, cfg: { number: 1, ackMode: { kind: 'timer', ms: 1 }, retries: -2 } }, coreShape, 'core'), /^core\.cfg\.retries is -2, expected a whole number or -1 \(no limit\)$/);
  refused(() => checkShape({ format: 'fleet-1', shutdowns: 0, oneshotStatus: 0, nextGid: 1, groups: [{}] }, fleetShape), /^state\.fleet\.groups|^state\.groups\[0\]\.gid is undefined, expected an integer$/);
});
