import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  LAUNCH_EXIT,
  assertLauncher,
  close,
  fdInfo,
  getsockname,
  launcherPath,
  listenTcp,
  openFds,
  type FdInfo,
  type SockName,
} from '../src/index.js';

/** Run `fn`, then assert that the set of open fds is unchanged. */
async function noLeak(fn: () => void | Promise<void>): Promise<void> {
  const before = openFds();
  await fn();
  assert.deepEqual(openFds(), before, 'fd leak');
}

function launch(args: string[], opts: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(launcherPath, args, { encoding: 'utf8', timeout: 20_000, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Fields of /proc/PID/stat after the comm field: [state, ppid, pgrp, session, ...]. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
}

function pgidOf(pid: number | 'self'): number {
  return Number(statFields(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))[2]);
}

function withTmpDir(fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'einhyrningsins-launch-'));
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const base = {
  host: '127.0.0.1',
  port: 0,
  family: 4,
  reuseAddr: true,
  reusePort: true,
  nonBlock: false,
  v6Only: null,
  backlog: 16,
} as const;

test('launcherPath is an absolute path to the built executable', () => {
  assert.ok(path.isAbsolute(launcherPath));
  assert.equal(path.basename(launcherPath), 'einhyrningsins-launch');
  assert.equal(assertLauncher(), launcherPath);
});

test('--setpgid makes the exec\'d program its own process-group leader', () =>
  noLeak(() => {
    const script = 'echo $$; cat /proc/$$/stat';
    const withPg = launch(['--setpgid', '--', '/bin/sh', 'sh', '-c', script]);
    assert.equal(withPg.status, 0, withPg.stderr);
    const [pidLine = '', stat = ''] = withPg.stdout.split('\n');
    const pid = Number(pidLine);
    assert.ok(pid > 0);
    assert.equal(Number(statFields(stat)[2]), pid, 'pgid == pid');

    const without = launch(['--', '/bin/sh', 'sh', '-c', script]);
    assert.equal(without.status, 0, without.stderr);
    const [pid2 = '', stat2 = ''] = without.stdout.split('\n');
    const pgid2 = Number(statFields(stat2)[2]);
    assert.notEqual(pgid2, Number(pid2));
    assert.equal(pgid2, pgidOf('self'), 'without --setpgid the child stays in our group');
  }));

test('execv passes ARG0 and ARGS verbatim, and the exit status through', () =>
  noLeak(() => {
    const r = launch(['--', '/bin/sh', 'custom-argv0', '-c', 'tr "\\0" "|" < /proc/$$/cmdline; exit 7', 'a b']);
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stdout, 'custom-argv0|-c|tr "\\0" "|" < /proc/$$/cmdline; exit 7|a b|');
    assert.equal(r.stderr, '');
  }));

test('exec failures: 127 for a missing path, 126 when not executable', () =>
  noLeak(() => {
    const missing = '/nonexistent/einhyrningsins-test-program';
    const r = launch(['--setpgid', '--', missing, 'prog']);
    assert.equal(r.status, LAUNCH_EXIT.EXEC_FAILED);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `einhyrningsins-launch: cannot execute ${missing}: No such file or directory\n`);

    withTmpDir((dir) => {
      const noExec = path.join(dir, 'no-exec');
      fs.writeFileSync(noExec, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
      const r1 = launch(['--', noExec, 'no-exec']);
      assert.equal(r1.status, LAUNCH_EXIT.NOT_EXECUTABLE);
      assert.equal(r1.stderr, `einhyrningsins-launch: cannot execute ${noExec}: Permission denied\n`);

      const garbage = path.join(dir, 'garbage');
      fs.writeFileSync(garbage, 'not a program\n', { mode: 0o755 });
      const r2 = launch(['--', garbage, 'garbage']);
      assert.equal(r2.status, LAUNCH_EXIT.NOT_EXECUTABLE);
      assert.equal(r2.stderr, `einhyrningsins-launch: cannot execute ${garbage}: Exec format error\n`);

      const r3 = launch(['--', dir, 'dir']);
      assert.equal(r3.status, LAUNCH_EXIT.NOT_EXECUTABLE);
    });
  }));

