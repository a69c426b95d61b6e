import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as native from 'native-reuseport';
import { checkHandoff, fdName, handoffEnv, LAUNCHER_LISTEN_PID, type HandedSocket } from '../src/handoff.js';
import { HandoffError, parseHandoffs } from '../src/handoff-names.js';
import { parseArgs, UsageError } from '../src/options.js';
import { serverName, stopSignalWarning } from '../src/known-servers.js';

const tcp4: HandedSocket = { childFd: 3, family: 4, address: '127.0.0.1', port: 8080, text: '127.0.0.1:8080,r' };
const tcp6: HandedSocket = { childFd: 4, family: 6, address: '::1', port: 8081, text: '[::1]:8081' };
const unix: HandedSocket = { childFd: 5, family: 'unix', address: '/run/app.sock', port: 0, text: 'unix:/run/app.sock,mode=600' };
const ctx = { inheritedPreload: undefined, shimVerbose: false };

test('--handoff: names comma-separated or repeated, einhorn always, a fixed order, duplicates once', () => {
  assert.deepEqual(parseHandoffs([]), ['einhorn']);
  assert.deepEqual(parseHandoffs(['port,systemd']), ['einhorn', 'systemd', 'port']);
  assert.deepEqual(parseHandoffs(['server-starter', 'systemd', 'systemd', 'einhorn']), ['einhorn', 'systemd', 'server-starter']);
  assert.deepEqual(parseArgs(['--handoff', 'systemd', '--handoff=port', 'app']).handoff, ['einhorn', 'systemd', 'port']);
  assert.deepEqual(parseArgs(['app']).handoff, ['einhorn']);
});

test('--handoff: an unknown name (or an empty one) is a usage error naming it and the known ones', () => {
  assert.throws(() => parseHandoffs(['systemd,sytemd']), (e: Error) => e instanceof HandoffError && /unknown hand-off 'sytemd' \(known: einhorn, systemd, server-starter, port\)/.test(e.message));
  assert.throws(() => parseArgs(['--handoff', 'inetd', 'app']), (e: Error) => e instanceof UsageError && /^--handoff: unknown hand-off 'inetd'/.test(e.message));
  assert.throws(() => parseArgs(['--handoff', 'port,', 'app']), UsageError);
});

test('einhorn adds nothing: EINHORN_* come from the child env alone', () => {
  assert.deepEqual(handoffEnv(['einhorn'], [tcp4], ctx), {});
});

test('systemd: LISTEN_FDS counts every socket, LISTEN_FDNAMES names them, the launcher is asked to set LISTEN_PID', () => {
  const env = handoffEnv(['einhorn', 'systemd'], [tcp4, tcp6, unix], ctx);
  assert.deepEqual(env, {
    LISTEN_FDS: '3',
    LISTEN_FDNAMES: '127.0.0.1_8080:[__1]_8081:unix_/run/app.sock',
    [LAUNCHER_LISTEN_PID]: '1',
  });
  assert.equal('LISTEN_PID' in env, false, 'LISTEN_PID is the launcher\'s to set: only it knows the pid that execs');
  // A socket from systemd keeps systemd's name.
  assert.equal(fdName({ ...tcp4, text: 'systemd:web' }), 'web');
  assert.equal(fdName({ ...tcp4, text: 'systemd:a b' }), 'a_b');
});

test("server-starter: SERVER_STARTER_PORT in Server::Starter's own format", () => {
  const env = handoffEnv(['einhorn', 'server-starter'], [tcp4, tcp6, unix], ctx);
  assert.deepEqual(env, { SERVER_STARTER_PORT: '127.0.0.1:8080=3;[::1]:8081=4;/run/app.sock=5' });
});

test('server-starter: a unix path the format cannot carry is refused in one line', () => {
  for (const path of ['/tmp/a=b.sock', '/tmp/a;b.sock', '/tmp/a:1', '/tmp/a b']) {
    assert.throws(
      () => checkHandoff(['einhorn', 'server-starter'], [tcp4, { ...unix, address: path }]),
      (e: Error) => e instanceof HandoffError && e.message.includes(path) && !e.message.includes('\n'),
    );
  }
  checkHandoff(['einhorn', 'server-starter'], [tcp4, unix]);
  // The other protocols carry such a path.
  checkHandoff(['einhorn', 'systemd'], [{ ...unix, address: '/tmp/a=b.sock' }]);
});

