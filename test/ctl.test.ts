/**
 * Black-box tests of `bin/einhyrningsinsctl` against real masters: every
 * command, -e, --json, the exit statuses, the shell (non-interactive) and its
 * reconnect, and a failed upgrade.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, alive, cleanupAll, fixture, httpGet, startMaster, tempDir, until, type MasterProc } from './harness.js';

afterEach(async () => {
  const problems = await cleanupAll();
  assert.deepEqual(problems, [], 'nothing may be left behind');
});

const node = process.execPath;
const CTL = join(ROOT, 'bin', 'einhyrningsinsctl');
/** The reply to `version` (the status text starts with the same words, plus a comma). */
const VERSION_LINE = /^einhyrningsins \d+\.\d+\.\d+$/gm;

interface CtlRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Run the ctl to completion (killed after `timeoutMs`, which fails the test). */
async function runCtl(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CtlRun> {
  const p = spawn(node, [CTL, ...args], {
    env: { ...process.env, USER: 'tester', ...opts.env },
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  p.stdin.end(opts.input ?? '');
  let timedOut = false;
  const t = setTimeout(() => {
    timedOut = true;
    p.kill('SIGKILL');
  }, opts.timeoutMs ?? 30_000);
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => p.once('close', (c, s) => r([c, s])));
  clearTimeout(t);
  assert.equal(timedOut, false, `einhyrningsinsctl ${args.join(' ')} did not finish; stdout: ${stdout} stderr: ${stderr}`);
  return { code, signal, stdout, stderr };
}

/** `einhyrningsinsctl -d SOCK ...` against a master. */
async function ctlOf(m: MasterProc, ...args: string[]): Promise<CtlRun> {
  return await runCtl(['-d', m.sockPath, ...args]);
}

function countWorkers(yaml: string): number {
  return (yaml.match(/:type: :worker/g) ?? []).length;
}

function timerMaster(n = 2): MasterProc {
  return startMaster(['-n', String(n), '-m', '0', '--', 'sleep', '1000']);
}

function httpMaster(n = 2): MasterProc {
  return startMaster(['-n', String(n), '-b', '127.0.0.1:0,r', '-m', 'manual', '--', node, fixture('node-http-child.mjs')], {
    env: { FIXTURE_ACK: '1' },
  });
}

test('every simple command: exit status and reply', { timeout: 120_000 }, async () => {
  const m = timerMaster(2);
  await m.ready(2);

  let r = await ctlOf(m, 'status');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`master pid ${m.pid}\\n`));
  assert.match(r.stdout, /workers: 2 up of 2 wanted/);
  assert.equal(r.stderr, '');

  r = await ctlOf(m, 'state');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^---\n:state:\n  :children:\n/);
  assert.equal(countWorkers(r.stdout), 2);

  r = await ctlOf(m, 'inc');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'Incrementing number of workers from 2 -> 3\n');
  await m.ready(3);

  r = await ctlOf(m, 'dec');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'Decrementing number of workers from 3 -> 2\n');
  await m.ready(2);

  r = await ctlOf(m, 'set_workers', '3');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Altering worker count, 2 -> 3\./);
  await m.ready(3);
  r = await ctlOf(m, 'state');
  assert.equal(countWorkers(r.stdout), 3, r.stdout);

  r = await ctlOf(m, 'set_workers', 'x');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^Invalid count: 'x'/);

  r = await ctlOf(m, 'signal', 'FOO');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, 'Invalid signal: "FOO"\n');

  r = await ctlOf(m, 'quieter');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'Verbosity set to 2\n');
  r = await ctlOf(m, 'louder');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'Verbosity set to 1\n');

  r = await ctlOf(m, 'help');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^You are speaking to the Einhorn command socket\./);
  for (const c of ['dec', 'die', 'inc', 'set_workers', 'signal', 'state', 'upgrade', 'upgrade_fleet']) {
    assert.match(r.stdout, new RegExp(`^${c}: `, 'm'));
  }

  r = await ctlOf(m, 'version');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^einhyrningsins \d+\.\d+\.\d+\n$/);

  r = await ctlOf(m, 'ehlo');
  assert.equal(r.code, 0);
  assert.match(r.stdout, new RegExp(`^Welcome, tester! You are speaking to Einhorn Master Process ${m.pid}\\.\\nThis is einhyrningsins \\d+\\.\\d+\\.\\d+\\.\\n$`));

  r = await ctlOf(m, 'reload');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Reload done: master \d+ is now einhyrningsins/);

  r = await ctlOf(m, 'no_such_command');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^Unrecognized command: "no_such_command"\n/);

  r = await ctlOf(m, 'upgrade_fleet');
  assert.equal(r.code, 0, r.stdout);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], 'Upgrading fleet, as commanded');
  assert.equal(lines.at(-1), 'Upgrade done');
  const ws = await m.ready(3);
  assert.ok(ws.every((w) => w.generation === 1));

  assert.equal(alive(m.pid), true);
  r = await ctlOf(m, 'die');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /going down/);
  assert.deepEqual(await m.exit, { code: 0, signal: null });
  assert.equal(existsSync(m.sockPath), false);
});

