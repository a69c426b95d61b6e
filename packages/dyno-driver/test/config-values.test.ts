import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expand } from '../src/config/expand.js';
import { keyValuePairs, nonPosixTokens, posixSplit } from '../src/config/shlex.js';
import { autoRestart, boolean, byteSize, exitCodes, octal, processOrGroupName, pythonInt, signalName } from '../src/config/values.js';
import { parseAck, parseHandoff, parseSocket } from '../src/config/project-keys.js';

test('values: integers as Python int(), booleans, autorestart', () => {
  assert.equal(pythonInt(' 42 '), 42);
  assert.equal(pythonInt('+1_000'), 1000);
  assert.equal(pythonInt('-3'), -3);
  for (const bad of ['', '1.5', '0x10', '1__0', '_1', 'ten']) assert.throws(() => pythonInt(bad), /invalid literal/);
  assert.equal(boolean('Yes'), true);
  assert.equal(boolean('OFF'), false);
  assert.equal(boolean('1'), true);
  assert.throws(() => boolean('y'), /not a valid boolean value: "y"/);
  assert.equal(autoRestart('TRUE'), 'true');
  assert.equal(autoRestart('0'), 'false');
  assert.equal(autoRestart('Unexpected'), 'unexpected');
  assert.throws(() => autoRestart('sometimes'), /invalid 'autorestart' value "sometimes"/);
});

test('values: byte sizes with KB/MB/GB in any case, 1024-based', () => {
  assert.equal(byteSize('0'), 0);
  assert.equal(byteSize('1024'), 1024);
  assert.equal(byteSize('10KB'), 10240);
  assert.equal(byteSize('50mb'), 50 * 1024 * 1024);
  assert.equal(byteSize('1Gb'), 1024 ** 3);
  assert.equal(byteSize(' 2MB'), 2 * 1024 * 1024);
  for (const bad of ['10K', '1.5MB', 'MB', '10 TB', '']) assert.throws(() => byteSize(bad), /not a byte size/);
  assert.throws(() => byteSize('-1MB'), /must not be negative/);
});

test('values: exit codes, umask, signals, names', () => {
  assert.deepEqual(exitCodes('0'), [0]);
  assert.deepEqual(exitCodes('0, 2,255'), [0, 2, 255]);
  assert.deepEqual(exitCodes(''), []);
  for (const bad of ['256', '-1', '0,,1', 'a', '0;1']) assert.throws(() => exitCodes(bad), /not a valid list of exit codes/);
  assert.equal(octal('022'), 0o22);
  assert.equal(octal('0o077'), 0o77);
  assert.equal(octal('7'), 7);
  assert.throws(() => octal('8'), /can not be converted to an octal type/);
  assert.throws(() => octal('1000'), /out of range/);
  assert.equal(signalName('TERM'), 'TERM');
  assert.equal(signalName('sigint'), 'INT');
  assert.equal(signalName(' hup '), 'HUP');
  assert.equal(signalName('9'), 'KILL');
  assert.equal(signalName('IOT'), 'ABRT');
  assert.equal(signalName('RTMIN'), 'RTMIN');
  assert.throws(() => signalName('BOGUS'), /not a valid signal name/);
  assert.throws(() => signalName('0'), /not a valid signal number/);
  assert.throws(() => signalName('40'), /not a valid signal number/);
  assert.equal(processOrGroupName(' web '), 'web');
  for (const bad of ['a b', 'a:b', 'a/b', '']) assert.throws(() => processOrGroupName(bad));
});

test('expand: Python %-formatting with a mapping', () => {
  const e = { program_name: 'web', process_num: 3, ENV_HOME: '/home/x' };
  assert.equal(expand('%(program_name)s_%(process_num)02d', e, 'k'), 'web_03');
  assert.equal(expand('%(process_num)s|%(process_num)3d|%(process_num)-3d|%(process_num)x', e, 'k'), '3|  3|3  |3');
  assert.equal(expand('100%% %(ENV_HOME)s', e, 'k'), '100% /home/x');
  assert.equal(expand('%(program_name).2s', e, 'k'), 'we');
  assert.throws(() => expand('%(nope)s', e, 'sec.key'), /format string "%\(nope\)s" for 'sec.key' contains names \('nope'\) which cannot be expanded\. Available names: ENV_HOME, process_num, program_name/);
  assert.throws(() => expand('50%', e, 'k'), /badly formatted: incomplete format/);
  assert.throws(() => expand('%(program_name', e, 'k'), /incomplete format key/);
  assert.throws(() => expand('%(program_name)d', e, 'k'), /a number is required/);
  assert.throws(() => expand('%s', e, 'k'), /without a \(name\)/);
});

