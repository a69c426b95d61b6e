import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { errorOf, parse, proc, warningsOf, withFiles, read } from './config-fixture.js';

test('program: supervisord\'s defaults', () => {
  const p = proc(parse('[program:a]\ncommand=/bin/a\n'), 'a');
  assert.deepEqual(
    { ...p, stdout: p.stdout, stderr: p.stderr },
    {
      name: 'a', program: 'a', group: 'a', processNum: 0, command: '/bin/a', argv: ['/bin/a'], directory: null, umask: null,
      priority: 999, autostart: true, autorestart: 'unexpected', exitcodes: [0], startsecs: 1, startretries: 3, user: null,
      stopsignal: 'TERM', stopwaitsecs: 10, stopasgroup: false, killasgroup: false, redirectStderr: false,
      stdout: { target: { kind: 'auto' }, maxBytes: 50 * 1024 * 1024, backups: 10 },
      stderr: { target: { kind: 'auto' }, maxBytes: 50 * 1024 * 1024, backups: 10 },
      environment: {}, socket: null, handoff: [], ack: { kind: 'timer', seconds: 1 }, fetch: null, watch: [],
    },
  );
});

test('program: every supported key read and typed', () => {
  withFiles({ 'logs/.keep': '' }, (dir) => {
    const text = [
      '[program:worker]',
      'command=/usr/bin/env python3 -m worker --queue %(program_name)s-%(process_num)d',
      'process_name=%(program_name)s-%(process_num)02d',
      'numprocs=3', 'numprocs_start=1', 'priority=10', 'autostart=no', 'autorestart=true', 'exitcodes=0,3',
      'startsecs=0', 'startretries=5', 'stopsignal=QUIT', 'stopwaitsecs=30', 'stopasgroup=true', 'user=www-data',
      'directory=%(here)s', 'umask=027', 'environment=QUEUE="q%(process_num)d",HOME_DIR=%(ENV_HOME)s',
      'stdout_logfile=%(here)s/logs/%(program_name)s-%(process_num)d.log', 'stdout_logfile_maxbytes=10MB',
      'stdout_logfile_backups=2', 'stderr_logfile=NONE', 'stderr_logfile_maxbytes=0', 'stderr_logfile_backups=0',
      'socket=unix:%(here)s/w.sock', 'handoff=systemd,einhorn', 'ack=manual', '',
    ].join('\n');
    writeFileSync(`${dir}/main.conf`, text);
    const m = read(dir);
    assert.deepEqual(warningsOf(m), []);
    assert.deepEqual(m.programs[0]?.processes.map((p) => p.name), ['worker-01', 'worker-02', 'worker-03']);
    const p = proc(m, 'worker-02');
    assert.equal(p.command, '/usr/bin/env python3 -m worker --queue worker-2');
    assert.equal(p.processNum, 2);
    assert.equal(p.priority, 10);
    assert.equal(p.autostart, false);
    assert.equal(p.autorestart, 'true');
    assert.deepEqual(p.exitcodes, [0, 3]);
    assert.equal(p.startsecs, 0);
    assert.equal(p.startretries, 5);
    assert.equal(p.stopsignal, 'QUIT');
    assert.equal(p.stopwaitsecs, 30);
    assert.equal(p.stopasgroup, true);
    assert.equal(p.killasgroup, true, 'killasgroup defaults to stopasgroup');
    assert.deepEqual(p.user, { name: 'www-data', uid: 33, gid: 33, home: '/var/www' });
    assert.equal(p.directory, dir);
    assert.equal(p.umask, 0o27);
    assert.deepEqual(p.environment, { QUEUE: 'q2', HOME_DIR: '/home/app' });
    assert.deepEqual(p.stdout, { target: { kind: 'file', path: `${dir}/logs/worker-2.log` }, maxBytes: 10 * 1024 * 1024, backups: 2 });
    assert.deepEqual(p.stderr, { target: { kind: 'none' }, maxBytes: 0, backups: 0 });
    assert.deepEqual(p.socket, { kind: 'unix', text: `unix:${dir}/w.sock`, path: `${dir}/w.sock`, mode: null, nonBlock: false });
    assert.deepEqual(p.handoff, ['einhorn', 'systemd']);
    assert.deepEqual(p.ack, { kind: 'manual' });
  });
});