test('--pdeathsig: refuses to exec when --ppid is not our parent, runs when it is', () =>
  noLeak(() => {
    const wrong = process.pid === 1 ? 2 : 1;
    const r = launch(['--pdeathsig', '15', '--ppid', String(wrong), '--', '/bin/sh', 'sh', '-c', 'echo ran']);
    assert.equal(r.status, LAUNCH_EXIT.SETUP_FAILED);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'einhyrningsins-launch: parent process died before we set pdeathsig; refusing to exec /bin/sh\n',
    );

    const ok = launch(['--setpgid', '--pdeathsig', '15', '--ppid', String(process.pid), '--', '/bin/sh', 'sh', '-c', 'echo ran']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'ran\n');
  }));

test('--pdeathsig: the exec\'d program is killed when its parent dies', () =>
  noLeak(async () => {
    // sh starts the launcher in the background (so sh is its parent), waits
    // until it has exec'd /bin/sleep, prints the pid and exits.
    const script = [
      '"$0" --pdeathsig 9 --ppid $$ -- /bin/sleep sleep 30 </dev/null >/dev/null 2>&1 &',
      'pid=$!; i=0',
      'while [ "$(cat /proc/$pid/comm 2>/dev/null)" != sleep ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done',
      'echo $pid $(cat /proc/$pid/comm 2>/dev/null)',
    ].join('\n');
    const r = spawnSync('/bin/sh', ['-c', script, launcherPath], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const [pidText = '', comm] = r.stdout.trim().split(' ');
    const pid = Number(pidText);
    assert.ok(pid > 0);
    assert.equal(comm, 'sleep', 'the launcher exec\'d /bin/sleep');

    const alive = (): boolean => {
      try {
        const state = statFields(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))[0];
        return state !== 'Z' && state !== 'X'; // a zombie waiting for its reaper is dead
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && alive(); i++) await sleep(50);
    const survived = alive();
    if (survived) process.kill(pid, 'SIGKILL');
    assert.equal(survived, false, 'sleep survived its parent');
  }));

test('listening fds at stdio 3 and 4 pass through to the exec\'d program, CLOEXEC cleared', () =>
  noLeak(() => {
    const a = listenTcp(base);
    const b = listenTcp({ ...base, nonBlock: true });
    try {
      // fdinfo "flags:" is octal open(2) flags: O_CLOEXEC 02000000, O_NONBLOCK 04000.
      const shell = launch(
        ['--setpgid', '--', '/bin/sh', 'sh', '-c', 'grep ^flags: /proc/self/fdinfo/3 /proc/self/fdinfo/4'],
        { stdio: ['ignore', 'pipe', 'pipe', a, b] },
      );
      assert.equal(shell.status, 0, shell.stderr);
      const flags = [...shell.stdout.matchAll(/fdinfo\/(\d):flags:\s*([0-7]+)/g)].map((m) => [
        Number(m[1]),
        parseInt(m[2] ?? '', 8),
      ]);
      assert.equal(flags.length, 2, shell.stdout);
      for (const [fd = -1, fl = -1] of flags) {
        assert.equal(fl & 0o2000000, 0, `fd ${fd} is not CLOEXEC in the exec'd program`);
        assert.equal((fl & 0o4000) !== 0, fd === 4, `O_NONBLOCK on fd ${fd}`);
      }

      // Look at them from inside a Node child with this very addon.
      const index = new URL('../src/index.js', import.meta.url).href;
      const script =
        `import { fdInfo, getsockname } from ${JSON.stringify(index)};\n` +
        'process.stdout.write(JSON.stringify([fdInfo(3), getsockname(3), fdInfo(4), getsockname(4)]));';
      const env = { ...process.env };
      delete env['NODE_TEST_CONTEXT'];
      delete env['NODE_OPTIONS'];
      const r = launch(['--setpgid', '--', process.execPath, 'node', '--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe', a, b],
        env,
      });
      assert.equal(r.status, 0, r.stderr);
      const [infoA, nameA, infoB, nameB] = JSON.parse(r.stdout) as [FdInfo, SockName, FdInfo, SockName];
      assert.deepEqual(nameA, getsockname(a));
      assert.deepEqual(nameB, getsockname(b));
      // A Node child re-marks every inherited fd CLOEXEC at startup (libuv's
      // uv_disable_stdio_inheritance()), so only compare the other fields.
      assert.deepEqual({ ...infoA, cloexec: null }, { ...fdInfo(a), cloexec: null });
      assert.deepEqual({ ...infoB, cloexec: null }, { ...fdInfo(b), cloexec: null });
      assert.equal(infoA.listening, true);
      assert.equal(infoB.nonBlock, true);
      assert.equal(fdInfo(a).cloexec, true, 'the parent copy stays CLOEXEC');
    } finally {
      close(a);
      close(b);
    }
  }));

