/**
 * What an operator sees (issue 14), black-box: the status columns and the
 * failed-upgrade header, `status --json` and `--watch`, einhorn's 33 state keys
 * read with a real YAML parser, the ctl's refusals and hints, and the
 * interactive shell driven through a pseudo-terminal.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT, cleanupAll, fixture, startMaster, tempDir, until, type MasterProc } from './harness.js';

afterEach(async () => {
  const problems = await cleanupAll();
  assert.deepEqual(problems, [], 'nothing may be left behind');
});

const node = process.execPath;
const CTL = join(ROOT, 'bin', 'einhyrningsinsctl');

async function runCtl(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(node, [CTL, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => p.once('close', (c) => r(c)));
  clearTimeout(t);
  return { code, stdout, stderr };
}

const ctlOf = (m: MasterProc, ...args: string[]) => runCtl(['-d', m.sockPath, ...args]);

/** Workers that fail (exit 1 before their 0.5 s ack) while MARKER exists. */
function markerMaster(dir: string, marker: string, n = 2): MasterProc {
  return startMaster(['-n', String(n), '-r', '1', '-m', '0.5', '--', 'sh', '-c', 'if [ -e "$MARKER" ]; then exit 1; fi; exec sleep 1000'], {
    dir,
    env: { MARKER: marker },
  });
}

interface StatusWorker {
  pid: number;
  slot: number;
  generation: number;
  state: string;
  uptime_s: number;
  cpu_percent: number | null;
  rss_kb: number | null;
  restarts: number;
  last_exit: string | null;
}

test('status: a row per worker with uptime, CPU%, RSS, restarts and last exit; a failed upgrade says so until one succeeds', { timeout: 90_000 }, async () => {
  const dir = tempDir();
  const marker = join(dir, 'fail-now');
  const m = markerMaster(dir, marker);
  const ws = await m.ready(2);

  let r = await ctlOf(m, 'status');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  const header = lines.findIndex((l) => l.startsWith('PID'));
  assert.match(lines[header]!, /^PID +INDEX +GEN +STATE +UPTIME +CPU% +RSS +RESTARTS +LAST EXIT$/);
  for (const w of ws) {
    const row = lines.find((l) => l.startsWith(`${w.pid} `));
    assert.ok(row, `a row for ${w.pid}:\n${r.stdout}`);
    assert.match(row, new RegExp(`^${w.pid} +${w.slot} +0 +up +\\d+s +\\d+\\.\\d +[\\d.]+[KMG] +0 +-$`));
  }

  // A worker killed from outside: its slot counts a restart and shows how it ended.
  const victim = ws.find((w) => w.slot === 1)!;
  process.kill(victim.pid, 'SIGKILL');
  await until('the replacement', async () => {
    const now = await m.workers();
    return now.length === 2 && now.every((w) => w.state === 'up') && !now.some((w) => w.pid === victim.pid);
  });
  r = await ctlOf(m, 'status', '--json');
  assert.equal(r.code, 0, r.stderr);
  let st = JSON.parse(r.stdout) as { workers: StatusWorker[]; last_upgrade: unknown; workers_up: number };
  const slot1 = st.workers.find((w) => w.slot === 1)!;
  assert.equal(slot1.restarts, 1);
  assert.equal(slot1.last_exit, 'SIGKILL');
  const slot0 = st.workers.find((w) => w.slot === 0)!;
  assert.equal(slot0.restarts, 0);
  assert.ok(typeof slot0.cpu_percent === 'number' && slot0.cpu_percent >= 0);
  assert.ok(typeof slot0.rss_kb === 'number' && slot0.rss_kb > 0);
  assert.ok(slot0.uptime_s > 0);
  assert.equal(st.workers_up, 2);
  assert.equal(st.last_upgrade, null);

  // A failed upgrade: the header says it failed and why, and which generation serves.
  writeFileSync(marker, '');
  r = await ctlOf(m, 'upgrade');
  assert.equal(r.code, 1, r.stdout);
  r = await ctlOf(m, 'status');
  assert.match(r.stdout, /^workers: 2 up of 2 wanted, generation 0 serving \(current 1\)$/m);
  assert.match(r.stdout, /^last upgrade: FAILED \d+s ago, generation 1: Upgrade to generation 1 failed: .*exited before it was acked/m);
  r = await ctlOf(m, 'status', '--json');
  st = JSON.parse(r.stdout);
  const lu = st.last_upgrade as { ok: boolean; generation: number; message: string };
  assert.equal(lu.ok, false);
  assert.equal(lu.generation, 1);
  assert.match(lu.message, /failed/);

  // The next upgrade succeeds: the failure is gone from the header.
  rmSync(marker);
  r = await ctlOf(m, 'upgrade');
  assert.equal(r.code, 0, r.stdout);
  r = await ctlOf(m, 'status');
  assert.match(r.stdout, /^last upgrade: generation 2 succeeded \d+s ago$/m);
  assert.match(r.stdout, /^workers: 2 up of 2 wanted, generation 2$/m);
  assert.doesNotMatch(r.stdout, /FAILED/);
  await m.stop();
});