test('upgrade streams its progress and ends with "Upgrade done"; --json marks every line but the last with wait', { timeout: 60_000 }, async () => {
  const m = httpMaster(2);
  const port = await m.port();
  const old = await m.ready(2);

  // Replies are printed as they arrive: the first output comes before "Upgrade done".
  const p = spawn(node, [CTL, '-d', m.sockPath, 'upgrade'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let firstChunk: string | null = null;
  p.stdout.on('data', (d) => {
    firstChunk ??= String(d);
    out += d;
  });
  let closed: { code: number | null } | null = null;
  p.once('close', (c) => (closed = { code: c }));
  try {
    await until('the upgrade to finish', () => closed, 30_000);
  } finally {
    if (!closed) p.kill('SIGKILL');
  }
  const code = (closed as { code: number | null } | null)?.code;
  assert.equal(code, 0, out);
  assert.ok(firstChunk !== null && !(firstChunk as string).includes('Upgrade done'), `first output: ${firstChunk}`);
  const lines = out.trimEnd().split('\n');
  assert.equal(lines[0], 'Upgrading smoothly, as commanded');
  assert.ok(lines.some((l) => /^===> Launched \d+/.test(l)), out);
  assert.equal(lines.at(-1), 'Upgrade done');
  const fresh = await m.ready(2);
  assert.ok(fresh.every((w) => w.generation === 1 && !old.some((o) => o.pid === w.pid)));
  for (const w of old) await until(`old worker ${w.pid} gone`, () => !alive(w.pid));
  JSON.parse(await httpGet(port));

  const j = await ctlOf(m, '--json', 'upgrade');
  assert.equal(j.code, 0, j.stderr);
  const replies = j.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { message: string; wait: boolean; request_id?: unknown });
  assert.ok(replies.length >= 3);
  assert.ok(replies.slice(0, -1).every((x) => x.wait === true), j.stdout);
  assert.equal(replies.at(-1)!.wait, false);
  assert.equal(replies.at(-1)!.message, 'Upgrade done');
  assert.ok(replies.every((x) => x.request_id === replies[0]!.request_id));
  await m.ready(2);
  await m.stop();
});

test('signal USR1 reaches every worker', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const m = startMaster(
    ['-n', '2', '-m', '0', '--', 'sh', '-c', `trap 'echo usr1 >> "$FIXTURE_OUT/$$"' USR1; : > "$FIXTURE_OUT/$$.ready"; while :; do sleep 0.1; done`],
    { dir, env: { FIXTURE_OUT: dir } },
  );
  const ws = await m.ready(2);
  // USR1 would kill a shell that has not set its trap yet.
  for (const w of ws) await until(`${w.pid} to set its trap`, () => existsSync(join(dir, `${w.pid}.ready`)));
  const r = await ctlOf(m, 'signal', 'USR1');
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /SIGUSR1 to 2 workers/);
  for (const w of ws) {
    await until(`USR1 trapped by ${w.pid}`, () => existsSync(join(dir, String(w.pid))) && readFileSync(join(dir, String(w.pid)), 'utf8') === 'usr1\n');
  }
  await m.stop();
});

