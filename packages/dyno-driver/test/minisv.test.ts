/**
 * minisv's pieces, pure: Go time layouts and durations, JSON with lines, a task's
 * fields, minisv.json, the token rules, the HTTP router, the status words, dated lines.
 * No clock: times are given.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HttpRequest } from '@einhyrningsins/master';
import { LineSource, LogWriter } from '@einhyrningsins/master/logfile';
import { formatGo, nextAligned, parseGoDuration, type TimeParts } from '../src/minisv/go-time.js';
import { JsonSyntaxError, parseJsonLoc } from '../src/minisv/json-loc.js';
import { NO_LOG_FILES, TaskError, readTask, taskLog } from '../src/minisv/task.js';
import { parseMinisvConfig } from '../src/minisv/json-config.js';
import { bearerMatches, tokenFileProblem, tokenFromText } from '../src/minisv/token.js';
import { answerMinisv, type Answer, type MinisvTasks, type Verb } from '../src/minisv/http-api.js';
import { finishedWord, statusWord } from '../src/minisv/driver-tasks.js';
import { datedLines } from '../src/program-logs.js';
import { programCore, programQuantity } from '../src/program-launch.js';
import { ConfigError } from '../src/config/index.js';
import { createHash } from 'node:crypto';
import { parse, proc, warningsOf } from './config-fixture.js';

// Tuesday 2026-03-03 04:05:06.007 at UTC+01:00
const T: TimeParts = { year: 2026, month: 3, day: 3, hour: 4, minute: 5, second: 6, millisecond: 7, weekday: 2, offsetMinutes: 60 };
const UTC_PM: TimeParts = { year: 2009, month: 11, day: 10, hour: 23, minute: 0, second: 0, millisecond: 120, weekday: 2, offsetMinutes: 0, zone: 'UTC' };

test("go time: minisv's layouts and the rest of Go's reference time", () => {
  assert.equal(formatGo('20060102.150405', T), '20260303.040506');
  assert.equal(formatGo('2006/01/02 15:04:05', T), '2026/03/03 04:05:06');
  assert.equal(formatGo('Jan _2 03:04:05PM', T), 'Mar  3 04:05:06AM');
  assert.equal(formatGo('Monday, January 2 2006 3:4:5 pm', T), 'Tuesday, March 3 2026 4:5:6 am');
  assert.equal(formatGo('Mon 06-1-2', T), 'Tue 26-3-3');
  assert.equal(formatGo('15:04:05.000 -07:00 -0700 Z07:00', T), '04:05:06.007 +01:00 +0100 +01:00');
  assert.equal(formatGo('15:04:05.999999 Z07:00 MST', UTC_PM), '23:00:00.12 Z UTC');
  assert.equal(formatGo('2006-01-02T15:04:05.000Z07:00', UTC_PM), '2009-11-10T23:00:00.120Z');
  assert.equal(formatGo('002 __2', T), '062  62');
  // Not a layout word: letters that only start like one stay as they are.
  assert.equal(formatGo('Month', T), 'Month');
  assert.equal(formatGo('log-', T), 'log-');
});

test('go durations: time.ParseDuration forms in ms; bad ones refused', () => {
  assert.equal(parseGoDuration('1h'), 3_600_000);
  assert.equal(parseGoDuration('1h30m'), 5_400_000);
  assert.equal(parseGoDuration('1.5h'), 5_400_000);
  assert.equal(parseGoDuration('500ms'), 500);
  assert.equal(parseGoDuration('2m3.5s'), 123_500);
  assert.equal(parseGoDuration('0'), 0);
  for (const bad of ['', '1', 'h', '1x', '1h 30m', '--1h']) assert.throws(() => parseGoDuration(bad), /invalid duration/, bad);
});

test('logreopen: the next multiple of the interval, then every interval (fake clock)', () => {
  const hour = 3_600_000;
  assert.equal(nextAligned(10 * hour + 1, hour), 11 * hour);
  assert.equal(nextAligned(10 * hour, hour), 11 * hour);
  assert.equal(nextAligned(10 * hour - 1, hour), 10 * hour);
});

test('json with lines: values and keys carry their line; errors name line and column', () => {
  const n = parseJsonLoc('{\n  "a": 1,\n  "b": [true,\n null, "x\\u0041"]\n}');
  assert.equal(n.kind, 'object');
  if (n.kind !== 'object') return;
  assert.deepEqual(n.entries.map((e) => [e.key, e.keyLine, e.value.line]), [['a', 2, 2], ['b', 3, 3]]);
  const b = n.entries[1]?.value;
  assert.ok(b?.kind === 'array');
  if (b?.kind === 'array') assert.deepEqual(b.items.map((i) => [i.kind, i.line, 'value' in i ? i.value : null]), [['boolean', 3, true], ['null', 4, null], ['string', 4, 'xA']]);
  const err = (t: string) => {
    try {
      parseJsonLoc(t);
    } catch (e) {
      assert.ok(e instanceof JsonSyntaxError);
      return `${e.line}:${e.column} ${e.message}`;
    }
    return 'parsed';
  };
  assert.equal(err('{\n  "a": 1,\n}'), "3:1 expected a string key");
  assert.equal(err('{"a" 1}'), "1:6 expected ':' after a key");
  assert.equal(err('[1] x'), '1:5 unexpected data after the top-level value');
  assert.equal(err('"a\nb"'), '1:3 control character in a string');
  assert.equal(err('[01]'), "1:3 expected ',' or ']'");
  assert.equal(err('['.repeat(100)), '1:66 nested deeper than 64');
});

const task = (json: string, unknown: 'warn' | 'error' = 'error', warn: (l: number, m: string) => void = () => undefined) =>
  readTask('t', parseJsonLoc(json), { cwd: '/srv/app', logs: NO_LOG_FILES, unknown, warn });

test("task: minisv's fields as a program; keys matched case-insensitively as Go's decoder", () => {
  const p = task('{"Command": "/usr/bin/redis-server", "args": ["--port", "6379"], "workdir": "tmp", "wait": 60, "restartpause": 2, "startTime": 10}');
  const x = p.processes[0];
  assert.ok(x);
  assert.deepEqual(x.argv, ['/usr/bin/redis-server', '--port', '6379']);
  assert.equal(x.directory, '/srv/app/tmp');
  assert.equal(x.stopwaitsecs, 60);
  assert.equal(x.startsecs, 10);
  assert.equal(x.minReadySecs, 10);
  assert.equal(x.respawnDelaySecs, 2);
  assert.equal(x.autorestart, 'true');
  assert.equal(x.oneTime, undefined);
  assert.equal(x.redirectStderr, true);
  const core = programCore(p, 1, false, 30);
  assert.equal(core.respawnDelayMs, 2000);
  assert.equal(core.minReadyMs, 10_000);
  assert.equal(core.signalTimeoutMs, 60_000);
  assert.equal(programQuantity(p), 1);
  // Not given: minisv's zero values, except wait (SIGKILL at once would skip every graceful stop).
  const d = task('{"command": "x"}').processes[0];
  assert.equal(d?.stopwaitsecs, 10);
  assert.equal(d?.directory, null);
  assert.equal(programCore(task('{"command": "x", "restartPause": 0}'), 1, false, 30).respawnDelayMs, 100);
});

test("task: ack as the INI key: manual:SECONDS is the task's own ACK deadline, manual the driver's --ack-timeout", () => {
  assert.deepEqual(task('{"command": "x", "ack": "manual:1.5"}').processes[0]?.ack, { kind: 'manual', deadlineSec: 1.5 });
  assert.deepEqual(programCore(task('{"command": "x", "ACK": "manual:1.5"}'), 1, false, 30).ackMode, { kind: 'manual', deadlineMs: 1500 });
  assert.deepEqual(programCore(task('{"command": "x", "ack": "manual"}'), 1, false, 12).ackMode, { kind: 'manual', deadlineMs: 12_000 });
  assert.deepEqual(programCore(task('{"command": "x"}'), 1, false, 12).ackMode, { kind: 'timer', ms: 1000 });
});

test('task: fetch, fetchInterval, fetchMaxSize and watch as the INI keys fetch=, fetch_interval=, fetch_max_size=, watch=; each bad one refused at its line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'minisv-fetch-'));
  try {
    mkdirSync(join(dir, 'deploy'));
    const t2 = (json: string) => readTask('t', parseJsonLoc(json), { cwd: dir, logs: NO_LOG_FILES, unknown: 'error', warn: () => undefined });
    const x = t2('{"command": "/srv/app/bin", "fetch": "https://releases.example/app", "fetchInterval": 0.5, "fetchMaxSize": "64MB", "watch": ["deploy/current", "/etc/app.env"]}').processes[0]!;
    assert.deepEqual(x.fetch, { url: 'https://releases.example/app', intervalSec: 0.5, maxBytes: 64 * 1024 * 1024 });
    assert.deepEqual(x.watch, [join(dir, 'deploy/current'), '/etc/app.env']);
    // The INI defaults; a number of bytes; one path as a string; keys in any case.
    const y = t2('{"command": "/srv/app/bin", "FETCH": "file:///srv/releases/app", "fetchmaxsize": 1024, "Watch": "VERSION"}');
    assert.deepEqual(y.processes[0]!.fetch, { url: 'file:///srv/releases/app', intervalSec: 60, maxBytes: 1024 });
    assert.deepEqual(y.processes[0]!.watch, [join(dir, 'VERSION')]);
    assert.equal(y.fetchLoc?.line, 1);
    assert.equal(t2('{"command": "x"}').fetchLoc, null);
    assert.deepEqual(t2('{"command": "x", "watch": null, "fetch": null}').processes[0]!.watch, []);
    const bad = (json: string, message: string, line: number) => {
      assert.throws(() => t2(json), (err: unknown) => err instanceof TaskError && err.message === message && err.line === line, json);
    };
    bad('{"command": "x",\n"fetch": "ftp://h/a"}', `task t: field "fetch": ftp://h/a: unsupported scheme 'ftp' (http, https or file)`, 2);
    bad('{"command": "x",\n"fetch": 5}', 'task t: field "fetch": expected a string, got a number', 2);
    bad('{"command": "x",\n"fetchInterval": 5}', 'task t: field "fetchInterval": only means something with "fetch"', 2);
    bad('{"command": "x", "fetch": "http://h/a",\n"fetchInterval": 0}', 'task t: field "fetchInterval": expects a number of seconds greater than 0, got "0"', 2);
    bad('{"command": "x", "fetch": "http://h/a",\n"fetchInterval": true}', 'task t: field "fetchInterval": expected a number or a string, got a boolean', 2);
    bad('{"command": "x", "fetch": "http://h/a",\n"fetchMaxSize": "lots"}', 'task t: field "fetchMaxSize": expects a size in bytes (or with a K, M or G suffix, e.g. 64M or 64MB), got "lots"', 2);
    bad('{"command": "x",\n"watch": "/no/such/dir/file"}', 'task t: field "watch": /no/such/dir/file: directory /no/such/dir does not exist', 2);
    bad('{"command": "x",\n"watch": ["a", 1]}', 'task t: field "watch": expected a path or an array of paths, one is a number', 2);
    bad('{"command": "x",\n"watch": []}', 'task t: field "watch": expected a path or an array of paths, got an empty array', 2);
    bad('{"command": "x",\n"watch": [""]}', 'task t: field "watch": a path is empty', 2);
    // In minisv.json, the fetch's line is the file's (messages about the executable point there).
    const c = parseMinisvConfig('{"tasks": {\n"a": {"command": "/srv/a",\n"fetch": "http://h/a"}}}', 'm.json', dir);
    assert.deepEqual(c.model.programs[0]?.fetchLoc, { file: 'm.json', line: 3 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('task: oneTime runs only when asked, is never restarted, and a failed spawn is not retried', () => {
  const p = task('{"command": "/usr/bin/git", "args": ["pull"], "oneTime": true}');
  assert.equal(p.processes[0]?.oneTime, true);
  assert.equal(programQuantity(p), 0);
  const c = programCore(p, 1, false, 30);
  assert.equal(c.respawn, false);
  assert.equal(c.retries, 0);
  assert.deepEqual(c.ackMode, { kind: 'timer', ms: 0 });
  // The INI key chosen for it: onetime=true.
  const ini = proc(parse('[program:pull]\ncommand=/usr/bin/git pull\nonetime=true\n'), 'pull');
  assert.equal(ini.oneTime, true);
  assert.throws(() => parse('[program:p]\ncommand=/bin/x\nsocket=tcp://127.0.0.1:9999\nonetime=true\n'), /:4: onetime: a one-time program cannot have a socket=/);
  assert.deepEqual(warningsOf(parse('[program:p]\ncommand=/bin/x\nautostart=true\nonetime=true\n')).map((w) => w.replace(/^.*?:(\d+): /, 'L$1: ')), ['L3: autostart=true is ignored with onetime=true (a one-time program runs only when asked)']);
});

test('task: every bad field is refused with its line and a message naming it', () => {
  const bad = (json: string, re: RegExp, line?: number) => {
    try {
      task(json);
      assert.fail(`accepted ${json}`);
    } catch (err) {
      assert.ok(err instanceof TaskError, String(err));
      assert.match(err.message, re);
      if (line !== undefined) assert.equal(err.line, line);
    }
  };
  bad('[]', /expected an object, got an array/);
  bad('{"args": ["x"]}', /"command" is required/);
  bad('{"command": ""}', /"command" is required/);
  bad('{"command": 5}', /field "command": expected a string, got a number/);
  bad('{"command": "x",\n"args": "y"}', /field "args": expected an array of strings, got a string/, 2);
  bad('{"command": "x", "args": [1]}', /one is a number/);
  bad('{"command": "x",\n\n"wait": 1.5}', /field "wait": expected a whole number of seconds, got 1.5/, 3);
  bad('{"command": "x", "wait": -1}', /expected 0..86400 seconds, got -1/);
  bad('{"command": "x", "startTime": "10"}', /field "startTime": expected a whole number of seconds, got a string/);
  bad('{"command": "x", "oneTime": "yes"}', /field "oneTime": expected true or false, got a string/);
  bad('{"command": "x", "env": {"A B": "1"}}', /is not a variable name/);
  bad('{"command": "x", "env": {"A": 1}}', /A: expected a string, got a number/);
  bad('{"command": "x",\n "comand": "y"}', /unknown field "comand" \(known: command, args/, 2);
  bad('{"command": "x", "socket": "tcp://nowhere"}', /field "socket"/);
  bad('{"command": "x", "handoff": "systemd"}', /field "handoff": needs a "socket"/);
  bad('{"command": "x", "oneTime": true, "socket": "tcp://127.0.0.1:9"}', /a one-time task cannot have a socket/);
  bad('{"command": "a\\u0000b"}', /contains NUL/);
  bad('{"command": "x",\n"ack": "manual:0"}', /^task t: field "ack": ack=manual:SECONDS expects an ACK deadline of more than 0 and at most 86400 seconds, got "manual:0"$/, 2);
  bad('{"command": "x", "ack": "later"}', /field "ack": ack expects 'manual', 'manual:SECONDS'/);
  // In a config file an unknown key is a warning, once, naming it.
  const warned: string[] = [];
  task('{"command": "x", "graylog": 1}', 'warn', (l, m) => warned.push(`${l}: ${m}`));
  assert.deepEqual(warned, ['1: task t: unknown field "graylog" (known: command, args, workdir, wait, restartPause, startTime, oneTime, env, socket, handoff, ack, fetch, fetchInterval, fetchMaxSize, watch); ignored']);
});

const README_EXAMPLE = `{
    "logdir": "/var/log/minisv",
    "logfileprefix": "container1-",
    "logreopen": "1h",
    "logsuffixdate": "20060102.150405",
    "logdate": "2006/01/02 15:04:05",
    "tasks": {
        "redis": {
            "command": "/usr/bin/redis-server",
            "args": ["--port", "6379"],
            "workdir": "/tmp",
            "wait": 60,
            "restartPause":1,
            "startTime": 10
        },
        "nginx": {
            "command": "/usr/sbin/nginx",
            "args": ["-g", "daemon off;"],
            "wait": 60,
            "restartPause":0,
            "startTime": 3
        },
        "pull": {
            "command": "/usr/bin/git",
            "args": ["pull", "-f"],
            "workdir": "/home/www/example.com",
            "oneTime": true
        }
    },
    "http": {
        "address": "127.0.0.1",
        "port": 3443
    }
}`;

test("minisv.json: README's example: three tasks, their log files, logreopen, http", () => {
  const c = parseMinisvConfig(README_EXAMPLE, 'minisv.json', '/etc');
  assert.deepEqual(c.model.programs.map((p) => p.name), ['nginx', 'pull', 'redis']);
  assert.deepEqual(c.model.warnings, []);
  const redis = c.model.programs.find((p) => p.name === 'redis')?.processes[0];
  assert.deepEqual(redis?.stdout, {
    target: { kind: 'file', path: '/var/log/minisv/container1-redis.log' },
    maxBytes: 0,
    backups: 0,
    dateSuffix: '20060102.150405',
    linePrefix: '2006/01/02 15:04:05',
  });
  assert.equal(c.model.programs.find((p) => p.name === 'pull')?.processes[0]?.oneTime, true);
  assert.equal(c.model.programs.find((p) => p.name === 'redis')?.loc.line, 8);
  assert.equal(c.reopenEveryMs, 3_600_000);
  assert.deepEqual(c.http && { address: c.http.address, port: c.http.port, loc: c.http.loc }, { address: '127.0.0.1', port: 3443, loc: { file: 'minisv.json', line: 30 } });
  // No logdir: no files, the driver's own output with the name in front.
  assert.deepEqual(taskLog('x', NO_LOG_FILES), { target: { kind: 'auto' }, maxBytes: 0, backups: 0 });
});

test('minisv.json: unknown and unsupported keys warned once each, naming the key; errors are FILE:LINE', () => {
  const c = parseMinisvConfig('{\n"logbufferlines": 10,\n"graylog": {},\n"limits": [],\n"colour": 1,\n"tasks": {"a": {"command": "x", "foo": 1}},\n"http": {"user": "u", "port": 1}\n}', 'm.json', '/');
  assert.deepEqual(
    c.model.warnings.map((w) => `${w.loc.line}: ${w.message.replace(/:.*/, '')}`),
    ['2: logbufferlines', '3: graylog', '4: limits', '5: unknown key "colour"; ignored', '6: task a', '7: http.user'],
  );
  const err = (text: string) => {
    try {
      parseMinisvConfig(text, 'm.json', '/');
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.message;
    }
    return 'accepted';
  };
  assert.equal(err('{\n"tasks": {\n"a": {"command": "x"},\n"a": {"command": "y"}}}'), 'm.json:4: tasks: a is defined twice (first at line 3)');
  assert.equal(err('{"tasks": {"a:b": {"command": "x"}}}'), 'm.json:1: tasks: invalid task name "a:b": invalid name "a:b" because of the character ":"');
  assert.equal(err('{\n"tasks": {\n"a": {\n"command": "x",\n"wait": "long"}}}'), 'm.json:5: task a: field "wait": expected a whole number of seconds, got a string');
  assert.equal(err('{\n"logreopen": "soon"}'), 'm.json:2: logreopen: invalid duration "soon" (Go\'s form: 300ms, 1.5h, 2h45m)');
  assert.equal(err('{"logreopen": "10ms"}'), 'm.json:1: logreopen: 10ms is under a second');
  assert.equal(err('{"logsuffixdate": "2006/01/02"}'), "m.json:1: logsuffixdate: a layout with '/' would name a file in another directory (\"2006/01/02\")");
  assert.equal(err('{"logfileprefix": "a/b"}'), "m.json:1: logfileprefix: must not contain '/' (\"a/b\")");
  assert.equal(err('{"http": {\n"port": 99999}}'), 'm.json:2: http.port: expected a port number 0..65535, got 99999');
  assert.match(err('{"http": {"port": 1,\n"servercert": "/etc/c.pem"}}'), /^m\.json:2: http\.servercert: TLS is not supported/);
  assert.equal(err('[1]'), 'm.json:1: expected a JSON object (minisv\'s config), got an array');
  assert.equal(err('{\n"tasks": {,}}'), 'm.json:2: not valid JSON: expected a string key (column 11)');
  assert.equal(err('{"tasks": []}'), 'm.json:1: tasks: expected an object of tasks by name, got an array');
});

test('token file: a regular file of ours that others cannot read; a token of 16+ printable characters; compared in constant time', () => {
  const st = (mode: number, uid = 1000, file = true, size = 40) => ({ isFile: () => file, mode, uid, size });
  assert.equal(tokenFileProblem(st(0o100600), 1000), null);
  assert.equal(tokenFileProblem(st(0o100640), 1000), null);
  assert.equal(tokenFileProblem(st(0o100600, 0), 1000), null);
  assert.match(tokenFileProblem(st(0o100644), 1000) ?? '', /can be read or written by others \(mode 0644\); chmod 600 it/);
  assert.match(tokenFileProblem(st(0o100602), 1000) ?? '', /mode 0602/);
  assert.match(tokenFileProblem(st(0o100600, 1001), 1000) ?? '', /belongs to another user \(uid 1001\)/);
  assert.match(tokenFileProblem(st(0o010600, 1000, false), 1000) ?? '', /is not a regular file/);
  assert.match(tokenFileProblem(st(0o100600, 1000, true, 5000), 1000) ?? '', /larger than 4096 bytes/);
  assert.deepEqual(tokenFromText('  0123456789abcdef \nsecond line'), { token: '0123456789abcdef' });
  assert.match(JSON.stringify(tokenFromText('\n')), /holds no token/);
  assert.match(JSON.stringify(tokenFromText('short')), /too short \(5 characters, at least 16/);
  assert.match(JSON.stringify(tokenFromText('0123456789 abcdef')), /printable ASCII without spaces/);
  const d = createHash('sha256').update('0123456789abcdef').digest();
  assert.equal(bearerMatches('Bearer 0123456789abcdef', d), true);
  assert.equal(bearerMatches('bearer  0123456789abcdef ', d), true);
  assert.equal(bearerMatches('Bearer 0123456789abcdeF', d), false);
  assert.equal(bearerMatches('Bearer 0123456789abcde', d), false);
  assert.equal(bearerMatches('Basic MDEyMzQ1Njc4OWFiY2RlZg==', d), false);
  assert.equal(bearerMatches('0123456789abcdef', d), false);
  assert.equal(bearerMatches(undefined, d), false);
  assert.equal(bearerMatches('', createHash('sha256').update('').digest()), false);
});

class FakeTasks implements MinisvTasks {
  calls: string[] = [];
  all() {
    return { a: { status: { status: 'running' } } };
  }
  has(name: string) {
    return name === 'a' || name === 'a b';
  }
  verb(name: string, verb: Verb): Answer {
    this.calls.push(`${verb} ${name}`);
    return { status: 200, body: { ok: true } };
  }
  add(name: string, body: string): Promise<Answer> {
    this.calls.push(`add ${name} ${body}`);
    return Promise.resolve({ status: 201, body: { ok: true } });
  }
  remove(name: string): Answer {
    this.calls.push(`remove ${name}`);
    return { status: 200, body: { ok: true } };
  }
}

const req = (method: string, path: string, body = ''): HttpRequest => ({ method, path, headers: new Map(), body });

test("router: minisv's paths, methods and statuses; nothing is called for a refused request", async () => {
  const t = new FakeTasks();
  const r = async (method: string, path: string, body = '') => {
    const rep = await answerMinisv(req(method, path, body), t);
    assert.ok(rep);
    return { status: rep.status, body: JSON.parse(rep.body) as Record<string, unknown>, allow: rep.headers?.Allow };
  };
  assert.deepEqual((await r('GET', '/')).body, t.all());
  assert.deepEqual((await r('GET', '/api/')).body, t.all());
  assert.equal((await r('GET', '/a/stop')).status, 200);
  assert.equal((await r('GET', '/api/a/restart')).status, 200);
  assert.equal((await r('GET', '/a%20b/kill')).status, 200);
  assert.equal((await r('POST', '/b', '{"command":"x"}')).status, 201);
  assert.equal((await r('DELETE', '/a')).status, 200);
  assert.deepEqual(t.calls, ['stop a', 'restart a', 'kill a b', 'add b {"command":"x"}', 'remove a']);
  t.calls = [];
  assert.deepEqual(await r('GET', '/b/stop'), { status: 404, body: { error: 'unknown task "b"', task: 'b' }, allow: undefined });
  assert.match(String((await r('GET', '/a/launch')).body.error), /^unknown action "launch" \(known: stop, restart, term, hup, kill, run, rotate, status\)/);
  assert.deepEqual(await r('POST', '/a/stop'), { status: 405, body: { error: 'POST /a/stop is not allowed (use GET)', task: 'a' }, allow: 'GET' });
  assert.equal((await r('PUT', '/a')).allow, 'POST, DELETE');
  assert.equal((await r('GET', '/a')).status, 405);
  assert.equal((await r('GET', '/b')).status, 404, 'not a task: 404, as hsup answers an unknown path');
  assert.equal((await r('POST', '/')).status, 405);
  assert.equal((await r('DELETE', '/b')).status, 404);
  assert.equal((await r('GET', '/a/b/c')).status, 404);
  assert.equal((await r('GET', '/%E0%A4%A/stop')).status, 400);
  assert.deepEqual(t.calls, []);
});

test("status words: minisv's from supervisord's states and the last run", () => {
  const s = (state: string) => [{ name: 'a', group: 'a', program: 'a', slot: 0, state, pid: null, uptimeMs: null }] as Parameters<typeof statusWord>[1];
  assert.equal(finishedWord({ code: 0, signal: null }), 'finished');
  assert.equal(finishedWord({ code: 3, signal: null }), 'finished with error: exit status 3');
  assert.equal(finishedWord({ code: null, signal: 'SIGKILL' }), 'finished with error: signal: killed');
  assert.equal(finishedWord({ code: null, signal: 'SIGWINCH' }), 'finished with error: signal: winch');
  assert.equal(statusWord(true, s('STOPPED'), false, undefined), 'not started');
  assert.equal(statusWord(true, s('RUNNING'), false, { startedAt: 1 }), 'running');
  assert.equal(statusWord(true, s('EXITED'), false, { startedAt: 1, finishedAt: 2, exit: { code: 1, signal: null } }), 'finished with error: exit status 1');
  assert.equal(statusWord(true, s('FATAL'), false, undefined), 'start failed');
  assert.equal(statusWord(false, s('RUNNING'), false, undefined), 'running');
  assert.equal(statusWord(false, s('RUNNING'), true, undefined), 'restart validation');
  assert.equal(statusWord(false, s('BACKOFF'), false, undefined), 'restarting');
  assert.equal(statusWord(false, s('STOPPED'), false, { startedAt: 5 }), 'stopped');
  assert.equal(statusWord(false, s('STOPPED'), false, undefined), 'not started');
});

test('logdate: each whole line gets the time in front; a date-suffixed file is named again at each reopen', async () => {
  const got: string[] = [];
  const when = new Date(2026, 0, 2, 3, 4, 5);
  const sink = datedLines('2006/01/02 15:04:05', { write: (b: Buffer) => got.push(b.toString()) }, () => when);
  const src = new LineSource(sink);
  src.write('one\ntw');
  src.write('o\nthree');
  src.end();
  assert.deepEqual(got, ['2026/01/02 03:04:05: one\n', '2026/01/02 03:04:05: two\n', '2026/01/02 03:04:05: three\n']);
  const dir = mkdtempSync(join(tmpdir(), 'minisv-log-'));
  try {
    let n = 0;
    const w = new LogWriter({ path: join(dir, 'a.log'), maxBytes: 0, backups: 0, pathAt: () => join(dir, `a.log.${++n}`) });
    w.write('first\n');
    await w.flush();
    await w.reopen();
    w.write('second\n');
    await w.close();
    assert.deepEqual(readdirSync(dir).sort(), ['a.log.1', 'a.log.2']);
    assert.equal(readFileSync(join(dir, 'a.log.2'), 'utf8'), 'second\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
