/**
 * The driver's reload snapshot (dyno-reload.ts) checked whole, field by field, before the
 * new image adopts any of it, as the master's is (master's reload-state-check.ts, with the
 * same field checks and the engine's shapes from its shape-check.ts): a snapshot that is
 * not what a driver of ours wrote (`--with-state-fd` run by hand, a truncated memfd) is
 * refused with one line naming the first bad field, before an fd is taken over, a socket
 * served or a process adopted. Pure but for {@link checkDynoStateFds}.
 */
import { fstatSync } from 'node:fs';
import * as native from 'native-reuseport';
import { HANDOFF_NAMES, StateError, checkFetchMemory, checkOwnChildren, openFd, shape, workerPids } from '@einhyrningsins/master';
import { DYNO_STATE_FORMAT as FORMAT, type DynoReloadState } from './dyno-reload-state.js';

const { bool, checkShape, connectionShape, controlShape, fd, fleetShape, int, isObj, list, nullable, num, obj, oneOf, optional, record, slotsShape, str, tuple, variant } = shape;

const env = record(str);

/** A config file's program (config/model.ts's ProgramConfig), as the release carries it. */
const processConfig = obj({
  name: str,
  program: str,
  group: str,
  processNum: int,
  command: str,
  argv: list(str),
  directory: nullable(str),
  umask: nullable(int),
  priority: num,
  autostart: bool,
  autorestart: oneOf('true', 'false', 'unexpected'),
  exitcodes: list(int),
  startsecs: num,
  startretries: int,
  user: nullable(obj({ name: str, uid: int, gid: int, home: str })),
  stopsignal: str,
  stopwaitsecs: num,
  stopasgroup: bool,
  killasgroup: bool,
  redirectStderr: bool,
  stdout: obj({ target: variant('kind', [['auto', obj({})], ['none', obj({})], ['file', obj({ path: str })]]), maxBytes: num, backups: int }),
  stderr: obj({ target: variant('kind', [['auto', obj({})], ['none', obj({})], ['file', obj({ path: str })]]), maxBytes: num, backups: int }),
  environment: env,
  socket: nullable(
    variant('kind', [
      ['tcp', obj({ text: str, host: str, port: int, reuseAddr: bool, nonBlock: bool, reusePort: bool })],
      ['unix', obj({ text: str, path: str, mode: nullable(int), nonBlock: bool })],
    ]),
  ),
  handoff: list(oneOf(...HANDOFF_NAMES)),
  ack: variant('kind', [
    ['manual', obj({})],
    ['timer', obj({ seconds: num })],
  ]),
});

const programConfig = obj({ name: str, group: str, loc: obj({ file: str, line: int }), priority: num, processes: list(processConfig) });

/** --config's part (config-control.ts's ConfigControlSnapshot): the model, the programs' sockets, their pipes. */
const configPart = obj({
  source: obj({
    model: nullable(
      obj({
        files: list(str),
        programs: list(programConfig),
        groups: list(obj({ name: str, priority: num, programs: list(str), explicit: bool, loc: obj({ file: str, line: int }) })),
        warnings: list(obj({ loc: obj({ file: str, line: int }), message: str })),
      }),
    ),
    sockets: list(obj({ text: str, listener: obj({ fd, family: oneOf(4, 6, 'unix') }), ino: nullable(num) })),
  }),
  pipes: list(obj({ pid: int, program: str, process: str, fds: tuple(nullable(fd), nullable(fd)), partial: optional(tuple(nullable(str), nullable(str))) })),
  exits: record(record(str)),
});

const processDef = obj({ type: str, args: list(str), quantity: int, program: optional(programConfig) });

const release = obj({
  version: int,
  releaseArgs: nullable(list(str)),
  env,
  slug: str,
  stack: str,
  processes: list(processDef),
  cwd: str,
  slugKey: nullable(str),
});

const fdOrNull = nullable(fd);

