/**
 * The dyno driver's reload, black-box: its snapshot checked field by field before anything
 * is adopted (as the master's is), and a line a process wrote only in part before the
 * reload coming out whole after it.
 */
import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as native from 'native-reuseport';
import { cleanupAll, ctl, until } from './harness.js';
import { DYNO_BIN, baseEnv, newDir, q, startDriver, type DynoState } from './dyno-harness.js';
import { serializedCore } from './reload-states.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

// ---- the snapshot checked whole -----------------------------------------------------------

/** Pids of the processes with `marker` as an argument. */
function withMarker(marker: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'latin1').split('\0').includes(marker)) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * A snapshot with every field a driver writes: one type `worker` (quantity 1, no process
 * yet) of a Procfile release; the control socket at fd 4 (the test binds it, elsewhere
 * than the -d path). A driver given it as is runs the worker (the first test).
 */
function baseState(dir: string, marker: string): Record<string, unknown> {
  const proc = { type: 'worker', args: ['sleep', '1000', marker], quantity: 1 };
  return {
    format: 'dyno-1',
    version: '0.0.0',
    wall: Date.now(),
    monotonic: 0,
    reloads: 1,
    control: { fd: 4, path: join(dir, 'ctl.sock'), ino: 1 },
    connections: [],
    listener: null,
    release: { version: 1, releaseArgs: null, env: {}, slug: '', stack: '', processes: [proc], cwd: dir, slugKey: null },
    rejected: null,
    releasePhase: null,
    verbosity: 1,
    fleet: {
      format: 'fleet-1',
      shutdowns: 0,
      oneshotStatus: 0,
      nextGid: 2,
      groups: [
        {
          gid: 1,
          name: 'worker',
          retiring: false,
          quantity: 1,
          launchKey: '',
          core: serializedCore({ slots: 'named', drainSignal: 'SIGTERM' }),
        },
      ],
    },
    groups: { '1': { process: proc, releaseVersion: 1, slots: {} } },
    output: [],
  };
}

/** The driver started by hand with `--with-state-fd 3` on `state` (fd 4: a listening unix socket). */
function startWithState(dir: string, state: string) {
  writeFileSync(join(dir, 'Procfile'), 'worker: sleep 1000\n');
  const file = join(dir, 'state.json');
  writeFileSync(file, state);
  const stateFd = openSync(file, 'r');
  const control = native.listenUnix({ path: join(dir, 'other.sock'), backlog: 16, nonBlock: false });
  const p = spawn(process.execPath, [DYNO_BIN, '--with-state-fd', '3', 'start', '-d', join(dir, 'ctl.sock')], {
    cwd: dir,
    env: baseEnv(),
    stdio: ['ignore', 'pipe', 'pipe', stateFd, control],
  });
  closeSync(stateFd);
  native.close(control);
  let stderr = '';
  p.stderr!.on('data', (d) => (stderr += d));
  p.stdout!.resume();
  const exit = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  return { p, exit, stderr: () => stderr };
}

test('the driver given a whole snapshot by hand runs it (the base of the malformed cases is a valid one)', async () => {
  const dir = newDir();
  const marker = `0.${process.pid}099`; // sleep adds its arguments: a unique one
  const d = startWithState(dir, JSON.stringify(baseState(dir, marker)));
  try {
    // It serves the control socket it was given (bound at other.sock), with the type it was told of.
    const st = await until('the state over the adopted control socket', async () => {
      const [r] = await ctl(join(dir, 'other.sock'), 'state').catch(() => [null]);
      return (r as unknown as { state?: DynoState } | null)?.state ?? null;
    });
    assert.deepEqual(Object.keys(st.types), ['worker']);
    assert.equal(st.types.worker!.quantity, 1);
    // And runs it: a process of the snapshot's release starts.
    await ctl(join(dir, 'other.sock'), 'inc', ['worker']);
    await until(`the worker started (stderr: ${d.stderr()})`, () => (withMarker(marker).length >= 1 ? true : null), 20_000);
  } finally {
    d.p.kill('SIGTERM');
  }
  assert.equal(await d.exit, 0, d.stderr());
  assert.deepEqual(withMarker(marker), []);
  assert.equal(existsSync(join(dir, 'ctl.sock')), false);
});