test('status --watch redraws until interrupted, then exits 0', { timeout: 60_000 }, async () => {
  const m = startMaster(['-n', '1', '-m', '0', '--', 'sleep', '1000']);
  await m.ready(1);
  const p = spawn(node, [CTL, '-d', m.sockPath, 'status', '--watch', '--interval', '0.2'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  const closed = new Promise<number | null>((r) => p.once('close', (c) => r(c)));
  try {
    await until('three frames', () => (out.match(/master pid \d+\n/g) ?? []).length >= 3, 15_000);
  } finally {
    p.kill('SIGINT');
  }
  assert.equal(await closed, 0);
  await m.stop();
});

/** einhorn's state keys (lib/einhorn.rb, State.default_state). */
const EINHORN_KEYS = [
  'children', 'config', 'versions', 'version', 'sockets', 'orig_cmd', 'bind', 'bind_fds', 'bound_ports', 'cmd',
  'script_name', 'respawn', 'upgrading', 'smooth_upgrade', 'reloading_for_upgrade', 'path', 'cmd_name', 'verbosity',
  'generation', 'last_spinup', 'ack_mode', 'kill_children_on_exit', 'command_socket_as_fd', 'socket_path', 'pidfile',
  'lockfile', 'consecutive_deaths_before_ack', 'last_upgraded', 'nice', 'reexec_commandline', 'drop_environment_variables',
  'signal_timeout', 'preloaded',
];

test("state: all of einhorn's 33 keys, symbol-keyed, read back by a YAML parser", { timeout: 60_000 }, async () => {
  const m = startMaster(
    ['-n', '2', '-b', '127.0.0.1:0,r', '-m', '0', '--drop-env-var', 'FOO', '--nice', '0:5', '-c', 'web', '--', 'sleep', '1000'],
  );
  await m.ready(2);
  const r = await ctlOf(m, 'state');
  assert.equal(r.code, 0, r.stderr);
  const doc = parse(r.stdout, { logLevel: 'error' }) as Record<string, Record<string, unknown>>;
  const state = doc[':state']!;
  assert.deepEqual(Object.keys(state).map((k) => k.replace(/^:/, '')), EINHORN_KEYS);
  assert.equal(EINHORN_KEYS.length, 33);
  const k = (name: string) => state[`:${name}`];
  assert.equal(k('preloaded'), false);
  assert.equal(k('script_name'), null);
  assert.equal(k('path'), null);
  assert.equal(k('reloading_for_upgrade'), false);
  assert.equal(k('command_socket_as_fd'), false);
  assert.equal(k('generation'), 0);
  assert.deepEqual(k('cmd'), ['sleep', '1000']);
  assert.deepEqual(k('cmd'), k('orig_cmd'));
  assert.deepEqual(k('drop_environment_variables'), ['FOO']);
  assert.deepEqual(k('versions'), {});
  const fds = k('bind_fds') as number[];
  assert.equal(fds.length, 1);
  assert.ok(Number.isInteger(fds[0]) && fds[0]! > 2);
  assert.deepEqual(k('nice'), { ':master': 0, ':worker': 5, ':renice_cmd': '/usr/bin/renice' });
  assert.equal(k('reexec_commandline'), null);
  assert.match(String(k('last_spinup')), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ Z$/);
  assert.equal(k('last_upgraded'), null);
  assert.equal(k('cmd_name'), 'web');
  assert.equal(Object.keys(k('children') as object).length, 2);
  await m.stop();
});

test('ctl: extra arguments are refused, a typo gets the nearest commands, not the whole help', { timeout: 60_000 }, async () => {
  const m = startMaster(['-n', '1', '-m', '0', '--', 'sleep', '1000']);
  await m.ready(1);
  let r = await ctlOf(m, 'dec', '5');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "dec takes no arguments (got '5'); usage: dec\n");
  assert.equal((await m.workers()).length, 1, 'nothing was done');
  r = await ctlOf(m, 'die', 'TERM', 'KILL');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "die: too many arguments ('KILL'); usage: die [SIGNAL]\n");
  r = await ctlOf(m, 'set_workers');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^Invalid count: ''/);
  // Names after status are the server's (a dyno --config's processes); the master takes none.
  r = await ctlOf(m, 'status', 'extra');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "status takes no arguments (got 'extra'); usage: status\n");
  r = await ctlOf(m, 'status', '--json', 'extra');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^einhyrningsinsctl: status: unknown argument 'extra'; usage: status \[--json\]/);
  r = await ctlOf(m, 'stauts');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, 'Unrecognized command: "stauts"\nDid you mean status? (\'help\' lists the commands)\n');
  r = await ctlOf(m, 'status', '--interval', 'x');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--interval expects a number of seconds/);
  await m.stop();
});