test('program: numprocs > 1 needs %(process_num) in process_name; names must stay unique', () => {
  assert.equal(
    errorOf('[program:w]\ncommand=x\nnumprocs=2\n'),
    'main.conf:3: numprocs is 2, so process_name must contain %(process_num) (e.g. %(program_name)s_%(process_num)02d)',
  );
  assert.equal(
    errorOf('[program:w]\ncommand=x\nnumprocs=2\nprocess_name=w\n'),
    'main.conf:4: numprocs is 2, so process_name must contain %(process_num) (e.g. %(program_name)s_%(process_num)02d)',
  );
  assert.equal(
    errorOf('[program:w]\ncommand=x\nnumprocs=11\nprocess_name=w%(process_num).0s\n'),
    'main.conf:4: process_name: two processes are named "w" (numbers 0 and 1)',
  );
  assert.equal(errorOf('[program:w]\ncommand=x\nprocess_name=a b\n'), 'main.conf:3: process_name: invalid name "a b" because of the character " "');
  const m = parse('[program:w]\ncommand=x\nnumprocs=0\n');
  assert.deepEqual(m.programs[0]?.processes, []);
  assert.deepEqual(warningsOf(m), ['main.conf:3: numprocs=0: [program:w] has no processes']);
});

test('program: bad values are one line at their key', () => {
  const cases: [string, string][] = [
    ['autostart=maybe', 'main.conf:3: autostart: not a valid boolean value: "maybe" (true/false, yes/no, on/off, 1/0)'],
    ['autorestart=yes please', `main.conf:3: autorestart: invalid 'autorestart' value "yes please" (true, false or unexpected)`],
    ['startsecs=-1', 'main.conf:3: startsecs: -1 is below the lower bound (0)'],
    ['numprocs=1000000000\nprocess_name=%(process_num)d', 'main.conf:3: numprocs: 1000000000 is above the upper bound (10000)'],
    ['startretries=three', 'main.conf:3: startretries: invalid literal for int(): "three"'],
    ['stopsignal=STOPP', 'main.conf:3: stopsignal: value "STOPP" is not a valid signal name'],
    ['exitcodes=0,300', 'main.conf:3: exitcodes: not a valid list of exit codes: "0,300" (e.g. 0,2; each 0-255)'],
    ['stdout_logfile_maxbytes=5XB', 'main.conf:3: stdout_logfile_maxbytes: not a byte size: "5XB" (e.g. 1024, 50MB, 10KB, 1GB)'],
    ['umask=9', 'main.conf:3: umask: "9" can not be converted to an octal type'],
    ['user=nobody-here', 'main.conf:3: user: invalid user name nobody-here: no such user'],
    ['user=4242', 'main.conf:3: user: invalid user id 4242: no such user'],
    ['stdout_logfile=/no/such/dir/x.log', 'main.conf:3: stdout_logfile: the directory named as part of the path /no/such/dir/x.log does not exist'],
    ['environment=A="unclosed', 'main.conf:3: environment: No closing quotation'],
    ['directory=%(nope)s', "main.conf:3: directory: format string \"%(nope)s\" for 'program:a.directory' contains names ('nope') which cannot be expanded."],
    ['socket=tcp://localhost', 'main.conf:3: socket: socket "tcp://localhost": expected tcp://HOST:PORT[,OPT...], e.g. tcp://127.0.0.1:8080'],
    ['handoff=einhorn', 'main.conf:3: handoff: needs a socket= to hand off'],
    ['ack=soon', `main.conf:3: ack: ack expects 'manual', 'manual:SECONDS' (with its ACK deadline) or a number of seconds, got "soon"`],
    ['ack=manual:0', 'main.conf:3: ack: ack=manual:SECONDS expects an ACK deadline of more than 0 and at most 86400 seconds, got "manual:0"'],
    ['stopasgroup=true\nkillasgroup=false', 'main.conf:4: cannot set stopasgroup=true and killasgroup=false'],
  ];
  for (const [line, want] of cases) {
    const got = errorOf(`[program:a]\ncommand=/bin/a\n${line}\n`);
    assert.equal(got.split(' Available names')[0], want, line);
  }
  assert.equal(errorOf('[program:a]\ncommand=x\nuser=app\n  root\n'), 'main.conf:3: user: invalid user name app\\nroot: no such user', 'one line');
  assert.equal(errorOf('[program:a]\nautostart=true\n'), 'main.conf:1: [program:a] has no command=');
  assert.equal(errorOf('[program:a]\ncommand=  \n'), 'main.conf:2: command: the command is empty');
  assert.equal(errorOf('[program:a]\ncommand="x\n'), 'main.conf:2: command: No closing quotation');
  assert.equal(errorOf('[program:a b]\ncommand=x\n'), 'main.conf:1: [program:a b]: invalid name "a b" because of the character " "');
  assert.equal(errorOf('[program:]\ncommand=x\n'), 'main.conf:1: [program:]: the name is empty');
  assert.equal(
    errorOf('[program:a]\ncommand=x\nsocket=unix:/tmp/a.sock\nhandoff=port\n'),
    "main.conf:4: handoff: 'port' (PORT=number) needs a tcp:// socket, not unix:/tmp/a.sock",
  );
});

