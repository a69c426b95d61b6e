/**
 * Checks of a parsed JSON value against the shape a program of ours writes, field by
 * field, for the reload snapshots of both programs (reload-state-check.ts for the
 * master, the dyno driver's dyno-state-check.ts): a value that is not what an image of
 * ours wrote (`--with-state-fd` run by hand, a truncated memfd) is refused with a
 * {@link StateError} naming the first bad field (`state.fleet.groups[0].core.nextId is
 * "x", expected an integer`), never a stack trace, and before anything is adopted.
 * The shapes every program's snapshot shares (an engine, a fleet, a control connection)
 * are here too. Pure.
 */

export class StateError extends Error {
  override name = 'StateError';
}

/** Throws a StateError naming `at` when `v` is not of the shape. */
export type Check = (v: unknown, at: string) => void;

const fail = (at: string, want: string, v: unknown): never => {
  const got = v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : JSON.stringify(v)?.slice(0, 40) ?? typeof v;
  throw new StateError(`${at} is ${got}, expected ${want}`);
};
export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const num: Check = (v, at) => void (typeof v === 'number' && Number.isFinite(v) ? 0 : fail(at, 'a number', v));
export const int: Check = (v, at) => void (Number.isSafeInteger(v) ? 0 : fail(at, 'an integer', v));
export const fd: Check = (v, at) => void (Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < 1 << 20 ? 0 : fail(at, 'a file descriptor number', v));
export const str: Check = (v, at) => void (typeof v === 'string' ? 0 : fail(at, 'a string', v));
export const bool: Check = (v, at) => void (typeof v === 'boolean' ? 0 : fail(at, 'true or false', v));
export const strOrNum: Check = (v, at) => void (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) ? 0 : fail(at, 'a string or a number', v));
/** A string matching `re`; `want` says what that is ("a SHA-256 (64 hex digits)"). */
export const pattern =
  (re: RegExp, want: string): Check =>
  (v, at) =>
    void (typeof v === 'string' && re.test(v) ? 0 : fail(at, want, v));
export const anyObj: Check = (v, at) => void (isObj(v) ? 0 : fail(at, 'an object', v));
export const nullable =
  (c: Check): Check =>
  (v, at) =>
    v === null ? undefined : c(v, at);
export const optional =
  (c: Check): Check =>
  (v, at) =>
    v === undefined ? undefined : c(v, at);
export const oneOf =
  (...vals: unknown[]): Check =>
  (v, at) =>
    void (vals.includes(v) ? 0 : fail(at, `one of ${vals.map((x) => JSON.stringify(x)).join(', ')}`, v));
export const list =
  (c: Check): Check =>
  (v, at) => {
    if (!Array.isArray(v)) fail(at, 'a list', v);
    (v as unknown[]).forEach((x, i) => c(x, `${at}[${i}]`));
  };
/** A list of exactly these, in this order. */
export const tuple =
  (...cs: Check[]): Check =>
  (v, at) => {
    if (!Array.isArray(v) || v.length !== cs.length) fail(at, `a list of ${cs.length}`, v);
    cs.forEach((c, i) => c((v as unknown[])[i], `${at}[${i}]`));
  };
/** An object with (at least) these fields. */
export const obj =
  (fields: Record<string, Check>): Check =>
  (v, at) => {
    if (!isObj(v)) fail(at, 'an object', v);
    for (const [k, c] of Object.entries(fields)) c((v as Record<string, unknown>)[k], `${at}.${k}`);
  };
/** An object used as a map: every value of the shape. */
export const record =
  (c: Check): Check =>
  (v, at) => {
    if (!isObj(v)) fail(at, 'an object', v);
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) c(x, `${at}[${JSON.stringify(k)}]`);
  };
/** One of several shapes told apart by the field `key` (`kind`, `format`): pairs of its value and the shape. */
export const variant =
  (key: string, shapes: ReadonlyArray<readonly [string | number, Check]>): Check =>
  (v, at) => {
    if (!isObj(v)) fail(at, 'an object', v);
    const tag = (v as Record<string, unknown>)[key];
    const shape = shapes.find(([t]) => t === tag)?.[1];
    if (!shape) return void oneOf(...shapes.map(([t]) => t))(tag, `${at}.${key}`);
    shape(v, at);
  };

// ---- what both programs' snapshots hold ------------------------------------------------

/** A count that JSON cannot write as Infinity: -1 stands for it (supervisor.ts's `finite`). */
const count: Check = (v, at) => void (Number.isSafeInteger(v) && (v as number) >= -1 ? 0 : fail(at, 'a whole number or -1 (no limit)', v));

/** One worker of an engine (core-state.ts's Worker, times as ages). */
export const workerShape = obj({
  id: int,
  pid: nullable(int),
  slot: int,
  generation: int,
  state: oneOf('starting', 'up', 'stopping', 'killed'),
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

/**
 * One engine (SerializedCore). Configuration fields the engine defaults when absent are
 * optional (an older image may not have written them), but checked when present.
 */
export const coreShape = obj({
  format: oneOf(1),
  cfg: obj({
    number: int,
    ackMode: variant('kind', [
      ['timer', obj({ ms: num })],
      ['manual', obj({ deadlineMs: num })],
    ]),
    retries: count,
    maxUnacked: count,
    maxUpgradeAdditional: count,
    upgradeRetries: optional(num),
    respawnDelayMs: optional(num),
    backoffCapMs: optional(num),
    stableAfterMs: optional(num),
    minReadyMs: optional(num),
    signalTimeoutMs: optional(nullable(num)),
    drainSignal: optional(str),
    slots: optional(oneOf('unique', 'named')),
    respawn: optional(bool),
    autorestart: optional(oneOf('true', 'false', 'unexpected')),
    exitcodes: optional(list(int)),
  }),
  workers: list(workerShape),
  nextId: int,
  generation: int,
  streak: int,
  lastFailureAge: num,
  lastProbeAckAge: optional(num),
  gaveUp: bool,
  shuttingDown: nullable(str),
  started: bool,
  upgrade: nullable(obj({ mode: oneOf('smooth', 'fleet'), generation: int, startedAt: num, failures: int, waiters: list(int) })),
  lastUpgrade: nullable(obj({ generation: int, ok: bool, message: str, finishedAt: num })),
  respawnAge: nullable(num),
  ackHelpShown: optional(bool),
});

/** Many groups' engines (SerializedFleet). */
export const fleetShape = obj({
  format: oneOf('fleet-1'),
  shutdowns: int,
  oneshotStatus: int,
  nextGid: int,
  groups: list(obj({ gid: int, name: str, retiring: bool, quantity: int, launchKey: str, core: coreShape })),
});

/** The engine of a reload snapshot: one group's (SerializedCore) or a fleet's. */
export const engineShape = variant('format', [
  [1, coreShape],
  ['fleet-1', fleetShape],
]);

/** An open control connection across the exec (reload-state.ts's ConnectionSnapshot). */
export const connectionShape = obj({
  fd,
  boundPid: nullable(int),
  unparsed: optional(str),
  requester: bool,
  requestId: nullable(strOrNum),
  streaming: bool,
});

/** Per-slot history (slot-history.ts's SlotRecord), by slot. */
export const slotsShape = record(obj({ restarts: int, lastExit: nullable(str) }));

/** The control socket across the exec. */
export const controlShape = obj({ fd, path: str, ino: num });

/** `value` if it is of `shape` (checked whole), else a StateError naming the first bad field. */
export function checkShape<T>(value: unknown, shape: Check, at = 'state'): T {
  shape(value, at);
  return value as T;
}