test('-e runs every command in order; --json prints one object per reply with a state for status', { timeout: 60_000 }, async () => {
  const m = timerMaster(1);
  await m.ready(1);
  let r = await ctlOf(m, '-e', 'inc; status');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Incrementing number of workers from 1 -> 2\n[^]*workers: \d up of 2 wanted/);

  // A failed command makes the exit status 1, the rest still run.
  r = await ctlOf(m, '-e', 'version; no_such_command; version');
  assert.equal(r.code, 1);
  assert.equal((r.stdout.match(VERSION_LINE) ?? []).length, 2);

  await m.ready(2);
  r = await ctlOf(m, '--json', 'status');
  assert.equal(r.code, 0);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1);
  const reply = JSON.parse(lines[0]!) as { message: string; wait: boolean; state: { master_pid: number; workers: Array<{ pid: number }> } };
  assert.equal(reply.wait, false);
  assert.match(reply.message, /workers: 2 up of 2 wanted/);
  assert.equal(reply.state.master_pid, m.pid);
  assert.equal(reply.state.workers.length, 2);

  r = await ctlOf(m, '--json', '-e', 'version; ehlo');
  assert.equal(r.code, 0);
  const two = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { message: string });
  assert.equal(two.length, 2);
  assert.match(two[0]!.message, /^einhyrningsins /);
  assert.match(two[1]!.message, /^Welcome, tester!/);

  // einhorn's escaped-YAML request framing works the same.
  r = await ctlOf(m, '--yaml-requests', '-e', 'state; set_workers 1');
  assert.equal(r.code, 0, r.stdout);
  assert.equal(countWorkers(r.stdout), 2);
  assert.match(r.stdout, /Altering worker count, 2 -> 1\./);
  await m.ready(1);
  await m.stop();
});

test('-c NAME finds the default socket in $TMPDIR', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const m = startMaster(['-c', 'ctltest', '-m', '0', '--', 'sleep', '1000'], { dir, socket: false, env: { TMPDIR: dir } });
  await m.waitLog(/control socket /);
  const r = await runCtl(['-c', 'ctltest', 'version'], { env: { TMPDIR: dir } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^einhyrningsins /);
  const s = await runCtl(['-c', 'ctltest', 'status'], { env: { TMPDIR: dir } });
  m.snapshotChildren();
  assert.match(s.stdout, new RegExp(`master pid ${m.pid}\\b`));
  assert.equal(existsSync(join(dir, 'einhorn-ctltest.sock')), true);
  await m.stop();
  assert.equal(existsSync(join(dir, 'einhorn-ctltest.sock')), false);
});

test('no master at the socket: exit 3 and the message names the socket', { timeout: 30_000 }, async () => {
  const dir = tempDir();
  try {
    const missing = join(dir, 'nobody.sock');
    let r = await runCtl(['-d', missing, 'status']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes(missing), r.stderr);
    // A file that is no listening socket.
    const notSock = join(dir, 'file.sock');
    writeFileSync(notSock, '');
    r = await runCtl(['-d', notSock, '-e', 'status']);
    assert.equal(r.code, 3);
    assert.ok(r.stderr.includes(notSock), r.stderr);
    // The shell says the same.
    r = await runCtl(['-d', missing, '--timeout', '1'], { input: 'status\n' });
    assert.equal(r.code, 3);
    assert.ok(r.stderr.includes(missing), r.stderr);
  } finally {
    rmDir(dir);
  }
});

