/**
 * The reload snapshot checked whole before the new image acts on any of it: a state that
 * is not what a master of ours wrote (`--with-state-fd` run by hand, a truncated memfd)
 * is refused with one line naming the first bad field, never a stack trace, and before
 * an fd is adopted or a file touched. Pure but for {@link checkStateFds}.
 */
import * as native from 'native-reuseport';
import type { ReloadState } from './reload-state.js';

export type Check = (v: unknown, at: string) => void;

export class StateError extends Error {
  override name = 'StateError';
}

const fail = (at: string, want: string, v: unknown): never => {
  const got = v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : JSON.stringify(v)?.slice(0, 40) ?? typeof v;
  throw new StateError(`${at} is ${got}, expected ${want}`);
};
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const num: Check = (v, at) => void (typeof v === 'number' && Number.isFinite(v) ? 0 : fail(at, 'a number', v));
const int: Check = (v, at) => void (Number.isSafeInteger(v) ? 0 : fail(at, 'an integer', v));
const fd: Check = (v, at) => void (Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < 1 << 20 ? 0 : fail(at, 'a file descriptor number', v));
const str: Check = (v, at) => void (typeof v === 'string' ? 0 : fail(at, 'a string', v));
const bool: Check = (v, at) => void (typeof v === 'boolean' ? 0 : fail(at, 'true or false', v));
const nullable =
  (c: Check): Check =>
  (v, at) =>
    v === null ? undefined : c(v, at);
const optional =
  (c: Check): Check =>
  (v, at) =>
    v === undefined ? undefined : c(v, at);
const oneOf =
  (...vals: unknown[]): Check =>
  (v, at) =>
    void (vals.includes(v) ? 0 : fail(at, `one of ${vals.map((x) => JSON.stringify(x)).join(', ')}`, v));
const list =
  (c: Check): Check =>
  (v, at) => {
    if (!Array.isArray(v)) fail(at, 'a list', v);
    (v as unknown[]).forEach((x, i) => c(x, `${at}[${i}]`));
  };
const obj =
  (fields: Record<string, Check>): Check =>
  (v, at) => {
    if (!isObj(v)) fail(at, 'an object', v);
    for (const [k, c] of Object.entries(fields)) c((v as Record<string, unknown>)[k], `${at}.${k}`);
  };
const anyObj: Check = (v, at) => void (isObj(v) ? 0 : fail(at, 'an object', v));
const strOrNum: Check = (v, at) => void (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) ? 0 : fail(at, 'a string or a number', v));

const worker = obj({
  id: int,
  pid: nullable(int),
  slot: int,
  generation: int,
  state: str,
  spawnedAt: num,
  ackedAt: nullable(num),
  ready: bool,
  signaledAt: nullable(num),
  signals: list(str),
  stopReason: nullable(str),
  counted: bool,
  pingedAt: nullable(num),
  pingRequestId: nullable(strOrNum),
});

const core = obj({
  format: oneOf(1),
  cfg: obj({ number: int, ackMode: obj({ kind: str }), retries: num, maxUnacked: num, maxUpgradeAdditional: num }),
  workers: list(worker),
  nextId: int,
  generation: int,
  streak: int,
  lastFailureAge: num,
  lastProbeAckAge: optional(num),
  gaveUp: bool,
  shuttingDown: nullable(str),
  started: bool,
  upgrade: nullable(obj({ startedAt: num, generation: int })),
  lastUpgrade: nullable(obj({ finishedAt: num })),
  respawnAge: nullable(num),
});

const sha256: Check = (v, at) => void (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? 0 : fail(at, 'a SHA-256 (64 hex digits)', v));

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
  control: obj({ fd, path: str, ino: num }),
  connections: list(
    obj({ fd, boundPid: nullable(int), unparsed: optional(str), requester: bool, requestId: nullable(strOrNum), streaming: bool }),
  ),
  lockfile: nullable(obj({ fd, path: str })),
  pidfile: nullable(str),
  verbosity: num,
  core,
  slots: optional(anyObj),
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

/** Every fd the snapshot names is open and what it should be (listening sockets listen). */
export function checkStateFds(s: ReloadState): void {
  const info = (n: number, what: string) => {
    try {
      return native.fdInfo(n);
    } catch {
      throw new StateError(`fd ${n} (${what}) is not open`);
    }
  };
  for (const x of s.sockets) {
    if (!info(x.fd, x.text).listening) throw new StateError(`fd ${x.fd} (${x.text}) is not a listening socket`);
  }
  if (!info(s.control.fd, 'the control socket').listening) throw new StateError(`fd ${s.control.fd} (the control socket) is not a listening socket`);
  for (const c of s.connections) info(c.fd, 'a control connection');
  if (s.lockfile) info(s.lockfile.fd, `the lockfile ${s.lockfile.path}`);
}
