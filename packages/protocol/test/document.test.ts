import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDocument } from '../src/index.js';

test('einhorn client unit vector and its older psych variants', () => {
  const variants = [
    '---%0A:foo:%0A- "%25bar"%0A- "%25baz"%0A',
    "---%0A:foo:%0A- '%25bar'%0A- '%25baz'%0A",
    "---%0A:foo:%0A- ! '%25bar'%0A- ! '%25baz'%0A",
    "--- %0A:foo: %0A- ! '%25bar'%0A- ! '%25baz'%0A",
  ];
  for (const line of variants) {
    assert.deepEqual(decodeDocument(line), { ok: true, value: { foo: ['%bar', '%baz'] } }, line);
  }
});

test('symbol keys are stripped at every level (state dumps)', () => {
  const line = '---%0A:state:%0A  :children:%0A    123:%0A      :signaled: !ruby/object:Set%0A        hash:%0A          USR2: true%0A';
  assert.deepEqual(decodeDocument(line), {
    ok: true,
    value: { state: { children: { '123': { signaled: { hash: { USR2: true } } } } } },
  });
});

test('garbage gives an error result', () => {
  const r = decodeDocument('a: [1');
  assert.equal(r.ok, false);
});

test('a YAML value that contains itself is a parse error; shared aliases are fine', async () => {
  const { parseDocumentText, parseRequest, describeValue } = await import('../src/index.js');
  for (const text of ['a: &x [*x]', '&x {a: *x}', '--- &x\ncommand: worker:ack\npid: *x', 'a: &x [1, [2, *x]]']) {
    const r = parseDocumentText(text);
    assert.equal(r.ok, false, text);
    assert.match((r as { error: string }).error, /recursive alias/);
  }
  const shared = parseDocumentText('a: &x [1, 2]\nb: *x\nc: [*x, *x]');
  assert.equal(shared.ok, true);
  const req = parseRequest('---%0Acommand: worker:ack%0Apid: &a [*a]%0A');
  assert.equal(req.ok, false);
  assert.equal((req as { detail?: string }).detail, 'recursive alias (a value that contains itself)');
  const loop: unknown[] = [];
  loop.push(loop);
  assert.equal(describeValue(loop), '[...]');
  assert.equal(describeValue('x'.repeat(300)).length, 203);
});