test('usage errors exit 2; --help and --version exit 0', { timeout: 30_000 }, async () => {
  for (const args of [
    ['--bogus'],
    ['-x', 'status'],
    ['-d'],
    ['--timeout', 'soon', 'status'],
    ['--timeout', '0', 'status'],
    ['-e', 'status', 'inc'],
    ['-e', 'inc "unbalanced'],
    ['-e', ' ; '],
  ]) {
    const r = await runCtl(['-d', '/nonexistent/ctl.sock', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^einhyrningsinsctl: .+\n$/, args.join(' '));
    assert.equal(r.stdout, '');
  }
  let r = await runCtl(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: einhyrningsinsctl /);
  r = await runCtl(['--version']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^einhyrningsinsctl \d+\.\d+\.\d+\n$/);
});

test('shell without a terminal: commands on stdin, one per line, quit ends it', { timeout: 60_000 }, async () => {
  const m = timerMaster(1);
  await m.ready(1);
  let r = await ctlOf(m);
  assert.equal(r.code, 0, 'empty input: nothing to do');
  r = await runCtl(['-d', m.sockPath], { input: 'version\n\nstatus; version\nquit\ninc\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((r.stdout.match(VERSION_LINE) ?? []).length, 2);
  assert.match(r.stdout, /workers: 1 up of 1 wanted/);
  assert.doesNotMatch(r.stdout, /Incrementing/, 'nothing after quit');
  assert.equal(r.stderr, '', 'no prompt or banner without a terminal');
  // End of input ends it too; a failed command makes the status 1.
  r = await runCtl(['-d', m.sockPath], { input: 'no_such_command\nversion\n' });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /Unrecognized command[^]*einhyrningsins \d/);
  r = await runCtl(['-d', m.sockPath], { input: 'status "unbalanced\nversion\nexit\n' });
  assert.equal(r.code, 0);
  assert.match(r.stderr, /unbalanced/);
  assert.match(r.stdout, /^einhyrningsins \d/);
  const [st] = await m.ctl('status');
  assert.match(st!.message, /1 up of 1 wanted/);
  await m.stop();
});

class Shell {
  readonly proc: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  exited: { code: number | null } | null = null;
  constructor(sockPath: string) {
    this.proc = spawn(node, [CTL, '-d', sockPath], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, USER: 'tester' } });
    this.proc.stdout.on('data', (d) => (this.stdout += d));
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    this.proc.once('close', (code) => (this.exited = { code }));
  }
  send(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }
}

test('the shell reconnects to a new master on the same socket', { timeout: 60_000 }, async () => {
  const m1 = timerMaster(1);
  await m1.ready(1);
  const sh = new Shell(m1.sockPath);
  try {
    sh.send('status');
    await until(`status from ${m1.pid} (stdout ${sh.stdout}, stderr ${sh.stderr})`, () => sh.stdout.includes(`master pid ${m1.pid}\n`));
    await m1.stop();
    const m2 = startMaster(['-n', '1', '-m', '0', '--', 'sleep', '1000'], { dir: m1.dir });
    await m2.ready(1);
    assert.equal(m2.sockPath, m1.sockPath);
    sh.send('status');
    await until(`status from the new master ${m2.pid} (stdout ${sh.stdout}, stderr ${sh.stderr})`, () => sh.stdout.includes(`master pid ${m2.pid}\n`));
    sh.send('quit');
    const { code } = await until('the shell to exit', () => sh.exited, 10_000);
    assert.equal(code, 0, sh.stderr);
    await m2.stop();
  } finally {
    if (sh.proc.exitCode === null) sh.proc.kill('SIGKILL');
  }
});

test('an upgrade whose new workers fail: exit 1, the reply names the failure, the old workers keep serving', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const marker = join(dir, 'fail-now');
  const m = startMaster(
    ['-n', '2', '-r', '1', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', 'sh', '-c', 'if [ -e "$MARKER" ]; then exit 1; fi; exec "$0" "$1"', node, fixture('node-http-child.mjs')],
    { dir, env: { FIXTURE_ACK: '1', MARKER: marker } },
  );
  const port = await m.port();
  const old = await m.ready(2);
  writeFileSync(marker, '');
  const r = await ctlOf(m, 'upgrade');
  assert.equal(r.code, 1, r.stdout);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], 'Upgrading smoothly, as commanded');
  assert.match(r.stdout, /Exited worker \d+ before it was ACKed \(exit status 1\)/);
  assert.match(r.stdout, /Upgrade to generation 1 failed: .*exited before it was acked.*the previous workers keep serving/);
  assert.match(lines.at(-1)!, /failed/i);
  const ws = await m.workers();
  assert.deepEqual(ws.map((w) => w.pid).sort(), old.map((w) => w.pid).sort());
  assert.ok(ws.every((w) => w.state === 'up' && alive(w.pid)));
  for (let i = 0; i < 5; i++) {
    const body = JSON.parse(await httpGet(port)) as { pid: number };
    assert.ok(old.some((w) => w.pid === body.pid), `answered by an old worker: ${body.pid}`);
  }
  await m.stop();
});

function rmDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
