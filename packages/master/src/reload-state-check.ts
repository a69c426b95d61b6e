/**
 * The reload snapshot checked whole before the new image acts on any of it: a state that
 * is not what a master of ours wrote (`--with-state-fd` run by hand, a truncated memfd)
 * is refused with one line naming the first bad field, never a stack trace, and before
 * an fd is adopted, a file touched or a worker adopted. Pure but for {@link checkStateFds}. The field checks
 * and the shapes both programs share are shape-check.ts's.
 */
import * as native from 'native-reuseport';
import { statFields } from './proc-stat.js';
import type { ReloadState } from './reload-state.js';
import { readSnapshot } from './reload.js';
import { StateError, connectionShape, controlShape, engineShape, fd, int, isObj, list, nullable, num, obj, oneOf, optional, pattern, slotsShape, str, type Check } from './shape-check.js';

export { StateError };
export type { Check } from './shape-check.js';

const sha256 = pattern(/^[0-9a-f]{64}$/, 'a SHA-256 (64 hex digits)');

/** The fetcher's memory (fetch-policy.ts FetchMemory): also in the dyno driver's snapshot, per program. */
export const fetchMemory: Check = obj({ url: str, seenKey: nullable(str), refused: list(sha256) });

const state = obj({
  format: oneOf(1),
  version: str,
  wall: num,
  monotonic: optional(num),
  argv: list(str),
  startedAtWall: num,
  reloads: int,
  sockets: list(
    obj({
      fd,
      family: oneOf(4, 6, 'unix'),
      text: str,
      address: str,
      port: int,
      flags: list(str),
      unixFile: nullable(obj({ path: str, ino: num })),
    }),
  ),
  control: controlShape,
  connections: list(connectionShape),
  lockfile: nullable(obj({ fd, path: str })),
  pidfile: nullable(str),
  verbosity: num,
  core: engineShape,
  slots: optional(slotsShape),
  fetch: optional(fetchMemory),
  then: optional(oneOf('upgrade')),
});

/** The parsed snapshot, if it has every field a master of ours writes; else a StateError naming the first bad one. */
export function checkState(value: unknown): ReloadState {
  if (isObj(value) && value.format !== 1 && value.format !== undefined) {
    throw new StateError(`unknown reload state format ${JSON.stringify(value.format)}`);
  }
  state(value, 'state');
  return value as unknown as ReloadState;
}

/** Every fd the snapshot names is open and what it should be (listening sockets listen); every worker is our child. */
export function checkStateFds(s: ReloadState): void {
  const info = openFd;
  for (const x of s.sockets) {
    if (!info(x.fd, x.text).listening) throw new StateError(`fd ${x.fd} (${x.text}) is not a listening socket`);
  }
  if (!info(s.control.fd, 'the control socket').listening) throw new StateError(`fd ${s.control.fd} (the control socket) is not a listening socket`);
  for (const c of s.connections) info(c.fd, 'a control connection');
  if (s.lockfile) info(s.lockfile.fd, `the lockfile ${s.lockfile.path}`);
  checkOwnChildren(workerPids(s.core, 'state.core'));
}

/** What fd `n` of the snapshot (`what`) is; a StateError when it is not open. */
export function openFd(n: number, what: string): native.FdInfo {
  try {
    return native.fdInfo(n);
  } catch {
    throw new StateError(`fd ${n} (${what}) is not open`);
  }
}

/** Every worker pid an engine of the snapshot names, with where. */
export function workerPids(engine: ReloadState['core'], at: string): Array<[number, string]> {
  const groups = engine.format === 'fleet-1' ? engine.groups.map((g, i) => [g.core, `${at}.groups[${i}].core`] as const) : [[engine, at] as const];
  return groups.flatMap(([core, where]) => core.workers.flatMap((w, i): Array<[number, string]> => (w.pid === null ? [] : [[w.pid, `${where}.workers[${i}].pid`]])));
}

/**
 * Every worker the snapshot names is a child of this process, as a real reload's are (the
 * same process: the exec keeps them; one that died meanwhile is a zombie child until it is
 * reaped), or gone (reaped during the exec by a `--reexec-as` wrapper such as `sh -c`: the
 * new image sees it as exited). A live process that is not our child is refused before
 * anything is adopted, and so are pid 1, 0, negative pids and our own: the runtime signals a
 * worker's process group when it stops it, so a hand-made snapshot naming pid 1 (kill(-1):
 * every process) or another process must never be taken for a worker.
 */
export function checkOwnChildren(pids: ReadonlyArray<readonly [number, string]>): void {
  for (const [pid, at] of pids) {
    if (pid <= 1 || pid === process.pid) throw new StateError(`${at} is ${pid}, which cannot be a worker`);
    const f = statFields(pid);
    if (f && Number(f[1]) !== process.pid) throw new StateError(`${at} is ${pid}, which is not a child of this process`);
  }
}

/** The master's snapshot, read from the fd the old image passed and checked whole before anything is adopted. */
export const readState = (fd: number): ReloadState =>
  readSnapshot(fd, (value) => {
    const state = checkState(value);
    checkStateFds(state);
    return state;
  });