const hasPython = spawnSync('python3', ['-c', 'import pty']).status === 0;

/** Run the interactive shell in a pty with these steps; resolves to the transcript. */
async function ptyShell(m: MasterProc, steps: Array<{ send: string } | { expect: string; timeout?: number }>): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn('python3', [fixture('pty-drive.py'), JSON.stringify(steps), node, CTL, '-d', m.sockPath], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: m.dir, USER: 'tester' },
  });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => p.once('close', (c) => r(c)));
  clearTimeout(t);
  return { code, out, err };
}

test('shell in a terminal: Ctrl-C during a streamed upgrade returns to a working prompt; at the prompt it drops the line', { timeout: 90_000, skip: !hasPython && 'needs python3' }, async () => {
  const dir = tempDir();
  const marker = join(dir, 'hang');
  // New workers (once MARKER exists) never ack: the upgrade streams until interrupted.
  const m = startMaster(
    ['-n', '1', '-b', '127.0.0.1:0,r', '-m', 'manual', '--ack-timeout', '60', '--', 'sh', '-c', 'if [ -e "$MARKER" ]; then exec sleep 1000; fi; exec "$0" "$1"', node, fixture('node-http-child.mjs')],
    { dir, env: { FIXTURE_ACK: '1', MARKER: marker } },
  );
  await m.ready(1);
  writeFileSync(marker, '');
  const r = await ptyShell(m, [
    { expect: 'einhyrningsins> ' },
    { send: 'upgrade\r' },
    { expect: 'Upgrading smoothly' },
    { send: '\x03' },
    { expect: 'Stopped following upgrade; the master goes on' },
    { expect: 'einhyrningsins> ' },
    { send: 'version\r' },
    { expect: 'einhyrningsins \\d+\\.\\d+\\.\\d+\\r?\\n' },
    { expect: 'einhyrningsins> ' },
    { send: 'stat' },
    { send: '\x03' },
    { expect: '\\^C' },
    { send: 'status\r' },
    { expect: 'workers: 1 up of 1 wanted' },
    { expect: 'einhyrningsins> ' },
    { send: 'dec 5\r' },
    { expect: "dec takes no arguments \\(got '5'\\)" },
    { expect: 'einhyrningsins> ' },
    // Signal names complete after `signal`.
    { send: 'signal US' },
    { send: '\t' },
    { send: '\t' },
    { expect: 'USR1\\s+USR2' },
    { send: '\x03' },
    { expect: 'einhyrningsins> ' },
    { send: 'help\r' },
    { expect: 'version: Print the version of the master' },
    { expect: 'einhyrningsins> ' },
    { send: 'quit\r' },
  ]);
  assert.equal(r.code, 0, `${r.err}\n${r.out}`);
  assert.doesNotMatch(r.out, /Unrecognized command/, 'the line dropped by Ctrl-C was not sent');
  // help wraps at word boundaries within 80 columns, continuing under its text.
  const help = r.out.slice(r.out.indexOf('You are speaking to the Einhorn command socket'), r.out.indexOf('version: Print'));
  const helpLines = help.split(/\r?\n/).filter(Boolean);
  assert.ok(helpLines.length > 10, help);
  for (const l of helpLines) assert.ok(l.replace(/\r/g, '').length <= 80, `within 80 columns: ${JSON.stringify(l)}`);
  assert.ok(helpLines.some((l) => /^ {5,}\S/.test(l)), 'continuation lines are indented');
  const st = await m.workers();
  assert.ok(st.some((w) => w.generation === 1 && w.state === 'starting'), 'the master went on with the upgrade');
  await m.stop();
});

