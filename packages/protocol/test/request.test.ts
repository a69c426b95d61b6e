import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequest, type Request, PARSE_ERROR, NO_COMMAND_ERROR, ARGS_NOT_ARRAY_ERROR } from '../src/index.js';

function ok(line: string): Request {
  const r = parseRequest(line);
  if (!r.ok) assert.fail(`expected ${JSON.stringify(line)} to parse, got ${r.error} (${r.detail ?? ''})`);
  return r.request;
}

function err(line: string): string {
  const r = parseRequest(line);
  if (r.ok) assert.fail(`expected ${JSON.stringify(line)} to fail, got ${JSON.stringify(r.request)}`);
  return r.error;
}

test('Ruby Einhorn::Worker ack (escaped YAML)', () => {
  const r = ok('---%0Acommand: worker:ack%0Apid: 4242%0A');
  assert.equal(r.command, 'worker:ack');
  assert.equal(r.pid, 4242);
  assert.deepEqual(r.args, []);
});

test('JSON acks, pid as number or numeric string', () => {
  assert.equal(ok('{"command":"worker:ack", "pid":4242}').pid, 4242);
  assert.equal(ok('{"command":"worker:ack","pid":"4242"}').pid, 4242);
  assert.equal(ok('{"command": "worker:ack", "pid": 4242}').command, 'worker:ack');
});

test('node-einhorn encodeURI style', () => {
  const r = ok('---%0Acommand:%20worker:ack%0Apid:%204242');
  assert.equal(r.command, 'worker:ack');
  assert.equal(r.pid, 4242);
});

test('einhornsh style request with id and empty args', () => {
  const r = ok('---%0Aid: 3%0Acommand: inc%0Aargs: []%0A');
  assert.equal(r.command, 'inc');
  assert.equal(r.id, 3);
  assert.deepEqual(r.args, []);
});

test('einhornsh style args, user, request_id', () => {
  const r = ok("---%0Aid: 1%0Acommand: set_workers%0Aargs:%0A- '3'%0Auser: alice%0Arequest_id: abc%0A");
  assert.deepEqual(r.args, ['3']);
  assert.equal(r.user, 'alice');
  assert.equal(r.requestId, 'abc');
});

test('go-einhorn yaml.v2 style (no ---)', () => {
  const r = ok('command: worker:ack%0Apid: 4242%0A');
  assert.equal(r.command, 'worker:ack');
  assert.equal(r.pid, 4242);
});

test('Ruby symbol keys', () => {
  const r = ok('---%0A:command: state%0A');
  assert.equal(r.command, 'state');
  assert.equal(r.raw['command'], 'state');
  assert.equal(ok('---%0A:command: worker:ping%0A:pid: 7%0A:request_id: 9%0A').pid, 7);
});

test('pid that is not an integer is left undefined', () => {
  for (const pid of ['"12a"', '-1.5', 'true', 'null', '[1]', '"-3"', '" 12"', '1e400']) {
    const r = ok(`{"command":"worker:ack","pid":${pid}}`);
    assert.equal(r.pid, undefined, pid);
    assert.equal('pid' in r, false, pid);
  }
});

test('args: scalars become strings', () => {
  assert.deepEqual(ok('{"command":"signal","args":["HUP", 9, true]}').args, ['HUP', '9', 'true']);
  assert.deepEqual(ok('{command: signal, args: [USR2]}').args, ['USR2']);
  assert.deepEqual(ok('{"command":"die","args":null}').args, []);
});

test('id and request_id accept only string or finite number', () => {
  assert.equal(ok('{"command":"inc","id":"x"}').id, 'x');
  assert.equal(ok('{"command":"inc","id":{"a":1}}').id, undefined);
  assert.equal(ok('{"command":"inc","id":true}').id, undefined);
});

test('not a mapping -> Could not parse command', () => {
  for (const line of ['[1,2]', '42', 'hello', '"str"', '---%0A', '', '- a%0A- b%0A']) {
    assert.equal(err(line), PARSE_ERROR, line);
  }
});

