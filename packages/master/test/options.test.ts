import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OPTION_SPECS, helpText, parseArgs, rubyOnlyWarning, UsageError } from '../src/options.js';
import { parseBindSpec, BindError } from '../src/bind-spec.js';
import { childEnv } from '../src/child-env.js';
import { normalizeSignal } from '../src/signals.js';
import { VERSION } from '../src/version.js';
import { coreConfig } from '../src/master-group.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

test('parsing stops at the program; its options are its own', () => {
  const o = parseArgs(['-n', '3', '-b', '0.0.0.0:80,r', 'app', '-n', '5', '--x']);
  assert.equal(o.number, 3);
  assert.deepEqual(o.binds, ['0.0.0.0:80,r']);
  assert.equal(o.program, 'app');
  assert.deepEqual(o.programArgs, ['-n', '5', '--x']);
});

test("--stop-signal: default USR2 (einhorn's), any catchable signal", () => {
  assert.equal(parseArgs(['app']).stopSignal, 'SIGUSR2');
  assert.equal(parseArgs(['--stop-signal', 'term', 'app']).stopSignal, 'SIGTERM');
  assert.equal(parseArgs(['--stop-signal=SIGQUIT', 'app']).stopSignal, 'SIGQUIT');
});

test('-- ends the options; --opt=value and -n3 forms work; -b repeats', () => {
  const o = parseArgs(['--number=2', '-b', 'a:1', '--bind', 'b:2', '-l5', '--', '-weird-program', 'x']);
  assert.equal(o.number, 2);
  assert.equal(o.backlog, 5);
  assert.equal(parseArgs(['-n3', 'app']).number, 3);
  assert.deepEqual(o.binds, ['a:1', 'b:2']);
  assert.equal(o.program, '-weird-program');
});

test('-m: flag, `-m manual`, `-m SECONDS` and `-m PROGRAM`', () => {
  assert.deepEqual(parseArgs(['-m', 'app']).ackMode, { kind: 'manual' });
  assert.equal(parseArgs(['-m', 'app']).program, 'app');
  assert.deepEqual(parseArgs(['-m', 'manual', 'app']).ackMode, { kind: 'manual' });
  assert.equal(parseArgs(['-m', 'manual', 'app']).program, 'app');
  assert.deepEqual(parseArgs(['-m', '2.5', 'app']).ackMode, { kind: 'timer', seconds: 2.5 });
  assert.deepEqual(parseArgs(['--manual', 'app']).ackMode, { kind: 'manual' });
  assert.deepEqual(parseArgs(['--ack-mode=0', 'app']).ackMode, { kind: 'timer', seconds: 0 });
  assert.deepEqual(parseArgs(['app']).ackMode, { kind: 'timer', seconds: 1 });
});

test('grouped short flags and verbosity', () => {
  const o = parseArgs(['-vv', '-k4', 'app']);
  assert.equal(o.verbosity, -1, '-vv: debug and trace');
  assert.equal(o.killChildrenOnExit, true);
  assert.equal(o.ipv4Only, true);
  assert.equal(parseArgs(['-qq', 'app']).verbosity, 3);
});