const dynoState = obj({
  format: oneOf(FORMAT),
  version: str,
  wall: num,
  monotonic: num,
  reloads: int,
  control: controlShape,
  connections: list(connectionShape),
  listener: nullable(obj({ fd, family: oneOf(4, 6), address: str, port: int })),
  release: nullable(release),
  rejected: nullable(obj({ file: str, reason: str, at: str })),
  releasePhase: nullable(obj({ version: int, ok: bool, status: str, at: str })),
  verbosity: num,
  fleet: fleetShape,
  groups: record(obj({ process: processDef, releaseVersion: int, slots: slotsShape })),
  output: list(obj({ pid: int, name: str, fds: tuple(fdOrNull, fdOrNull), partial: optional(tuple(nullable(str), nullable(str))) })),
  config: optional(nullable(configPart)),
  fetch: optional(record(checkFetchMemory)),
  http: optional(nullable(obj({ fd }))),
});

/** The parsed snapshot, if it has every field a driver of ours writes; else a StateError naming the first bad one. */
export function checkDynoState(value: unknown): DynoReloadState {
  if (!isObj(value) || value.format !== FORMAT) {
    const f = isObj(value) ? value.format : value;
    throw new StateError(`unknown reload state format ${JSON.stringify(f) ?? String(f)} (this driver reads ${JSON.stringify(FORMAT)})`);
  }
  const state = checkShape<DynoReloadState>(value, dynoState);
  // Every group of the fleet has its process definition (what the new image runs for it).
  for (const [i, g] of state.fleet.groups.entries()) {
    if (!Object.hasOwn(state.groups, String(g.gid))) throw new StateError(`state.fleet.groups[${i}] (gid ${g.gid}, ${JSON.stringify(g.name)}) has no entry in state.groups`);
  }
  return state;
}

/**
 * Every fd the snapshot names is open and what it should be: the sockets listen, the output
 * fds are pipes (or connected sockets, which is what Node's stdio pipes are); and every
 * process it names as a worker is this process's child (the master's checkOwnChildren:
 * never pid 1 or a stranger, whose process group would be signalled).
 */
export function checkDynoStateFds(s: DynoReloadState): void {
  const info = openFd;
  if (s.listener && !info(s.listener.fd, 'the web socket').listening) throw new StateError(`fd ${s.listener.fd} (the web socket) is not a listening socket`);
  if (!info(s.control.fd, 'the control socket').listening) throw new StateError(`fd ${s.control.fd} (the control socket) is not a listening socket`);
  if (s.http && !info(s.http.fd, 'the --http listener').listening) throw new StateError(`fd ${s.http.fd} (the --http listener) is not a listening socket`);
  for (const c of s.connections) info(c.fd, 'a control connection');
  const pipe = (n: number, what: string) => {
    // Node's stdio pipes are socket pairs; a FIFO is as good.
    let ok: boolean;
    try {
      const st = fstatSync(n);
      ok = st.isFIFO() || (st.isSocket() && !native.fdInfo(n).listening);
    } catch {
      throw new StateError(`fd ${n} (${what}) is not open`);
    }
    if (!ok) throw new StateError(`fd ${n} (${what}) is not a pipe`);
  };
  const stream = (i: number) => (i === 0 ? 'stdout' : 'stderr');
  for (const p of s.output) p.fds.forEach((n, i) => n !== null && pipe(n, `${p.name}'s ${stream(i)}`));
  for (const x of s.config?.source.sockets ?? []) {
    if (!info(x.listener.fd, x.text).listening) throw new StateError(`fd ${x.listener.fd} (${x.text}) is not a listening socket`);
  }
  for (const p of s.config?.pipes ?? []) p.fds.forEach((n, i) => n !== null && pipe(n, `${p.process}'s ${stream(i)}`));
  checkOwnChildren(workerPids(s.fleet, 'state.fleet'));
}
