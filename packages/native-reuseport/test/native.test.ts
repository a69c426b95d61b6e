import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import {
  close,
  fdInfo,
  flock,
  getsockname,
  isNativeSyscallError,
  listenTcp,
  listenUnix,
  openFds,
  setCloexec,
  type ListenTcpOptions,
} from '../src/index.js';

const base: ListenTcpOptions = {
  host: '127.0.0.1',
  port: 0,
  family: 4,
  reuseAddr: false,
  reusePort: false,
  nonBlock: false,
  v6Only: null,
  backlog: 16,
};

/** Run `fn`, then assert that the set of open fds is unchanged. */
async function noLeak(fn: () => void | Promise<void>): Promise<void> {
  const before = openFds();
  await fn();
  assert.deepEqual(openFds(), before, 'fd leak');
}

/** Connect to a listener nobody accepts on (it completes in the backlog), then close. */
function connectOnce(opts: net.NetConnectOpts): Promise<void> {
  return new Promise((resolve, reject) => {
    let connected = false;
    let failure: Error | undefined;
    const sock = net.connect(opts);
    sock.once('connect', () => {
      connected = true;
      sock.destroy();
    });
    sock.once('error', (err) => (failure = err));
    sock.once('close', () => (connected ? resolve() : reject(failure ?? new Error('not connected'))));
  });
}

