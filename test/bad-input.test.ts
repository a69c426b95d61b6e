/**
 * Every bad input: one clear line on stderr, a non-zero exit, and nothing
 * left behind (no socket file, no child started, no pidfile).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as native from 'native-reuseport';
import { cleanupAll, fixture, runCli, startMaster, tempDir, until } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

interface Case {
  name: string;
  args: (dir: string) => string[];
  error: RegExp;
  code?: number;
  setup?: (dir: string) => Promise<() => void> | (() => void);
}

const child = (dir: string) => ['--', fixture('env-child.sh'), dir];

const cases: Case[] = [
  { name: 'unknown option', args: (d) => ['--frobnicate', ...child(d)], error: /unknown option '--frobnicate'/, code: 2 },
  { name: 'unknown short option', args: (d) => ['-Z', ...child(d)], error: /unknown option '-Z'/, code: 2 },
  { name: 'missing program', args: () => ['-n', '2'], error: /missing program/, code: 2 },
  { name: 'missing program after --', args: () => ['-n', '2', '--'], error: /missing program/, code: 2 },
  { name: '-n not a number', args: (d) => ['-n', 'abc', ...child(d)], error: /-n expects a non-negative integer, got 'abc'/, code: 2 },
  { name: '-n negative', args: (d) => ['-n', '-1', ...child(d)], error: /-n expects a non-negative integer, got '-1'/, code: 2 },
  { name: '-n without value', args: () => ['-n'], error: /-n expects a value/, code: 2 },
  { name: '-r not a number', args: (d) => ['-r', '1.5', ...child(d)], error: /-r expects a non-negative integer/, code: 2 },
  { name: '-4 with -6', args: (d) => ['-4', '-6', ...child(d)], error: /-4 and -6 cannot be used together/, code: 2 },
  { name: '-m with a bad mode', args: (d) => ['--ack-mode', 'soon', ...child(d)], error: /expects 'manual' or a number of seconds/, code: 2 },
  { name: 'dropping an EINHORN_ variable', args: (d) => ['--drop-env-var', 'EINHORN_FD_COUNT', ...child(d)], error: /cannot be dropped/, code: 2 },
  {
    name: 'ambiguous abbreviation of a long option',
    args: (d) => ['--sock', '1', ...child(d)],
    error: /ambiguous option '--sock': could be --socket-path, --socket-mode$/,
    code: 2,
  },
  { name: '--reexec-as with an unterminated quote', args: (d) => ["--reexec-as=env 'VAR=b einhyrningsins", ...child(d)], error: /--reexec-as: unbalanced ' quote/, code: 2 },
  { name: '--with-state-fd not given by a reload', args: (d) => ['-n', '1', '--with-state-fd', '5', ...child(d)], error: /internal to the master's reload/, code: 2 },
  { name: 'malformed -b', args: (d) => ['-b', 'localhost', ...child(d)], error: /-b localhost: expected ADDR:PORT/, code: 2 },
  { name: '-b port out of range', args: (d) => ['-b', '127.0.0.1:70000', ...child(d)], error: /port 70000 is out of range/, code: 2 },
  { name: '-b unbracketed IPv6', args: (d) => ['-b', '::1:80', ...child(d)], error: /write IPv6 addresses in brackets/, code: 2 },
  { name: '-b unknown flag', args: (d) => ['-b', '127.0.0.1:0,z', ...child(d)], error: /unknown socket option 'z'/, code: 2 },
  { name: '-b unresolvable host', args: (d) => ['-b', 'no-such-host.invalid:8080', ...child(d)], error: /cannot resolve 'no-such-host.invalid'/ },
  { name: '-b IPv6 literal with -4', args: (d) => ['-4', '-b', '[::1]:0', ...child(d)], error: /not an IPv4 address/, code: 2 },
  { name: '-b address not on this host', args: (d) => ['-b', '192.0.2.1:8080', ...child(d)], error: /address not available/ },
  {
    name: 'port in use',
    setup: async (d) => {
      const srv = createServer();
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      writeFileSync(join(d, 'port'), String((srv.address() as { port: number }).port));
      return () => srv.close();
    },
    args: (d) => ['-b', `127.0.0.1:${readPort(d)}`, ...child(d)],
    error: /cannot bind -b 127\.0\.0\.1:\d+: address already in use/,
  },
  { name: '-b unix: unknown option', args: (d) => ['-b', `unix:${join(d, 's.sock')},zz`, ...child(d)], error: /unknown unix socket option 'zz'/, code: 2 },
  {
    name: '-m with an unknown ack mode, taken for the program before',
    args: (d) => ['-m', 'fast', fixture('env-child.sh'), d],
    error: /^einhyrningsins: -m fast: unknown ack mode \(expected manual or a number of seconds; to run a program named fast after a bare -m, write -m -- fast\)$/,
    code: 2,
  },
  {
    name: 'a #! script whose interpreter is missing: refused at start, naming the interpreter',
    setup: (d) => {
      writeFileSync(join(d, 'app.py'), '#!/usr/bin/no-such-python3 -u\nprint("hi")\n');
      chmodSync(join(d, 'app.py'), 0o755);
      return () => undefined;
    },
    args: (d) => ['--', join(d, 'app.py')],
    error: /^einhyrningsins: cannot run .*app\.py: its interpreter \/usr\/bin\/no-such-python3 \(#!\/usr\/bin\/no-such-python3 -u\) is not found$/,
  },
  {
    name: 'a #!/usr/bin/env script whose command is not in PATH: refused at start, naming it',
    setup: (d) => {
      writeFileSync(join(d, 'app.rb'), '#!/usr/bin/env no-such-ruby9\nputs 1\n');
      chmodSync(join(d, 'app.rb'), 0o755);
      return () => undefined;
    },
    args: (d) => ['--', join(d, 'app.rb')],
    error: /^einhyrningsins: cannot run .*app\.rb: its interpreter no-such-ruby9 \(#!\/usr\/bin\/env no-such-ruby9\): program not found in PATH: no-such-ruby9$/,
  },
  { name: 'program not found', args: () => ['--', 'no-such-program-anywhere'], error: /program not found in PATH: no-such-program-anywhere/ },
  { name: 'program path not found', args: (d) => ['--', join(d, 'nope.sh')], error: /program not found: .*nope\.sh/ },
  {
    name: 'program not executable',
    setup: (d) => {
      writeFileSync(join(d, 'plain.sh'), '#!/bin/sh\n');
      chmodSync(join(d, 'plain.sh'), 0o644);
      return () => undefined;
    },
    args: (d) => ['--', join(d, 'plain.sh')],
    error: /program is not executable: .*plain\.sh/,
  },
  { name: 'control socket directory missing', args: (d) => ['-d', join(d, 'nope', 'ctl.sock'), ...child(d)], error: /control socket directory does not exist/ },
  {
    name: 'control socket directory writable by others',
    setup: (d) => {
      mkdirSync(join(d, 'open'));
      chmodSync(join(d, 'open'), 0o777);
      return () => undefined;
    },
    args: (d) => ['-d', join(d, 'open', 'ctl.sock'), ...child(d)],
    error: /is writable by every user \(mode 0777\) and not sticky, so anyone could replace the socket; refusing/,
  },
  {
    name: 'control socket path is not a socket',
    setup: (d) => {
      writeFileSync(join(d, 'ctl.sock'), 'not a socket');
      return () => undefined;
    },
    args: (d) => ['-d', join(d, 'ctl.sock'), ...child(d)],
    error: /exists and is not a socket; refusing to replace it/,
  },
  {
    name: 'lockfile held',
    setup: (d) => {
      const fd = openSync(join(d, 'held.lock'), 'a');
      assert.equal(native.flock(fd), true);
      return () => closeSync(fd);
    },
    args: (d) => ['-f', join(d, 'held.lock'), ...child(d)],
    error: /lockfile .*held\.lock is held by another master/,
  },
  {
    name: '--exit-with-child with more than one child',
    args: (d) => ['--exit-with-child', '-n', '2', ...child(d)],
    error: /--exit-with-child passes on the status of one child; it cannot be used with -n 2/,
    code: 2,
  },
  {
    name: '--watch in a directory that does not exist',
    args: (d) => ['--watch', join(d, 'nope', 'app'), ...child(d)],
    error: /--watch .*nope\/app: directory .*nope does not exist/,
    code: 2,
  },
  {
    name: '--fetch with a malformed URL',
    args: (d) => ['--fetch', 'not a url', ...child(d)],
    error: /--fetch expects a URL \(http:\/\/HOST\/\.\.\., https:\/\/HOST\/\.\.\. or file:\/\/\/PATH\), got 'not a url'/,
    code: 2,
  },
  {
    name: '--fetch with an unsupported scheme',
    args: (d) => ['--fetch', 'ftp://127.0.0.1/app', ...child(d)],
    error: /--fetch ftp:\/\/127\.0\.0\.1\/app: unsupported scheme 'ftp' \(http, https or file\)/,
    code: 2,
  },
  {
    name: '--fetch with a relative file URL',
    args: (d) => ['--fetch', 'file://releases/app', ...child(d)],
    error: /a file URL names an absolute path/,
    code: 2,
  },
  {
    name: '--fetch-max-size not a size',
    args: (d) => ['--fetch', 'http://127.0.0.1/app', '--fetch-max-size', '12T', ...child(d)],
    error: /--fetch-max-size expects a size in bytes/,
    code: 2,
  },
  {
    name: '--fetch-interval without --fetch',
    args: (d) => ['--fetch-interval', '5', ...child(d)],
    error: /--fetch-interval only means something with --fetch URL/,
    code: 2,
  },
  {
    name: '--fetch of node itself',
    args: (d) => ['--fetch', 'http://127.0.0.1/app', '--', process.execPath, fixture('env-child.sh'), d],
    error: /--fetch: the program .* is the node executable itself/,
  },
  {
    name: 'pidfile directory missing',
    args: (d) => ['-e', join(d, 'nope', 'm.pid'), ...child(d)],
    error: /cannot write pidfile/,
  },
];

function readPort(dir: string): string {
  return readFileSync(join(dir, 'port'), 'utf8');
}

for (const c of cases) {
  test(`bad input: ${c.name}`, async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'out'));
    const undo = c.setup ? await c.setup(dir) : () => undefined;
    try {
      const sock = join(dir, 'ctl.sock');
      const args = c.args(dir);
      const withSock = args.includes('-d') ? args : ['-d', sock, ...args];
      const before = existsSync(sock);
      const r = await runCli(withSock, { env: { FIXTURE_OUT: join(dir, 'out') } });
      assert.notEqual(r.code, 0, `non-zero exit (stderr: ${r.stderr})`);
      if (c.code !== undefined) assert.equal(r.code, c.code);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
      assert.match(lines[0]!, /^einhyrningsins: /);
      assert.match(lines[0]!, c.error);
      if (!before) assert.equal(existsSync(sock), false, 'no control socket left');
      assert.deepEqual(readdirSync(join(dir, 'out')), [], 'no child was started');
      assert.equal(existsSync(join(dir, 'held.lock')) && c.name !== 'lockfile held', false);
    } finally {
      undo();
    }
  });
}

test('no arguments at all: the usage on stdout and exit 1, as einhorn does', async () => {
  const r = await runCli([]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^## Usage\n\nUsage: einhyrningsins \[OPTIONS\] \[--\] PROGRAM/);
  assert.equal(r.stderr, '');
});

test('-h prints the usage on stdout and exits 0; --version prints the version', async () => {
  const h = await runCli(['-h']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^Usage: einhyrningsins \[OPTIONS\] \[--\] PROGRAM/);
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^einhyrningsins \d+\.\d+\.\d+\n$/);
});

test('options stop at the program: its own -n is passed through', async () => {
  const out = tempDir();
  const m = startMaster(['-m', '0.1', '--', 'sh', '-c', 'printf "%s " "$@" > "$0"; exec sleep 1000', join(out, 'args'), '-n', '5', '-b', 'x'], {});
  const [w] = await m.ready(1);
  assert.ok(w);
  await until('args file', () => existsSync(join(out, 'args')));
  assert.equal(readFileSync(join(out, 'args'), 'utf8'), '-n 5 -b x ');
  await m.stop();
});

test('-m followed by the program name is manual mode, not an ack delay', async () => {
  const m = startMaster(['-m', 'sleep', '1000']);
  await m.waitLog(/Launched/);
  const [st] = await m.ctl('state');
  assert.match(st!.message, /:type: :manual/);
  await m.stop();
});

test('einhorn command lines start unchanged: abbreviated long options, -p and --gc-before-fork (one warning)', async () => {
  const dir = tempDir();
  // As on einhorn's README and in its test suite, with Ruby-only options left in.
  const m = startMaster(['--num', '2', '--sig=5', '-b', '127.0.0.1:0,r', '--gc-before-fork', '-p', 'lib/app.rb', '-m', '0', '--', 'sleep', '1000'], { dir });
  await m.ready(2);
  const [st] = await m.ctl('state');
  assert.match(st!.message, /:number: 2/);
  assert.match(st!.message, /:signal_timeout: 5/);
  const warnings = m.stderr.split('\n').filter((l) => /WARN/.test(l));
  assert.equal(warnings.length, 1, m.stderr);
  assert.match(warnings[0]!, /ignoring --gc-before-fork, -p lib\/app\.rb: .*only mean something for Ruby children/);
  await m.stop();
});

test('a group-writable control socket directory is accepted with a warning naming the group', async () => {
  const dir = tempDir();
  const shared = join(dir, 'deploy');
  mkdirSync(shared);
  chmodSync(shared, 0o775);
  const m = startMaster(['-m', '0', '--', 'sleep', '1000'], { dir: shared });
  await until('the master up', () => /Master \d+ up/.test(m.stderr));
  assert.match(m.stderr, /WARN: control socket directory .*deploy is writable by its group \(mode 0775, (group \S+ \(gid \d+\)|gid \d+)\): its members can replace the control socket/);
  assert.doesNotMatch(m.stderr, /every user|others/);
  await m.stop();
});

test('a program word that is a file here, not in PATH: says so (not executable / write ./NAME), one line, nothing started', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'app.sh'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(dir, 'app.sh'), 0o644);
  const sock = join(dir, 'ctl.sock');
  const r = await runCli(['-d', sock, '-b', '127.0.0.1:0', '--', 'app.sh'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'einhyrningsins: program not found in PATH: app.sh; ./app.sh is here but not executable (chmod +x app.sh, and run it as ./app.sh)\n');
  chmodSync(join(dir, 'app.sh'), 0o755);
  const x = await runCli(['-d', sock, '-b', '127.0.0.1:0', '--', 'app.sh'], { cwd: dir });
  assert.equal(x.code, 1);
  assert.equal(x.stderr, 'einhyrningsins: program not found in PATH: app.sh (to run the one here, write ./app.sh)\n');
  assert.equal(existsSync(sock), false);
});

test('-m -- WORD and -m PROGRAM still run a program after a bare -m (einhorn\'s way)', async () => {
  const m = startMaster(['-b', '127.0.0.1:0', '-m', '--', 'node', '-e', 'setTimeout(() => {}, 60000)']);
  await m.waitLog(/Launched \d+/, 30_000);
  m.snapshotChildren();
  assert.equal((await m.stop()).code, 0);
});
