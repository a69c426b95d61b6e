/**
 * Side by side with supervisord 4.2.5 itself: each config is read by
 * supervisord's own ServerOptions (the code `supervisord -c FILE` runs before
 * it starts anything) and by readConfig; what one accepts the other must
 * accept, with the same processes and settings, and what one rejects the other
 * must reject, except for the documented cases where this reader is stricter.
 * Skipped when Debian's python3-supervisor (package `supervisor`) is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readConfig, systemUsers, type ConfigModel } from '../src/config/index.js';
import { withFiles } from './config-fixture.js';

const PYTHON = '/usr/bin/python3';

const DUMP = `
import sys, json, signal
from supervisor.options import ServerOptions
from supervisor.datatypes import Automatic, RestartUnconditionally, RestartWhenExitUnexpected
o = ServerOptions()
o.realize(args=['-c', sys.argv[1]])
def lf(v):
    return {'kind': 'auto'} if v is Automatic else {'kind': 'none'} if v is None else {'kind': 'file', 'path': v}
def sig(n):
    try:
        return signal.Signals(n).name[3:]
    except ValueError:
        return str(n)
def ar(v):
    return 'true' if v is RestartUnconditionally else 'unexpected' if v is RestartWhenExitUnexpected else 'false'
out = []
for g in o.process_group_configs:
    out.append({'name': g.name, 'priority': g.priority, 'processes': sorted([{
      'name': p.name, 'command': p.command, 'directory': p.directory, 'umask': p.umask, 'priority': p.priority,
      'autostart': p.autostart, 'autorestart': ar(p.autorestart), 'exitcodes': p.exitcodes, 'startsecs': p.startsecs,
      'startretries': p.startretries, 'uid': p.uid, 'stopsignal': sig(p.stopsignal),
      'stopwaitsecs': p.stopwaitsecs, 'stopasgroup': p.stopasgroup, 'killasgroup': p.killasgroup,
      'redirect_stderr': p.redirect_stderr,
      'stdout': [lf(p.stdout_logfile), p.stdout_logfile_maxbytes, p.stdout_logfile_backups],
      'stderr': [lf(p.stderr_logfile), p.stderr_logfile_maxbytes, p.stderr_logfile_backups],
      'environment': p.environment} for p in g.process_configs], key=lambda p: p['name'])})
print(json.dumps(out))
`;

const available = spawnSync(PYTHON, ['-c', 'import supervisor.options'], { stdio: 'ignore' }).status === 0;
const ENV = { PATH: '/usr/bin:/bin', HOME: '/root', APP_PORT: '8080' };

type Verdict = { ok: true; groups: unknown } | { ok: false; error: string };

function supervisord(file: string): Verdict {
  const r = spawnSync(PYTHON, ['-c', DUMP, file], { encoding: 'utf8', env: ENV, timeout: 30_000 });
  if (r.status === 0) return { ok: true, groups: JSON.parse(r.stdout) };
  return { ok: false, error: (r.stderr || r.stdout).split('\n')[0] ?? '' };
}

function ours(dir: string): Verdict {
  let m: ConfigModel;
  try {
    m = readConfig('main.conf', { cwd: dir, env: ENV, users: systemUsers(), hostname: hostname() });
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  const groups = m.groups.map((g) => ({
    name: g.name,
    priority: g.priority,
    processes: m.programs
      .filter((p) => p.group === g.name)
      .flatMap((p) => p.processes)
      .map((p) => ({
        name: p.name, command: p.command, directory: p.directory, umask: p.umask, priority: p.priority,
        autostart: p.autostart, autorestart: p.autorestart, exitcodes: p.exitcodes, startsecs: p.startsecs,
        startretries: p.startretries, uid: p.user?.uid ?? null, stopsignal: p.stopsignal, stopwaitsecs: p.stopwaitsecs,
        stopasgroup: p.stopasgroup, killasgroup: p.killasgroup, redirect_stderr: p.redirectStderr,
        stdout: [p.stdout.target, p.stdout.maxBytes, p.stdout.backups],
        stderr: [p.stderr.target, p.stderr.maxBytes, p.stderr.backups],
        environment: p.environment,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  }));
  return { ok: true, groups };
}

function compare(files: Record<string, string>, expect: 'same' | 'stricter'): { theirs: Verdict; mine: Verdict } {
  return withFiles(files, (dir) => {
    const head = `[supervisord]\nlogfile=${dir}/sd.log\npidfile=${dir}/sd.pid\n`;
    writeFileSync(join(dir, 'main.conf'), head + (files['main.conf'] ?? ''));
    const theirs = supervisord(join(dir, 'main.conf'));
    const mine = ours(dir);
    if (expect === 'same') {
      assert.equal(mine.ok, theirs.ok, `supervisord: ${JSON.stringify(theirs).slice(0, 300)}\nours: ${JSON.stringify(mine).slice(0, 300)}`);
      if (theirs.ok && mine.ok) assert.deepEqual(mine.groups, theirs.groups);
    } else {
      assert.equal(theirs.ok, true, `supervisord accepts: ${JSON.stringify(theirs).slice(0, 300)}`);
      assert.equal(mine.ok, false, 'this reader refuses');
    }
    return { theirs, mine };
  });
}

const REALISTIC = `
; a typical Debian-style supervisord.conf with programs
[program:web]
command=/usr/bin/gunicorn --bind unix:%(here)s/web.sock app:app ; inline comment
directory=%(here)s
numprocs=3
numprocs_start=1
process_name=%(program_name)s_%(process_num)02d
environment=PYTHONUNBUFFERED="1",APP_ENV='production',PORT=%(ENV_APP_PORT)s,DSN="postgres://u:p@db/x?a=1,b=2"
autorestart=true
startsecs=5
startretries=10
stopsignal=QUIT
stopwaitsecs=20
stopasgroup=true
redirect_stderr=true
stdout_logfile=%(here)s/%(program_name)s-%(process_num)s.log
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=5
user=root
umask=002

[program:worker]
command=/usr/bin/python3 -m worker
	--queue default
	--concurrency 4
autorestart=unexpected
exitcodes=0,2
priority=200
stderr_logfile=%(here)s/worker.err
stderr_logfile_maxbytes=1GB
killasgroup=true

[program:cron]
command=/bin/sh -c "while true; do date; sleep 60; done"
autostart=false
autorestart=false
stdout_logfile=NONE
stderr_logfile=off

[group:backend]
programs=worker,cron
priority=100

[include]
files=conf.d/*.conf
`;

test('supervisord side by side: a realistic config with a group and includes reads the same', { skip: !available && 'python3-supervisor is not installed' }, () => {
  const { mine } = compare(
    {
      'main.conf': REALISTIC,
      'conf.d/10-redis.conf': '[program:redis]\ncommand=/usr/bin/redis-server %(here)s/redis.conf\ndirectory=%(here)s\npriority=1\n',
      'conf.d/20-mail.conf': '[program:mail]\ncommand = /usr/sbin/exim -bdf -q30m\nstartsecs = 0\nstopsignal = sigint\n',
      'conf.d/README': 'not a conf file',
    },
    'same',
  );
  assert.ok(mine.ok);
  assert.deepEqual((mine.groups as { name: string }[]).map((g) => g.name), ['redis', 'backend', 'mail', 'web']);
});

const SAME: [string, string][] = [
  ['inline ; needs whitespace before it', '[program:a]\ncommand=/bin/echo a;b ;c\n'],
  ['continuation with a blank line inside', '[program:a]\ncommand=/bin/sh -c "echo 1\n\n  echo 2"\n'],
  ['[DEFAULT] keys', '[DEFAULT]\nstartsecs=7\n[program:a]\ncommand=x\n'],
  ['key: value with colon', '[program:a]\ncommand: /bin/a --x=1\n'],
  ['%% and %(process_num)03d', '[program:a]\ncommand=/bin/a 100%% %(process_num)03d\n'],
  ['environment quirks', `[program:a]\ncommand=x\nenvironment=A=1;B=2,C="x,y",D='q',E=$x\n`],
  ['byte size lower case', '[program:a]\ncommand=x\nstdout_logfile_maxbytes=5kb\n'],
  ['numprocs=0', '[program:a]\ncommand=x\nnumprocs=0\n'],
  ['numeric user', '[program:a]\ncommand=x\nuser=0\n'],
  ['int with underscores and sign', '[program:a]\ncommand=x\nstartsecs=+1_0\n'],
  ['signal by number', '[program:a]\ncommand=x\nstopsignal=9\n'],
  ['killasgroup=true alone', '[program:a]\ncommand=x\nkillasgroup=true\n'],
  ['group priority', '[group:g]\nprograms=a\npriority=-5\n[program:a]\ncommand=x\n'],
  ['bad: numprocs without process_num', '[program:a]\ncommand=x\nnumprocs=2\n'],
  ['bad: no command', '[program:a]\nautostart=true\n'],
  ['bad: boolean', '[program:a]\ncommand=x\nautostart=maybe\n'],
  ['bad: signal', '[program:a]\ncommand=x\nstopsignal=NOPE\n'],
  ['bad: exit code 256', '[program:a]\ncommand=x\nexitcodes=256\n'],
  ['bad: user', '[program:a]\ncommand=x\nuser=no-such-user-here\n'],
  ['bad: umask', '[program:a]\ncommand=x\numask=8\n'],
  ['bad: size', '[program:a]\ncommand=x\nstdout_logfile_maxbytes=1TB\n'],
  ['bad: environment', '[program:a]\ncommand=x\nenvironment=A=1 B=2\n'],
  ['bad: unknown expansion', '[program:a]\ncommand=%(nope)s\n'],
  ['bad: log directory', '[program:a]\ncommand=x\nstdout_logfile=/no/such/dir/a.log\n'],
  ['bad: name with a colon', '[program:a:b]\ncommand=x\n'],
  ['bad: group member', '[group:g]\nprograms=zz\n'],
  ['bad: stopasgroup without killasgroup', '[program:a]\ncommand=x\nstopasgroup=true\nkillasgroup=false\n'],
  ['bad: syntax', '[program:a]\ncommand=x\nnot an option\n'],
  ['bad: autorestart', '[program:a]\ncommand=x\nautorestart=always\n'],
  ['bad: include without files', '[include]\nfile=x\n'],
];

for (const [name, text] of SAME) {
  test(`supervisord side by side: ${name}`, { skip: !available && 'python3-supervisor is not installed' }, () => {
    compare({ 'main.conf': text }, 'same');
  });
}

/** supervisord accepts these and then misbehaves or silently drops something; this reader refuses them. */
const STRICTER: [string, string][] = [
  ['a repeated [program:x] (supervisord merges the two)', '[program:a]\ncommand=x\n[program:a]\ncommand=y\n'],
  ['an unknown section type (supervisord ignores it)', '[programm:a]\ncommand=x\n'],
  ['a program in two groups (supervisord runs it twice)', '[group:g]\nprograms=a\n[group:h]\nprograms=a\n[program:a]\ncommand=x\n'],
  ['a negative byte size', '[program:a]\ncommand=x\nstdout_logfile_maxbytes=-1\n'],
  ['signal 0', '[program:a]\ncommand=x\nstopsignal=0\n'],
  ['an unbalanced quote in command (supervisord fails at spawn)', '[program:a]\ncommand="x\n'],
];

for (const [name, text] of STRICTER) {
  test(`supervisord side by side, stricter here: ${name}`, { skip: !available && 'python3-supervisor is not installed' }, () => {
    compare({ 'main.conf': text }, 'stricter');
  });
}

test('supervisord side by side, a documented difference: an included file\'s own [include] is followed here, ignored there', { skip: !available && 'python3-supervisor is not installed' }, () => {
  withFiles({ 'a.conf': '[include]\nfiles=b.conf\n[program:a]\ncommand=x\n', 'b.conf': '[program:b]\ncommand=y\n' }, (dir) => {
    writeFileSync(join(dir, 'main.conf'), `[supervisord]\nlogfile=${dir}/sd.log\npidfile=${dir}/sd.pid\n[include]\nfiles=a.conf\n`);
    const theirs = supervisord(join(dir, 'main.conf'));
    const mine = ours(dir);
    assert.ok(theirs.ok && mine.ok);
    assert.deepEqual((theirs.groups as { name: string }[]).map((g) => g.name), ['a']);
    assert.deepEqual((mine.groups as { name: string }[]).map((g) => g.name), ['a', 'b']);
  });
});