test('program: redirect_stderr, NONE/AUTO logs, unsupported keys warned once each with FILE:LINE', () => {
  const m = parse(
    [
      '[supervisord]', 'logfile=/tmp/x.log', 'environment=G=1,ONLY_GLOBAL=%(ENV_DB)s', '[unix_http_server]', 'file=/tmp/s.sock',
      '[supervisorctl]', '[rpcinterface:supervisor]', 'supervisor.rpcinterface_factory = x', '[eventlistener:e]', 'command=x',
      '[fcgi-program:f]', 'command=x', '[program:a]', 'command=/bin/a', 'redirect_stderr=true', 'stderr_logfile=%(here)s/e.log',
      'stdout_logfile=none', 'stdout_capture_maxbytes=1MB', 'serverurl=AUTO', 'comand=typo', 'environment=G=2', '[program:b]', 'command=/bin/b',
      'stdout_logfile=syslog', '[group:g]', 'programs=b', 'color=red', '',
    ].join('\n'),
  );
  assert.deepEqual(warningsOf(m), [
    "main.conf:2: [supervisord] logfile: ignored (only environment= is used; the rest is einhyrningsins-dyno's command line)",
    'main.conf:4: [unix_http_server] is not supported and is ignored: einhyrningsins-dyno has its own control socket (--socket)',
    'main.conf:6: [supervisorctl] is not supported and is ignored: use einhyrningsinsctl',
    'main.conf:7: [rpcinterface:supervisor] is not supported and is ignored: XML-RPC plugins do not apply',
    'main.conf:9: [eventlistener:e] is not supported and is ignored: event listeners are not supported',
    'main.conf:11: [fcgi-program:f] is not supported and is ignored: use [program:x] with socket= (shared socket, rolling restarts)',
    'main.conf:18: stdout_capture_maxbytes is not supported; ignored',
    'main.conf:19: serverurl is not supported; ignored',
    'main.conf:20: unknown key comand in [program:a]; ignored',
    'main.conf:27: unknown key color in [group:g]; ignored',
    'main.conf:16: redirect_stderr=true, so stderr_logfile is ignored (as supervisord)',
    'main.conf:24: stdout_logfile=syslog is not supported (deprecated in supervisord too); the stream goes where AUTO sends it',
  ]);
  const a = proc(m, 'a');
  assert.deepEqual(a.stdout.target, { kind: 'none' });
  assert.deepEqual(a.stderr.target, { kind: 'none' });
  assert.equal(a.redirectStderr, true);
  assert.deepEqual(a.environment, { G: '2', ONLY_GLOBAL: 'postgres://db' });
  assert.deepEqual(proc(m, 'b').stdout.target, { kind: 'auto' });
});