/** Assert that `fn` throws a syscall error with the given code (and syscall). */
function throwsSys(fn: () => unknown, code: string, syscall?: string): Error {
  let caught: unknown;
  assert.throws(fn, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(isNativeSyscallError(caught), `not a syscall error: ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.errno, (os.constants.errno as Record<string, number>)[code]);
  if (syscall !== undefined) assert.equal(caught.syscall, syscall);
  return caught;
}

function canListen(opts: ListenTcpOptions): boolean {
  try {
    close(listenTcp(opts));
    return true;
  } catch {
    return false;
  }
}

const hasV6Loopback = canListen({ ...base, host: '::1', family: 6 });
const hasV4Mapped = canListen({ ...base, host: '::ffff:127.0.0.1', family: 6, v6Only: false });

test('listenTcp on 127.0.0.1:0 gives a blocking, CLOEXEC listener that accepts connections', () =>
  noLeak(async () => {
    const fd = listenTcp(base);
    try {
      assert.ok(Number.isInteger(fd) && fd > 2);
      assert.deepEqual(fdInfo(fd), {
        nonBlock: false,
        cloexec: true,
        reuseAddr: false,
        reusePort: false,
        v6Only: null,
        listening: true,
        type: 'tcp4',
      });
      const name = getsockname(fd);
      assert.equal(name.family, 4);
      assert.equal(name.address, '127.0.0.1');
      assert.ok(name.port > 0 && name.port < 65536);
      assert.ok(openFds().includes(fd));
      await connectOnce({ host: '127.0.0.1', port: name.port });
    } finally {
      close(fd);
    }
  }));

test('reuseAddr and nonBlock are applied only when asked', () =>
  noLeak(() => {
    const fd = listenTcp({ ...base, reuseAddr: true, nonBlock: true });
    try {
      const info = fdInfo(fd);
      assert.equal(info.reuseAddr, true);
      assert.equal(info.nonBlock, true);
      assert.equal(info.reusePort, false);
      assert.equal(info.cloexec, true);
      assert.equal(info.listening, true);
    } finally {
      close(fd);
    }
  }));

test('two listeners on one port: EADDRINUSE unless both set SO_REUSEPORT', () =>
  noLeak(async () => {
    const a = listenTcp({ ...base, reuseAddr: true });
    try {
      const { port } = getsockname(a);
      const err = throwsSys(() => listenTcp({ ...base, port, reuseAddr: true }), 'EADDRINUSE', 'bind');
      assert.equal(err.message, `bind 127.0.0.1:${port}: Address already in use`);
      assert.equal((err as { port?: number }).port, port);
      // SO_REUSEPORT on the newcomer alone is not enough either.
      throwsSys(() => listenTcp({ ...base, port, reusePort: true }), 'EADDRINUSE', 'bind');
    } finally {
      close(a);
    }

    const b = listenTcp({ ...base, reusePort: true });
    try {
      assert.equal(fdInfo(b).reusePort, true);
      const { port } = getsockname(b);
      const c = listenTcp({ ...base, port, reusePort: true });
      try {
        assert.notEqual(c, b);
        assert.equal(getsockname(c).port, port);
        assert.equal(fdInfo(c).listening, true);
        assert.equal(fdInfo(c).reusePort, true);
        await connectOnce({ host: '127.0.0.1', port });
      } finally {
        close(c);
      }
    } finally {
      close(b);
    }
  }));

test('IPv6 on ::1 with v6Only', { skip: !hasV6Loopback && 'no IPv6 loopback' }, () =>
  noLeak(async () => {
    const fd = listenTcp({ ...base, host: '::1', family: 6, v6Only: true });
    try {
      const info = fdInfo(fd);
      assert.equal(info.type, 'tcp6');
      assert.equal(info.v6Only, true);
      assert.equal(info.listening, true);
      const name = getsockname(fd);
      assert.deepEqual(name, { family: 6, address: '::1', port: name.port });
      await connectOnce({ host: '::1', port: name.port });
      throwsSys(() => listenTcp({ ...base, host: '::1', family: 6, port: name.port }), 'EADDRINUSE');
    } finally {
      close(fd);
    }
    // Linux sets IPV6_V6ONLY itself when binding a specific, non-v4-mapped
    // IPv6 address, so v6Only:false on ::1 reads back as true after bind.
    const fd2 = listenTcp({ ...base, host: '::1', family: 6, v6Only: false });
    try {
      assert.equal(fdInfo(fd2).v6Only, true);
    } finally {
      close(fd2);
    }
  }));

test('v6Only false/true on the v4-mapped loopback ::ffff:127.0.0.1', {
  skip: !hasV4Mapped && 'no AF_INET6 support',
}, () =>
  noLeak(async () => {
    const fd = listenTcp({ ...base, host: '::ffff:127.0.0.1', family: 6, v6Only: false });
    try {
      const info = fdInfo(fd);
      assert.equal(info.type, 'tcp6');
      assert.equal(info.v6Only, false);
      const name = getsockname(fd);
      assert.deepEqual(name, { family: 6, address: '::ffff:127.0.0.1', port: name.port });
      await connectOnce({ host: '127.0.0.1', port: name.port }); // plain IPv4 client
    } finally {
      close(fd);
    }
    // A v6-only socket cannot bind a v4-mapped address.
    throwsSys(
      () => listenTcp({ ...base, host: '::ffff:127.0.0.1', family: 6, v6Only: true }),
      'EINVAL',
      'bind',
    );
  }));

test('a non-numeric or wrong-family host is EINVAL and leaks no fd', () =>
  noLeak(() => {
    const cases: Array<[string, 4 | 6]> = [
      ['localhost', 4],
      ['not-an-ip', 6],
      ['::1', 4],
      ['127.0.0.1', 6],
      ['[::1]', 6],
      ['127.0.0.1 ', 4],
      ['1.2.3.4.5', 4],
      ['fe80::1%', 6],
      ['x'.repeat(300), 4],
    ];
    for (const [host, family] of cases) {
      const err = throwsSys(() => listenTcp({ ...base, host, family }), 'EINVAL', 'inet_pton');
      assert.match(err.message, new RegExp(`not a numeric IPv${family} address\\): Invalid argument$`));
    }
  }));

test('a non-local address is EADDRNOTAVAIL from bind', (t) =>
  noLeak(() => {
    // 192.0.2.0/24 is TEST-NET-1: never assigned to a local interface.
    let fd: number | undefined;
    try {
      fd = listenTcp({ ...base, host: '192.0.2.1' });
    } catch (err) {
      assert.ok(isNativeSyscallError(err));
      assert.equal(err.code, 'EADDRNOTAVAIL');
      assert.equal(err.syscall, 'bind');
      assert.match(err.message, /^bind 192\.0\.2\.1:0: Cannot assign requested address$/);
      return;
    }
    close(fd);
    t.skip('non-local bind allowed here (net.ipv4.ip_nonlocal_bind=1?)');
  }));

test('argument misuse throws TypeError, never crashes', () =>
  noLeak(() => {
    const bad: unknown[] = [
      undefined,
      null,
      42,
      'opts',
      {},
      { ...base, host: 1 },
      { ...base, host: '' },
      { ...base, host: '127.0.0.1\0' },
      { ...base, port: -1 },
      { ...base, port: 65536 },
      { ...base, port: 1.5 },
      { ...base, port: '80' },
      { ...base, port: Number.NaN },
      { ...base, family: 5 },
      { ...base, family: '4' },
      { ...base, reuseAddr: 1 },
      { ...base, reusePort: undefined },
      { ...base, nonBlock: 'yes' },
      { ...base, v6Only: 0 },
      { ...base, backlog: -1 },
      { ...base, backlog: 2 ** 31 },
    ];
    for (const opts of bad) {
      assert.throws(() => listenTcp(opts as ListenTcpOptions), TypeError, JSON.stringify(opts));
    }
    const call = (f: (...a: never[]) => unknown, ...args: unknown[]): unknown =>
      (f as (...a: unknown[]) => unknown)(...args);
    assert.throws(() => call(listenUnix, { path: 'x', backlog: 1 }), TypeError);
    assert.throws(() => call(listenUnix, { path: 'a\0b', backlog: 1, nonBlock: false }), TypeError);
    assert.throws(() => call(fdInfo, '3'), TypeError);
    assert.throws(() => call(fdInfo), /fdInfo: fd must be a number \(got undefined\)/);
    assert.throws(() => call(close, -1), TypeError);
    assert.throws(() => call(close, 3.5), TypeError);
    assert.throws(() => call(getsockname, 2 ** 32), TypeError);
    assert.throws(() => call(setCloexec, 0), TypeError);
    assert.throws(() => call(setCloexec, 0, 1), TypeError);
    assert.throws(() => call(flock, null), TypeError);
    // An exception thrown by a getter propagates unchanged.
    const boom = new Error('boom');
    const trap = { ...base, get port(): number { throw boom; } };
    assert.throws(() => listenTcp(trap), (err) => err === boom);
  }));

test('listenUnix: listener at a path; existing path is EADDRINUSE; long path is ENAMETOOLONG', () =>
  noLeak(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-reuseport-'));
    try {
      const sockPath = path.join(dir, 'sock');
      const fd = listenUnix({ path: sockPath, backlog: 8, nonBlock: true });
      try {
        assert.deepEqual(fdInfo(fd), {
          nonBlock: true,
          cloexec: true,
          reuseAddr: false,
          reusePort: false,
          v6Only: null,
          listening: true,
          type: 'unix',
        });
        assert.deepEqual(getsockname(fd), { family: 'unix', address: sockPath, port: 0 });
        await connectOnce({ path: sockPath });

        const err = throwsSys(
          () => listenUnix({ path: sockPath, backlog: 8, nonBlock: false }),
          'EADDRINUSE',
          'bind',
        );
        assert.equal(err.message, `bind ${sockPath}: Address already in use`);
        assert.equal((err as { path?: string }).path, sockPath);
        assert.ok(fs.statSync(sockPath).isSocket(), 'the existing socket must not be unlinked');
      } finally {
        close(fd);
      }
      assert.ok(fs.existsSync(sockPath), 'close() leaves the socket file behind');

      // A regular file in the way is EADDRINUSE too.
      const filePath = path.join(dir, 'file');
      fs.writeFileSync(filePath, '');
      throwsSys(() => listenUnix({ path: filePath, backlog: 1, nonBlock: false }), 'EADDRINUSE');

      throwsSys(
        () => listenUnix({ path: path.join(dir, 'x'.repeat(120)), backlog: 1, nonBlock: false }),
        'ENAMETOOLONG',
        'bind',
      );
      throwsSys(
        () => listenUnix({ path: path.join(dir, 'missing', 'sock'), backlog: 1, nonBlock: false }),
        'ENOENT',
        'bind',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }));

test('flock: exclusive between two open file descriptions of the same file', () =>
  noLeak(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-reuseport-'));
    try {
      const lockPath = path.join(dir, 'lock');
      fs.writeFileSync(lockPath, '');
      const a = fs.openSync(lockPath, 'r');
      let aOpen = true;
      const b = fs.openSync(lockPath, 'r');
      try {
        assert.equal(flock(a), true);
        assert.equal(flock(b), false);
        assert.equal(flock(a), true, 're-locking through the holder succeeds');
        fs.closeSync(a);
        aOpen = false;
        assert.equal(flock(b), true, 'closing the holder releases the lock');
      } finally {
        if (aOpen) fs.closeSync(a);
        fs.closeSync(b);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }));

test('fd helpers: setCloexec, fdInfo/getsockname on non-sockets, close errors, openFds', () =>
  noLeak(() => {
    const fd = listenTcp(base);
    let open = true;
    try {
      setCloexec(fd, false);
      assert.equal(fdInfo(fd).cloexec, false);
      setCloexec(fd, true);
      assert.equal(fdInfo(fd).cloexec, true);

      const fds = openFds();
      assert.deepEqual(fds, [...fds].sort((x, y) => x - y));
      assert.ok(fds.includes(fd));

      close(fd);
      open = false;
      assert.ok(!openFds().includes(fd));
      throwsSys(() => close(fd), 'EBADF', 'close');
      throwsSys(() => fdInfo(fd), 'EBADF');
      throwsSys(() => getsockname(fd), 'EBADF', 'getsockname');
      throwsSys(() => setCloexec(fd, true), 'EBADF');
      throwsSys(() => flock(fd), 'EBADF', 'flock');
    } finally {
      if (open) close(fd);
    }

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-reuseport-'));
    try {
      const file = fs.openSync(path.join(dir, 'f'), 'w');
      try {
        const info = fdInfo(file);
        assert.equal(info.type, 'other');
        assert.equal(info.listening, false);
        assert.equal(info.v6Only, null);
        throwsSys(() => getsockname(file), 'ENOTSOCK', 'getsockname');
      } finally {
        fs.closeSync(file);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }));
