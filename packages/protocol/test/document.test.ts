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