test('shlex: environment= is dict_of_key_value_pairs (non-POSIX shlex), quirks included', () => {
  assert.deepEqual(keyValuePairs('A="x, y",B=\'2\',C=/a/b.c+d-e(f):g'), { A: 'x, y', B: '2', C: '/a/b.c+d-e(f):g' });
  assert.deepEqual(keyValuePairs('A=1,B=2,'), { A: '1', B: '2' });
  assert.deepEqual(keyValuePairs(''), {});
  // quotes stay inside a word and are stripped only at its ends
  assert.deepEqual(keyValuePairs('A=ab"c'), { A: 'ab"c' });
  assert.deepEqual(keyValuePairs(`A="'both'"`), { A: 'both' });
  // the separator is not checked: the fourth token is skipped whatever it is
  assert.deepEqual(keyValuePairs('A=1;B=2'), { A: '1', B: '2' });
  assert.deepEqual(keyValuePairs('A=1 B'), { A: '1' } as Record<string, string>);
  assert.throws(() => keyValuePairs('A=1 B=2'), /unexpected end of key\/value pairs/);
  assert.throws(() => keyValuePairs('A='), /unexpected end/);
  assert.throws(() => keyValuePairs('A="x'), /No closing quotation/);
  // # starts a comment up to the end of the line
  assert.deepEqual(nonPosixTokens('A=1 # c\nB', ''), ['A', '=', '1', 'B']);
  assert.deepEqual(keyValuePairs('A=$x'), { A: '$' } as Record<string, string>);
});

test('shlex: command= is split as shlex.split (POSIX)', () => {
  assert.deepEqual(posixSplit(`/bin/sh -c 'echo "a b"' "x\\"y" z\\ w ''`), ['/bin/sh', '-c', 'echo "a b"', 'x"y', 'z w', '']);
  assert.deepEqual(posixSplit('a#b # c'), ['a#b', '#', 'c']);
  assert.deepEqual(posixSplit('"a\\nb"'), ['a\\nb']);
  assert.throws(() => posixSplit('"open'), /No closing quotation/);
  assert.throws(() => posixSplit('trailing\\'), /No escaped character/);
});

test('project keys: socket=, handoff=, ack= as the master\'s -b and -m', () => {
  assert.deepEqual(parseSocket('tcp://127.0.0.1:8080', '/app'), {
    kind: 'tcp', text: 'tcp://127.0.0.1:8080', host: '127.0.0.1', port: 8080, reuseAddr: false, nonBlock: false, reusePort: false,
  });
  assert.equal(parseSocket('tcp://[::1]:80,r,p', '/app').kind, 'tcp');
  assert.deepEqual(parseSocket('unix:run/web.sock,mode=660', '/app'), { kind: 'unix', text: 'unix:run/web.sock,mode=660', path: '/app/run/web.sock', mode: 0o660, nonBlock: false });
  assert.equal((parseSocket('unix:///tmp/x.sock', '/app') as { path: string }).path, '/tmp/x.sock');
  assert.throws(() => parseSocket('tcp://127.0.0.1', '/'), /socket "tcp:\/\/127\.0\.0\.1": expected tcp:\/\/HOST:PORT/);
  assert.throws(() => parseSocket('tcp://127.0.0.1:70000', '/'), /port 70000 is out of range/);
  assert.throws(() => parseSocket('tcp://127.0.0.1:0', '/'), /port 0/);
  assert.throws(() => parseSocket('tcp://::1:80', '/'), /brackets/);
  assert.throws(() => parseSocket('tcp://h:80,bogus', '/'), /unknown socket option 'bogus'/);
  assert.throws(() => parseSocket('udp://h:80', '/'), /expected tcp:\/\/HOST:PORT or unix:PATH/);
  assert.throws(() => parseSocket(`unix:/${'x'.repeat(120)}`, '/'), /too long/);
  assert.throws(() => parseSocket('unix:/a,mode=999', '/'), /unknown unix socket option/);
  // as the master's --handoff: einhorn always, first; a fixed order; names as written
  assert.deepEqual(parseHandoff('port, systemd,server-starter,einhorn'), ['einhorn', 'systemd', 'server-starter', 'port']);
  assert.deepEqual(parseHandoff('systemd'), ['einhorn', 'systemd']);
  assert.throws(() => parseHandoff('einhorn,inetd'), { message: "unknown hand-off 'inetd' (known: einhorn, systemd, server-starter, port)" });
  assert.throws(() => parseHandoff('Systemd'), /unknown hand-off 'Systemd'/);
  assert.throws(() => parseHandoff('einhorn,'), /unknown hand-off ''/);
  assert.deepEqual(parseAck('manual'), { kind: 'manual' });
  assert.deepEqual(parseAck('2.5'), { kind: 'timer', seconds: 2.5 });
  assert.deepEqual(parseAck('.5'), { kind: 'timer', seconds: 0.5 });
  for (const bad of ['Manual', '-1', '1s', '', 'manuel:5']) {
    assert.throws(() => parseAck(bad), { message: `ack expects 'manual', 'manual:SECONDS' (with its ACK deadline) or a number of seconds, got ${JSON.stringify(bad)}` });
  }
  // manual:SECONDS: manual with its own ACK deadline, as the driver's --ack-timeout (more than 0, at most a day)
  assert.deepEqual(parseAck('manual:5'), { kind: 'manual', deadlineSec: 5 });
  assert.deepEqual(parseAck('manual:0.25'), { kind: 'manual', deadlineSec: 0.25 });
  assert.deepEqual(parseAck('manual:86400'), { kind: 'manual', deadlineSec: 86_400 });
  for (const bad of ['manual:', 'manual:0', 'manual:-1', 'manual:5s', 'manual:86401', 'manual:1e3', 'manual: 5']) {
    assert.throws(() => parseAck(bad), { message: `ack=manual:SECONDS expects an ACK deadline of more than 0 and at most 86400 seconds, got ${JSON.stringify(bad)}` }, bad);
  }
});