test('bad usage exits 2 with a usage message', () =>
  noLeak(() => {
    const cases: string[][] = [
      [],
      ['/bin/true', 'true'],
      ['--'],
      ['--', '/bin/true'],
      ['--bogus', '--', '/bin/true', 'true'],
      ['--pdeathsig', '9', '--', '/bin/true', 'true'],
      ['--ppid', '1', '--', '/bin/true', 'true'],
      ['--pdeathsig', '0', '--ppid', '1', '--', '/bin/true', 'true'],
      ['--pdeathsig', '99', '--ppid', '1', '--', '/bin/true', 'true'],
      ['--pdeathsig', 'TERM', '--ppid', '1', '--', '/bin/true', 'true'],
      ['--pdeathsig', '9', '--ppid', '-5', '--', '/bin/true', 'true'],
      ['--pdeathsig'],
    ];
    for (const args of cases) {
      const r = launch(args);
      assert.equal(r.status, LAUNCH_EXIT.USAGE, JSON.stringify(args));
      assert.match(r.stderr, /^einhyrningsins-launch: .*\nusage: einhyrningsins-launch /, JSON.stringify(args));
      assert.equal(r.stdout, '');
    }
  }));

test('--close-from closes every fd from N on, keeping those below', () => {
  // The shell gets fds 3 and 4 (pipes); with --close-from 4 only 3 survives the exec.
  const r = spawnSync(launcherPath, ['--close-from', '4', '--', '/bin/sh', 'sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    timeout: 20_000,
  });
  assert.equal(r.status, 0, String(r.stderr));
  // ls itself opens one more fd for the directory it reads (3 is taken, so 4).
  assert.deepEqual(String(r.stdout).trim().split(' ').map(Number).filter((n) => n !== 4), [0, 1, 2, 3]);
});

test('--nice N sets the niceness before exec; bad values are usage errors', () => {
  const r = launch(['--nice', '5', '--', '/bin/sh', 'sh', '-c', 'ps -o ni= -p $$']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '5');
  assert.equal(launch(['--nice', 'x', '--', '/bin/true', 'true']).status, 2);
});