type Change = (s: Record<string, any>) => void;
const cases: Array<[string, Change | null, RegExp]> = [
  ['not JSON', null, /not JSON/],
  ['another format', (s) => (s.format = 1), /unknown reload state format 1 \(this driver reads "dyno-1"\)/],
  ['fleet: {}', (s) => (s.fleet = {}), /state\.fleet\.format is undefined, expected one of "fleet-1"/],
  ['a worker pid that is a string', (s) => (s.fleet.groups[0].core.workers = [{ ...worker(), pid: 'x' }]), /state\.fleet\.groups\[0\]\.core\.workers\[0\]\.pid is "x", expected an integer/],
  ['a worker in no known state', (s) => (s.fleet.groups[0].core.workers = [{ ...worker(), state: 'dancing' }]), /state\.fleet\.groups\[0\]\.core\.workers\[0\]\.state is "dancing", expected one of/],
  ['a worker that is not the driver\'s child', (s) => (s.fleet.groups[0].core.workers = [worker()]), /state\.fleet\.groups\[0\]\.core\.workers\[0\]\.pid is \d+, which is not a child of this process/],
  ['a process type whose argv is a string', (s) => (s.release.processes[0].args = 'sleep 1000'), /state\.release\.processes\[0\]\.args is "sleep 1000", expected a list/],
  ['an environment value that is a number', (s) => (s.release.env = { PORT: 5000 }), /state\.release\.env\["PORT"\] is 5000, expected a string/],
  ['a group without its process definition', (s) => (s.groups = {}), /state\.fleet\.groups\[0\] \(gid 1, "worker"\) has no entry in state\.groups/],
  ['slots that are not records', (s) => (s.groups['1'].slots = { 1: 5 }), /state\.groups\["1"\]\.slots\["1"\] is 5, expected an object/],
  ['output fds of three', (s) => (s.output = [{ pid: strangerPid(), name: 'worker.1', fds: [null, null, null] }]), /state\.output\[0\]\.fds is a list, expected a list of 2/],
  ['a closed output fd', (s) => (s.output = [{ pid: strangerPid(), name: 'worker.1', fds: [987, null] }]), /fd 987 \(worker\.1's stdout\) is not open/],
  ['an output fd that is not a pipe', (s) => (s.output = [{ pid: strangerPid(), name: 'worker.1', fds: [4, null] }]), /fd 4 \(worker\.1's stdout\) is not a pipe/],
  ['a closed control connection', (s) => (s.connections = [{ fd: 986, boundPid: null, requester: true, requestId: null, streaming: false }]), /fd 986 \(a control connection\) is not open/],
  ['a fetch memory with a bad hash', (s) => (s.fetch = { web: { url: 'http://127.0.0.1:1/web', seenKey: null, refused: ['nothex'] } }), /state\.fetch\["web"\]\.refused\[0\] is "nothex", expected a SHA-256 \(64 hex digits\)/],
  ['a web socket that is not listening', (s) => (s.listener = { fd: 0, family: 4, address: '127.0.0.1', port: 5000 }), /fd 0 \(the web socket\) is not (open|a listening socket)/],
];

/**
 * A process that is not the driver's child, in a process group of its own: what a malformed
 * snapshot names as a worker (a driver that took it for one would signal its group; it must
 * be left alone).
 */
let stranger: ChildProcess | null = null;
function strangerPid(): number {
  stranger ??= spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  return stranger.pid as number;
}
after(() => {
  stranger?.kill('SIGKILL');
});

function worker(): Record<string, unknown> {
  return { id: 1, pid: strangerPid(), slot: 1, generation: 0, state: 'up', spawnedAt: 0, ackedAt: 0, ready: true, signaledAt: null, signals: [], stopReason: null, counted: false, pingedAt: null, pingRequestId: null };
}

for (const [what, change, error] of cases) {
  test(`--with-state-fd with a malformed driver snapshot (${what}): one line naming it, exit 1, nothing left behind`, async () => {
    const dir = newDir();
    const marker = `0.${process.pid}0${cases.findIndex((c) => c[0] === what)}`;
    const st = baseState(dir, marker);
    if (change) change(st);
    const d = startWithState(dir, change ? JSON.stringify(st) : '{"format": "dyno-1", "fleet": [');
    const killer = setTimeout(() => d.p.kill('SIGKILL'), 15_000);
    const code = await d.exit;
    clearTimeout(killer);
    const stderr = d.stderr();
    assert.equal(code, 1, stderr);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, /^einhyrningsins-dyno: cannot read the reload state on fd 3: /);
    assert.match(lines[0]!, error);
    assert.equal(existsSync(join(dir, 'ctl.sock')), false, 'no control socket file');
    assert.deepEqual(withMarker(marker), [], 'no process started');
    if (stranger) assert.equal(stranger.exitCode === null && stranger.signalCode === null, true, 'the stranger named as a worker left alone');
  });
}

// ---- a partial output line across a reload ------------------------------------------------

for (const kind of ['Procfile', '--config (AUTO log)'] as const) {
  test(`a line a process wrote only in part before a reload comes out whole after it, with its name, on stdout and on stderr (${kind})`, async () => {
    const dir = newDir();
    // One write each of "ready" + the start of a line (a UTF-8 character cut in two at its end),
    // then the rest of the line once `go` exists.
    writeFileSync(
      join(dir, 'part.mjs'),
      `import { existsSync, writeSync } from 'node:fs';
writeSync(1, Buffer.concat([Buffer.from('ready-out\\nstart of a line, caf'), Buffer.from([0xc3])]));
writeSync(2, 'ready-err\\nstart of an error, ');
const t = setInterval(() => {
  if (!existsSync('go')) return;
  clearInterval(t);
  writeSync(1, Buffer.concat([Buffer.from([0xa9]), Buffer.from(' end of the line\\n')]));
  writeSync(2, 'end of the error\\n');
}, 20);
`,
    );
    let d;
    if (kind === 'Procfile') {
      writeFileSync(join(dir, 'Procfile'), `worker: ${q(process.execPath)} part.mjs\n`);
      d = startDriver(['start', '-f', join(dir, 'Procfile')], { dir });
    } else {
      writeFileSync(join(dir, 'app.conf'), `[program:worker]\ncommand=${process.execPath} part.mjs\ndirectory=${dir}\nprocess_name=worker.1\n`);
      d = startDriver(['start', '--config', join(dir, 'app.conf')], { dir });
    }
    await d.ready({ worker: 1 });
    // The driver has read the start of each line (it came in the same write as the ready line).
    await d.waitOut(/worker\.1 \| ready-out\n/);
    await d.waitLog(/worker\.1 \| ready-err\n/);
    assert.match((await d.ctl('reload')).at(-1)!.message, /^Reload done: .*1 process adopted$/);
    writeFileSync(join(dir, 'go'), '');
    await d.waitOut(/end of the line/);
    await d.waitLog(/end of the error/);
    assert.match(d.stdout, /\nworker\.1 \| start of a line, café end of the line\n/);
    assert.match(d.stderr, /\nworker\.1 \| start of an error, end of the error\n/);
    assert.equal((d.stdout.match(/start of a line/g) ?? []).length, 1, d.stdout);
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
  });
}