test('a manual-mode worker that never ACKs: the first miss explains the ACK line, the worker library and -m SECONDS; later ones are one line', { timeout: 60_000 }, async () => {
  const m = startMaster(['-n', '1', '-m', 'manual', '--ack-timeout', '0.3', '-s', '0.1', '--', 'sleep', '1000']);
  await until('three missed deadlines', () => (m.stderr.match(/did not ACK within 0\.3s; stopping it/g) ?? []).length >= 3, 30_000);
  const help = m.stderr.split('\n').filter((l) => l.includes('EINHORN_SOCK_PATH'));
  assert.equal(help.length, 1, m.stderr);
  assert.match(help[0]!, /ERROR: In manual ACK mode .*\{"command":"worker:ack","pid":<its pid>\}.*einhyrningsins\/worker.*-m SECONDS/);
  await m.stop();
});

/** One run of a master at this verbosity: start 2 workers, one `status`, stop; its stderr lines. */
async function logRun(flags: string[]): Promise<string[]> {
  const m = startMaster([...flags, '-n', '2', '-m', '0', '--', 'sleep', '1000']);
  await m.ready(2);
  await m.ctl('status');
  await m.stop();
  return m.stderr.split('\n').filter(Boolean);
}

test('-v adds real detail, -vv more, -q keeps the start-up line, warnings and errors', { timeout: 90_000 }, async () => {
  const normal = await logRun([]);
  const v = await logRun(['-v']);
  const vv = await logRun(['-vv']);
  const q = await logRun(['-q']);
  const qq = await logRun(['-qq']);
  for (const run of [normal, v, vv, q, qq]) assert.equal(run.filter((l) => /INFO: Master \d+ up: control socket /.test(l)).length, 1, run.join('\n'));
  assert.ok(q.length === 1 && qq.length === 1, `-q: only the start-up line here:\n${q.join('\n')}`);
  assert.ok(normal.length > q.length && v.length > normal.length && vv.length > v.length, [normal.length, v.length, vv.length].join(' '));
  assert.ok(!normal.some((l) => /DEBUG|TRACE/.test(l)));
  const has = (run: string[], re: RegExp) => assert.ok(run.some((l) => re.test(l)), `${re} in:\n${run.join('\n')}`);
  has(v, /DEBUG: Spawning index 0 \(generation 0\): \S*sleep 1000; sets EINHORN_MASTER_PID, EINHORN_SOCK_PATH, .*EINHORN_CHILD_INDEX/);
  has(v, /DEBUG: Timer \S+: in \d+ ms/);
  has(v, /DEBUG: Timer \S+: fired/);
  has(v, /DEBUG: Control connection #\d+: status \(id 1\)/);
  has(v, /DEBUG: Sending SIGUSR2 to worker \d+/);
  assert.ok(!v.some((l) => /TRACE/.test(l)));
  has(vv, /TRACE: Control connection #\d+ request: \{"command":"status"/);
});

test('-v names the control connection each ACK came on', { timeout: 60_000 }, async () => {
  const m = startMaster(['-v', '-n', '1', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', node, fixture('node-http-child.mjs')], { env: { FIXTURE_ACK: '1' } });
  const [w] = await m.ready(1);
  await m.waitLog(new RegExp(`DEBUG: ACK from pid ${w!.pid} on control connection #\\d+`));
  await m.stop();
});

test('--prefix-output: each child line carries its slot and pid (and a timestamp with --prefix-output-time); off by default', { timeout: 60_000 }, async () => {
  const prog = ['sh', '-c', 'echo "out of $EINHORN_CHILD_INDEX"; echo "err of $EINHORN_CHILD_INDEX" >&2; exec sleep 1000'];
  const m = startMaster(['--prefix-output', '-n', '2', '-m', '0', '--', ...prog]);
  const ws = await m.ready(2);
  for (const w of ws) {
    await m.waitOut(new RegExp(`^worker\\.${w.slot}\\[${w.pid}\\] \\| out of ${w.slot}$`, 'm'));
    await m.waitLog(new RegExp(`^worker\\.${w.slot}\\[${w.pid}\\] \\| err of ${w.slot}$`, 'm'));
  }
  await m.stop();
  const t = startMaster(['--prefix-output-time', '-c', 'web', '-n', '1', '-m', '0', '--', ...prog]);
  const [tw] = await t.ready(1);
  await t.waitOut(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z web\\.0\\[${tw!.pid}\\] \\| out of 0$`, 'm'));
  await t.stop();
  const plain = startMaster(['-n', '1', '-m', '0', '--', ...prog]);
  await plain.ready(1);
  await plain.waitOut(/^out of 0$/m);
  await plain.stop();
});

/** The niceness of every thread of `pid` (field 19 of /proc/PID/task/TID/stat). */
function niceOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    out.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return out;
}

test('--upgrade-nice: a new worker boots nicer during an upgrade and gets its priority back once up', { timeout: 60_000, skip: (process.getuid?.() !== 0 || !hasPython) && 'needs root (raising a priority back) and python3' }, async () => {
  const dir = tempDir();
  const go = join(dir, 'go');
  writeFileSync(go, '');
  const m = startMaster(['-v', '-n', '1', '-m', 'manual', '--upgrade-nice', '7', '--', 'python3', fixture('ack-when.py')], { dir, env: { ACK_FILE: go } });
  const [old] = await m.ready(1);
  assert.deepEqual([...new Set(niceOf(old!.pid))], [0], 'the first workers start at the normal priority');
  rmSync(go);
  const up = m.ctl('upgrade', [], { timeoutMs: 30_000 });
  const fresh = await until('the new worker', async () => (await m.workers()).find((w) => w.generation === 1));
  assert.deepEqual([...new Set(niceOf(fresh.pid))], [7], 'booting during the upgrade: 7 nicer');
  writeFileSync(go, '');
  const replies = await up;
  assert.match(replies.at(-1)!.message, /Upgrade done/);
  assert.deepEqual([...new Set(niceOf(fresh.pid))], [0], `up: back to the normal priority; log:\n${m.stderr}`);
  await m.stop();
});