test('a #! script whose interpreter is missing: the launcher names the interpreter, exit 127', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ein-launch-'));
  try {
    const script = path.join(dir, 'app.py');
    fs.writeFileSync(script, '#!/usr/bin/no-such-python3 -u\nprint(1)\n');
    fs.chmodSync(script, 0o755);
    const r = launch(['--', script, 'app.py']);
    assert.equal(r.status, LAUNCH_EXIT.EXEC_FAILED);
    assert.equal(r.stderr, `einhyrningsins-launch: cannot execute ${script}: its #! interpreter is not found: /usr/bin/no-such-python3\n`);
    const missing = launch(['--', path.join(dir, 'nope'), 'nope']);
    assert.equal(missing.stderr, `einhyrningsins-launch: cannot execute ${path.join(dir, 'nope')}: No such file or directory\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('EINHYRNINGSINS_LISTEN_PID=1: LISTEN_PID is the pid that runs the program (the launcher execs in place), the flag is gone', () => {
  const r = launch(['--', '/bin/sh', 'sh', '-c', 'echo "$$ ${LISTEN_PID-unset} ${EINHYRNINGSINS_LISTEN_PID-unset}"'], {
    env: { PATH: process.env.PATH, EINHYRNINGSINS_LISTEN_PID: '1', LISTEN_PID: '1' },
  });
  assert.equal(r.status, 0, r.stderr);
  const [pid, listenPid, flag] = r.stdout.trim().split(' ');
  assert.equal(listenPid, pid);
  assert.equal(flag, 'unset');
});

test('without the flag LISTEN_PID is left alone; any other value of it only removes it', () => {
  const show = 'echo "${LISTEN_PID-unset} ${EINHYRNINGSINS_LISTEN_PID-unset}"';
  const without = launch(['--', '/bin/sh', 'sh', '-c', show], { env: { PATH: process.env.PATH } });
  assert.equal(without.stdout.trim(), 'unset unset');
  const other = launch(['--', '/bin/sh', 'sh', '-c', show], { env: { PATH: process.env.PATH, EINHYRNINGSINS_LISTEN_PID: '0' } });
  assert.equal(other.stdout.trim(), 'unset unset');
});

test('--cwd and --umask: the program runs in that directory with that umask', () =>
  withTmpDir((dir) => {
    const r = launch(['--cwd', dir, '--umask', '027', '--', '/bin/sh', 'sh', '-c', 'pwd; umask; touch f; stat -c %a f']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [fs.realpathSync(dir), '0027', '640']);
    // Without them: the launcher's own.
    const plain = launch(['--', '/bin/sh', 'sh', '-c', 'pwd; umask'], { cwd: dir });
    assert.equal(plain.stdout.trim().split('\n')[0], fs.realpathSync(dir));
    assert.equal(launch(['--umask', '0', '--', '/bin/sh', 'sh', '-c', 'umask']).stdout.trim(), '0000');
  }));

test('--cwd and --umask: bad values exit 2 with one line naming the value, nothing run', () =>
  withTmpDir((dir) => {
    const marker = path.join(dir, 'ran');
    const run = ['--', '/bin/sh', 'sh', '-c', `touch ${marker}`];
    const cases: [string[], RegExp][] = [
      [['--umask', '9'], /^einhyrningsins-launch: bad --umask \(octal, 0 to 0777\): 9\n/],
      [['--umask', '1000'], /bad --umask .*: 1000\n/],
      [['--umask', '-1'], /bad --umask .*: -1\n/],
      [['--umask', ''], /bad --umask .*: \n/],
      [['--umask', '0x7'], /bad --umask .*: 0x7\n/],
      [['--cwd', ''], /^einhyrningsins-launch: bad --cwd: empty\n/],
      [['--cwd', path.join(dir, 'missing')], new RegExp(`^einhyrningsins-launch: cannot change to directory ${dir}/missing: No such file or directory\\n$`)],
      [['--cwd', '/etc/passwd'], /cannot change to directory \/etc\/passwd: Not a directory\n$/],
    ];
    for (const [opts, want] of cases) {
      const r = launch([...opts, ...run]);
      assert.equal(r.status, LAUNCH_EXIT.USAGE, JSON.stringify(opts));
      assert.match(r.stderr, want, JSON.stringify(opts));
      assert.equal(fs.existsSync(marker), false, `${JSON.stringify(opts)}: the program ran`);
    }
  }));