test('missing or bad command', () => {
  assert.equal(err('{"pid":4242}'), NO_COMMAND_ERROR);
  assert.equal(err('{"command":""}'), NO_COMMAND_ERROR);
  assert.equal(err('{"command":42}'), NO_COMMAND_ERROR);
  assert.equal(err('---%0Acommand:%0A'), NO_COMMAND_ERROR);
});

test('args errors', () => {
  assert.equal(err('{"command":"signal","args":"HUP"}'), ARGS_NOT_ARRAY_ERROR);
  assert.equal(err('{"command":"signal","args":{"a":1}}'), ARGS_NOT_ARRAY_ERROR);
  assert.equal(err('{"command":"signal","args":["HUP",{"a":1}]}'), 'Argument is a Hash, not a string: {"a":1}');
  assert.equal(err('---%0Acommand: x%0Aargs:%0A- [1, 2]%0A'), 'Argument is a Array, not a string: [1,2]');
  assert.equal(err('{"command":"x","args":[null]}'), 'Argument is a NilClass, not a string: null');
});

test('invalid YAML and invalid JSON', () => {
  assert.equal(err('command: [1'), PARSE_ERROR);
  assert.equal(err('{"command": "inc"'), PARSE_ERROR);
  assert.equal(err('command: a%0A---%0Acommand: b%0A'), PARSE_ERROR, 'two documents');
  assert.equal(err('command: "unterminated'), PARSE_ERROR);
});

test('Ruby tags do not throw', () => {
  const r = parseRequest('--- !ruby/object:Set%0Ahash:%0A  USR2: true%0Acommand: state%0A');
  assert.equal(r.ok, true);
  const s = parseRequest('---%0Acommand: !ruby/sym state%0Aargs: !ruby/array:Foo [a]%0Ab: !!binary aGk=%0A');
  assert.ok(s.ok);
  assert.equal(s.request.command, 'state');
  assert.deepEqual(s.request.args, ['a']);
  assert.equal(s.request.raw['b'], 'aGk=', 'no Buffer from !!binary');
  assert.equal(parseRequest('!ruby/object:Set').ok, false);
});

test('alias bomb is refused quickly', () => {
  const lines = [
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
    'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
    'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
    'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
    'h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]',
    'i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]',
    'command: inc',
    'args: *i',
  ];
  const t0 = Date.now();
  assert.equal(err(lines.join('%0A')), PARSE_ERROR);
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(ok('a: &x 1%0Acommand: inc%0Ab: *x%0A').raw['b'], 1, 'a few aliases are fine');
});

test('deep nesting is refused, not a crash', () => {
  for (const line of ['['.repeat(60000), '{'.repeat(60000), '- '.repeat(30000), `{"command":"x","a":${'['.repeat(30000)}${']'.repeat(30000)}}`, `command: x%0Aa: ${'['.repeat(100)}${']'.repeat(100)}`]) {
    const t0 = Date.now();
    assert.equal(err(line), PARSE_ERROR);
    assert.ok(Date.now() - t0 < 5000, 'bounded time');
  }
  assert.ok(ok(`command: x%0Aa: ${'['.repeat(20)}${']'.repeat(20)}`));
});

test('__proto__ keys stay plain data', () => {
  const r = ok('{"__proto__":{"polluted":1},"command":"x"}');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getPrototypeOf(r.raw), Object.prototype);
  const y = ok('__proto__: {polluted: 1}%0A:__proto__: 2%0Acommand: x%0A');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getPrototypeOf(y.raw), Object.prototype);
});

test('einhorn unescape mode option', () => {
  // einhorn >= 0.8.1 does not decode %20, so node-einhorn's ack is one plain scalar there.
  const r = parseRequest('---%0Acommand:%20worker:ack%0Apid:%204242', { unescape: 'einhorn' });
  assert.deepEqual(r, { ok: false, error: PARSE_ERROR, detail: 'not a mapping: String' });
  const y = parseRequest('---%0Acommand: worker:ack%0Apid: 4242%0A', { unescape: 'einhorn' });
  assert.ok(y.ok && y.request.pid === 4242);
});