test('groups: [group:x] programs= and priority; start order by priority then name', () => {
  const m = parse(
    '[group:app]\nprograms=web, worker\npriority=100\n[program:web]\ncommand=/bin/web\npriority=2\n[program:worker]\ncommand=/bin/worker\npriority=1\n' +
      '[program:clock]\ncommand=/bin/clock\npriority=50\n[program:zed]\ncommand=/bin/z\n[program:alpha]\ncommand=/bin/a\n',
  );
  assert.deepEqual(m.groups.map((g) => [g.name, g.priority, g.programs, g.explicit]), [
    ['clock', 50, ['clock'], false],
    ['app', 100, ['web', 'worker'], true],
    ['alpha', 999, ['alpha'], false],
    ['zed', 999, ['zed'], false],
  ]);
  assert.deepEqual(m.programs.map((p) => `${p.group}:${p.name}`), ['clock:clock', 'app:worker', 'app:web', 'alpha:alpha', 'zed:zed']);
  assert.equal(proc(m, 'web').group, 'app');
});

test('groups: unknown member, a program in two groups, a name clash, duplicate process names', () => {
  assert.equal(errorOf('[group:g]\nprograms=a,b\n[program:a]\ncommand=x\n'), 'main.conf:2: [group:g] names unknown program b');
  assert.equal(errorOf('[group:g]\nprograms=f\n[fcgi-program:f]\ncommand=x\n'), 'main.conf:2: [group:g] names an fcgi-program, which is not supported: f');
  assert.equal(
    errorOf('[group:g]\nprograms=a\n[group:h]\nprograms=a\n[program:a]\ncommand=x\n'),
    'main.conf:4: program a is in two groups: g and h',
  );
  assert.equal(errorOf('[group:g]\nprograms=a,a\n[program:a]\ncommand=x\n'), 'main.conf:2: [group:g] lists a twice');
  assert.equal(
    errorOf('[group:a]\nprograms=b\n[program:a]\ncommand=x\n[program:b]\ncommand=y\n'),
    'main.conf:1: group name a is also the name of [program:a], which is not in it',
  );
  assert.equal(
    errorOf('[group:g]\nprograms=a,b\n[program:a]\ncommand=x\nprocess_name=p\n[program:b]\ncommand=y\nprocess_name=p\n'),
    'main.conf:6: process name p of [program:b] is also a process of [program:a] in group g',
  );
  // a group named like one of its own programs is fine (a common pattern)
  assert.deepEqual(parse('[group:web]\nprograms=web\n[program:web]\ncommand=x\n').groups.map((g) => g.name), ['web']);
});

test('expansions: %(host_node_name)s, %(group_name)s, %(ENV_X)s, a program\'s own environment in later keys', () => {
  const m = parse(
    '[group:g]\nprograms=a\n[program:a]\nenvironment=PORT=81%(process_num)02d\ncommand=/bin/a --host %(host_node_name)s --group %(group_name)s --port %(ENV_PORT)s --db %(ENV_DB)s\n',
  );
  assert.equal(proc(m, 'a').command, '/bin/a --host box --group g --port 8100 --db postgres://db');
  assert.match(errorOf('[program:a]\ncommand=x\npriority=%(process_num)d\n'), /^main\.conf:3: priority: format string "%\(process_num\)d" for 'program:a\.priority' contains names \('process_num'\)/);
});