test('port: PORT is the first TCP socket, the shim goes first in LD_PRELOAD and may take every TCP socket', () => {
  const env = handoffEnv(['einhorn', 'port'], [unix, { ...tcp4, childFd: 4 }, { ...tcp6, childFd: 5 }], { inheritedPreload: 'libjemalloc.so', shimVerbose: true });
  assert.deepEqual(env, {
    PORT: '8080',
    LD_PRELOAD: `${native.bindShimPath} libjemalloc.so`,
    EINHYRNINGSINS_BIND_FDS: '4,5',
    EINHYRNINGSINS_BIND_VERBOSE: '1',
  });
  assert.equal(handoffEnv(['einhorn', 'port'], [tcp4], ctx).LD_PRELOAD, native.bindShimPath);
});

test('port: no TCP socket is refused in one line', () => {
  assert.throws(() => checkHandoff(['einhorn', 'port'], [unix]), (e: Error) => e instanceof HandoffError && /--handoff port needs a TCP socket/.test(e.message));
  assert.throws(() => checkHandoff(['einhorn', 'port'], []), HandoffError);
  checkHandoff(['einhorn', 'systemd'], []);
});

test('every protocol at once: the union of their variables', () => {
  const env = handoffEnv(['einhorn', 'systemd', 'server-starter', 'port'], [tcp4], ctx);
  assert.deepEqual(Object.keys(env).sort(), ['EINHYRNINGSINS_BIND_FDS', LAUNCHER_LISTEN_PID, 'LD_PRELOAD', 'LISTEN_FDNAMES', 'LISTEN_FDS', 'PORT', 'SERVER_STARTER_PORT'].sort());
});

test('known servers: the program, python -m X, bundle exec X', () => {
  assert.equal(serverName('/usr/bin/gunicorn', []), 'gunicorn');
  assert.equal(serverName('python3', ['-m', 'uvicorn', 'app:app']), 'uvicorn');
  assert.equal(serverName('/usr/bin/python3.11', ['-X', 'dev', '-m', 'gunicorn.app.wsgiapp']), 'gunicorn');
  assert.equal(serverName('python3', ['app.py']), null);
  assert.equal(serverName('bundle', ['exec', '--keep-file-descriptors', 'puma', '-C', 'x']), 'puma');
  assert.equal(serverName(null, []), null);
});

test('known servers: one warning naming the --stop-signal each needs, none when it is given', () => {
  const cases: Array<[string, string[], string]> = [
    ['gunicorn', [], 'TERM'],
    ['python3', ['-m', 'uvicorn'], 'TERM'],
    ['hypercorn', [], 'TERM'],
    ['puma', [], 'TERM'],
    ['unicorn', [], 'QUIT'],
    ['nginx', [], 'QUIT'],
  ];
  for (const [program, args, stop] of cases) {
    const w = stopSignalWarning(program, args, 'SIGUSR2');
    assert.ok(w && w.endsWith(`start it with --stop-signal ${stop} (its graceful stop)`), `${program}: ${w}`);
    assert.equal(stopSignalWarning(program, args, `SIG${stop}`), null);
  }
  assert.match(stopSignalWarning('unicorn', [], 'SIGTERM') as string, /SIGTERM is its quick shutdown/);
  assert.match(stopSignalWarning('python3', ['-m', 'uvicorn'], 'SIGUSR2') as string, /kills it at once/);
  assert.equal(stopSignalWarning('node', ['server.js'], 'SIGUSR2'), null);
  assert.equal(stopSignalWarning('/usr/local/bin/myapp', [], 'SIGUSR2'), null);
});

test('the reuse-port watch reads the listeners of a port from /proc/net/tcp', async () => {
  const { listenerInodes } = await import('../src/reuseport-watch.js');
  const text = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0',
    '   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0',
    '   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0',
    '   3: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0 100 0 0 10 0',
  ].join('\n');
  assert.deepEqual(listenerInodes(text, 8080), [111, 222], 'listening on 8080 (0x1F90) only, not the established one');
  assert.deepEqual(listenerInodes(text, 8081), [444]);
  assert.deepEqual(listenerInodes(text, 1), []);
});