test('usage errors name the problem', () => {
  const bad: Array<[string[], RegExp]> = [
    [['-n', 'x', 'app'], /-n expects a non-negative integer, got 'x'/],
    [['-n', '1', '-n', '2', 'app'], /-n given more than once/],
    [['--number'], /--number expects a value/],
    [['--help=yes'], /does not take a value/],
    [['-s', '0', 'app'], /-s must be greater than 0/],
    [['-l', '0', 'app'], /-l expects an integer >= 1/],
    [['--socket-mode', '999', 'app'], /octal mode/],
    [['-c', 'a b', 'app'], /-c expects a name/],
    [['--nice', '1:2:renice', 'app'], /RENICE_CMD part is not supported/],
    [['--nice', '99', 'app'], /from -20 to 19/],
    [['--s', '1', 'app'], /^ambiguous option '--s': could be --socket-path, --socket-mode, --seconds, --signal-timeout, .*--syslog-to$/],
    [['--sock=x', 'app'], /^ambiguous option '--sock': could be --socket-path, --socket-mode$/],
    [['--numbers', '2', 'app'], /^unknown option '--numbers'/],
    [['--with-state-fd', '3', 'app'], /internal/],
    [[], /missing program/],
    [['--stop-signal', 'KILL', 'app'], /--stop-signal expects a signal name that can be caught/],
    [['--stop-signal', 'NOPE', 'app'], /--stop-signal expects/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseArgs(argv), (e: Error) => e instanceof UsageError && re.test(e.message), argv.join(' '));
});

test("long options by unique prefix, as Ruby's OptionParser takes them", () => {
  const o = parseArgs(['--num', '3', '--sig=5', '--max-un', '2', '--kill', '--ba', '7', 'app']);
  assert.equal(o.number, 3);
  assert.equal(o.signalTimeoutSec, 5);
  assert.equal(o.maxUnacked, 2);
  assert.equal(o.killChildrenOnExit, true);
  assert.equal(o.backlog, 7);
  assert.equal(parseArgs(['--syslog', 'app']).syslog, true, 'an exact name wins over longer ones');
  assert.throws(() => parseArgs(['--num', '1', '--number', '2', 'app']), /--number given more than once/);
});

test('--gc-before-fork and -p/--preload are accepted, with one warning', () => {
  const o = parseArgs(['--gc-before-fork', '-p', 'lib/app.rb', '-n', '2', 'app']);
  assert.equal(o.number, 2);
  assert.equal(o.program, 'app');
  assert.deepEqual(o.rubyOnly, ['--gc-before-fork', '-p lib/app.rb']);
  assert.match(rubyOnlyWarning(o)!, /^ignoring --gc-before-fork, -p lib\/app.rb: .*only mean something for Ruby children$/);
  assert.equal(rubyOnlyWarning(parseArgs(['app'])), null);
  assert.deepEqual(parseArgs(['--preload=x', 'app']).rubyOnly, ['--preload x']);
});

test('-b specs: IPv4, IPv6, host names, flags', () => {
  assert.deepEqual(parseBindSpec('127.0.0.1:8080,r,n'), {
    text: '127.0.0.1:8080,r,n',
    host: '127.0.0.1',
    port: 8080,
    reuseAddr: true,
    nonBlock: true,
    reusePort: false,
  });
  assert.equal(parseBindSpec('[::1]:80').host, '::1');
  assert.equal(parseBindSpec('localhost:0,SO_REUSEPORT,').reusePort, true);
  for (const bad of ['127.0.0.1', ':80', '127.0.0.1:', '127.0.0.1:x', '[nothex]:80', '::1:80', 'a:1,q', 'a:99999']) {
    assert.throws(() => parseBindSpec(bad), BindError, bad);
  }
});

test('child environment: drops, strips inherited EINHORN_, sets einhorn\'s variables', () => {
  const env = childEnv({
    base: { PATH: '/bin', SECRET: 'x', EINHORN_FD_9: '9', KEEP: 'y' },
    drop: ['SECRET'],
    masterPid: 42,
    sockPath: '/run/x.sock',
    sockets: [
      { childFd: 3, family: 'AF_INET' },
      { childFd: 4, family: 'AF_INET6' },
    ],
    slot: 2,
  });
  assert.deepEqual(env, {
    PATH: '/bin',
    KEEP: 'y',
    EINHORN_MASTER_PID: '42',
    EINHORN_SOCK_PATH: '/run/x.sock',
    EINHORN_FD_COUNT: '2',
    EINHORN_FD_0: '3',
    EINHORN_FD_FAMILY_0: 'AF_INET',
    EINHORN_FD_1: '4',
    EINHORN_FD_FAMILY_1: 'AF_INET6',
    EINHORN_FDS: '3 4',
    EINHORN_CHILD_INDEX: '2',
  });
});

test('signal names', () => {
  assert.equal(normalizeSignal('usr2'), 'SIGUSR2');
  assert.equal(normalizeSignal('SIGHUP'), 'SIGHUP');
  assert.equal(normalizeSignal('9'), null);
  assert.equal(normalizeSignal('NOPE'), null);
  assert.equal(normalizeSignal('SIG HUP'), null);
});

test('--help, the man page and the option table agree', () => {
  const man = readFileSync(`${root}/man/einhyrningsins.1`, 'utf8');
  const help = helpText();
  // Every option of the table is in --help and documented in the man page (as a .TP entry).
  // The option names of every `.TP` entry of the OPTIONS section (roff writes - as \-).
  const section = man.slice(man.indexOf('.SH OPTIONS'), man.indexOf('.SH', man.indexOf('.SH OPTIONS') + 4));
  const manOptions = new Set(
    [...section.matchAll(/^\.TP\n(.+)$/gm)].flatMap((m) =>
      [...m[1]!.replace(/\\-/g, '-').matchAll(/(?:^|[ "])--([a-z0-9-]+)|(?:^|[ "])-([a-z0-9])(?=[ ",]|$)/g)].map((x) => x[1] ?? x[2]),
    ),
  );
  for (const s of OPTION_SPECS) {
    assert.ok(help.includes(`--${s.long}`), `--help lists --${s.long}`);
    if (s.short) assert.ok(help.includes(`-${s.short}, --${s.long}`), `--help pairs -${s.short} with --${s.long}`);
    assert.ok(manOptions.has(s.long), `man page documents --${s.long}`);
    if (s.short) assert.ok(manOptions.has(s.short), `man page documents -${s.short}`);
  }
  // And the man page documents nothing the program does not take.
  const known = new Set(OPTION_SPECS.flatMap((s) => [s.long, s.short].filter(Boolean)));
  for (const o of manOptions) assert.ok(known.has(o as string), `man page option ${o} exists in the program`);
  assert.match(man, new RegExp(`einhyrningsins ${VERSION.replace(/\./g, '\\.')}`));
});

test('VERSION matches package.json', () => {
  const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
  assert.equal(VERSION, pkg.version);
});

test('--handover and --handover-gap set the engine\'s handover pacing; without them there is none (einhorn\'s)', () => {
  assert.equal(coreConfig(parseArgs(['--', 'prog'])).handover, undefined);
  assert.deepEqual(coreConfig(parseArgs(['--handover', 'after-boot', '--', 'prog'])).handover, { afterBoot: true, gapMs: 0 });
  assert.equal(coreConfig(parseArgs(['--handover', 'at-ack', '--', 'prog'])).handover, undefined);
  assert.deepEqual(coreConfig(parseArgs(['--handover-gap', '0.25', '--', 'prog'])).handover, { afterBoot: false, gapMs: 250 });
  assert.throws(() => parseArgs(['--handover-gap', 'soon', '--', 'prog']), (e: Error) => e instanceof UsageError && /--handover-gap expects a number of seconds, got 'soon'/.test(e.message));
  assert.throws(() => parseArgs(['--handover', 'later', '--', 'prog']), (e: Error) => e instanceof UsageError && /--handover expects at-ack or after-boot, got 'later'/.test(e.message));
});
