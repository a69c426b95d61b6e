import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeLine, unescapeLine } from '../src/index.js';

test('escapeLine escapes % and LF in one pass', () => {
  assert.equal(escapeLine('a%b\nc'), 'a%25b%0Ac');
  assert.equal(escapeLine('%0A'), '%250A');
  assert.equal(escapeLine('plain'), 'plain');
});

test('einhorn mode decodes only %25 and upper-case %0A, left to right', () => {
  assert.equal(unescapeLine('%250A', 'einhorn'), '%0A');
  assert.equal(unescapeLine('a%0Ab%25c', 'einhorn'), 'a\nb%c');
  assert.equal(unescapeLine('%0a%20%2525', 'einhorn'), '%0a%20%25');
});

test('lenient mode decodes any %XX as UTF-8 bytes', () => {
  assert.equal(unescapeLine('command:%20worker:ack%0apid:%204242', 'lenient'), 'command: worker:ack\npid: 4242');
  assert.equal(unescapeLine('%E2%82%ac', 'lenient'), '\u20ac');
  assert.equal(unescapeLine('%250A', 'lenient'), '%0A');
});

test('lenient mode keeps a stray % and replaces invalid UTF-8', () => {
  assert.equal(unescapeLine('100% %zz %4', 'lenient'), '100% %zz %4');
  assert.equal(unescapeLine('a%FFb%C3', 'lenient'), 'a\ufffdb\ufffd');
  assert.equal(unescapeLine('caf\u00e9 %41', 'lenient'), 'caf\u00e9 A');
});

test('escape then unescape round-trips in both modes', () => {
  for (const s of ['', '%', '%%0A\n\n%25', 'héllo\n%0a wörld %41']) {
    assert.equal(unescapeLine(escapeLine(s), 'einhorn'), s);
    assert.equal(unescapeLine(escapeLine(s), 'lenient'), s);
  }
});
