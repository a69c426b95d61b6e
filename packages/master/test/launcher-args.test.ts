import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launcherArgs } from '../src/host/launcher-args.js';

const base = { closeFrom: 4, nice: null, deathSignal: null, user: null, cwd: '/srv/app', umask: null, path: '/usr/bin/env', argv: ['env', '-i'] };

test('launcherArgs: the cwd always (the spawn runs on another thread), the umask in octal, the program after --', () => {
  assert.deepEqual(launcherArgs(base), ['--setpgid', '--close-from', '4', '--cwd', '/srv/app', '--', '/usr/bin/env', 'env', '-i']);
  // umask=022 in a config is 18: the launcher takes it in octal.
  assert.deepEqual(launcherArgs({ ...base, umask: 0o22 }).slice(5, 7), ['--umask', '22']);
  assert.deepEqual(launcherArgs({ ...base, umask: 0 }).slice(5, 7), ['--umask', '0']);
});

test('launcherArgs: nice, -k\'s death signal against this pid, user= with its groups', () => {
  const a = launcherArgs({ ...base, nice: -5, deathSignal: 12, user: { uid: 33, gid: 33, groups: [4, 27] } });
  assert.deepEqual(a.slice(0, 16), ['--setpgid', '--close-from', '4', '--nice', '-5', '--pdeathsig', '12', '--ppid', String(process.pid), '--uid', '33', '--gid', '33', '--groups', '4,27', '--cwd']);
  assert.ok(!launcherArgs({ ...base, user: { uid: 1, gid: 1, groups: [] } }).includes('--groups'));
});