test('program: fetch=, fetch_interval=, fetch_max_size=, watch= as the master\'s --fetch, --fetch-interval, --fetch-max-size, --watch', () => {
  withFiles({ 'deploy/.keep': '' }, (dir) => {
    writeFileSync(
      `${dir}/main.conf`,
      '[program:a]\ncommand=/bin/a\nfetch=https://releases.example/a\nfetch_interval=0.5\nfetch_max_size=64M\nwatch=%(here)s/deploy/current, %(here)s/deploy/env\n' +
        '[program:b]\ncommand=/bin/b\nfetch=file:///srv/b\nfetch_max_size=10MB\n[program:c]\ncommand=/bin/c\n',
    );
    const m = read(dir);
    assert.deepEqual(warningsOf(m), []);
    const a = proc(m, 'a');
    assert.deepEqual(a.fetch, { url: 'https://releases.example/a', intervalSec: 0.5, maxBytes: 64 * 1024 * 1024 });
    assert.deepEqual(a.watch, [`${dir}/deploy/current`, `${dir}/deploy/env`]);
    assert.equal(m.programs[0]?.fetchLoc?.line, 3);
    assert.deepEqual(proc(m, 'b').fetch, { url: 'file:///srv/b', intervalSec: 60, maxBytes: 10 * 1024 * 1024 });
    assert.equal(proc(m, 'c').fetch, null);
    assert.equal(m.programs[2]?.fetchLoc, null);
  });
  const cases: [string, string][] = [
    ['fetch=ftp://x/a', "main.conf:3: fetch: ftp://x/a: unsupported scheme 'ftp' (http, https or file)"],
    ['fetch=file://host/a', "main.conf:3: fetch: file://host/a: a file URL names an absolute path, file:///PATH (here 'host' would be a host)"],
    ['fetch=file:///srv/', 'main.conf:3: fetch: file:///srv/: a file URL must name a file, not a directory'],
    ['fetch_max_size=1M', 'main.conf:3: fetch_max_size: only means something with fetch=URL'],
    ['fetch=http://h/a\nfetch_interval=-1', 'main.conf:4: fetch_interval: expects a number of seconds greater than 0, got "-1"'],
    ['fetch=http://h/a\nfetch_max_size=0', 'main.conf:4: fetch_max_size: expects a size in bytes (or with a K, M or G suffix, e.g. 64M or 64MB), got "0"'],
    ['watch=/no/such/dir/x', 'main.conf:3: watch: /no/such/dir/x: directory /no/such/dir does not exist'],
    ['watch=', 'main.conf:3: watch: expects PATH[,PATH...], got ""'],
  ];
  for (const [line, want] of cases) assert.equal(errorOf(`[program:a]\ncommand=/bin/a\n${line}\n`), want, line);
  assert.equal(
    errorOf('[program:a]\ncommand=/bin/a%(process_num)d\nnumprocs=2\nprocess_name=a%(process_num)d\nfetch=http://h/a\n'),
    'main.conf:5: fetch: the processes of [program:a] run different executables (/bin/a0, /bin/a1); fetch replaces one',
  );
});

test("program: ack=manual:SECONDS is the program's own ACK deadline; ack=manual takes the driver's --ack-timeout; a changed deadline is a change at reread", async () => {
  const { programCore } = await import('../src/program-launch.js');
  const { diff } = await import('../src/config/index.js');
  const m = parse('[program:a]\ncommand=/bin/a\nack=manual:2.5\n[program:b]\ncommand=/bin/b\nack=manual\n[program:c]\ncommand=/bin/c\nack=3\n[program:d]\ncommand=/bin/d\n');
  assert.deepEqual(proc(m, 'a').ack, { kind: 'manual', deadlineSec: 2.5 });
  assert.deepEqual(proc(m, 'b').ack, { kind: 'manual' });
  const core = (name: string, driverAckTimeout: number) => programCore(m.programs.find((p) => p.name === name)!, 1, false, driverAckTimeout).ackMode;
  assert.deepEqual(core('a', 30), { kind: 'manual', deadlineMs: 2500 });
  assert.deepEqual(core('a', 7), { kind: 'manual', deadlineMs: 2500 }, 'its own deadline, whatever --ack-timeout');
  assert.deepEqual(core('b', 30), { kind: 'manual', deadlineMs: 30_000 });
  assert.deepEqual(core('b', 7), { kind: 'manual', deadlineMs: 7000 }, 'the driver\'s --ack-timeout');
  assert.deepEqual(core('c', 30), { kind: 'timer', ms: 3000 });
  assert.deepEqual(core('d', 30), { kind: 'timer', ms: 1000 });
  // update: the deadline is part of ack=, so a program whose deadline changed is changed (and restarted).
  const n = parse('[program:a]\ncommand=/bin/a\nack=manual:4\n[program:b]\ncommand=/bin/b\nack=manual:30\n[program:c]\ncommand=/bin/c\nack=3\n[program:d]\ncommand=/bin/d\n');
  const d = diff(m, n);
  assert.deepEqual(d.changed, ['a', 'b']);
  assert.deepEqual(d.changes, { a: ['ack'], b: ['ack'] });
  assert.deepEqual(diff(m, parse('[program:a]\ncommand=/bin/a\nack=manual:2.50\n[program:b]\ncommand=/bin/b\nack=manual\n[program:c]\ncommand=/bin/c\nack=3\n[program:d]\ncommand=/bin/d\n')).changed, [], '2.50 is 2.5');
});
