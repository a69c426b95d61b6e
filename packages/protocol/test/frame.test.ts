import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, type SplitResult } from '../src/index.js';

const lines = (results: SplitResult[]): string[] =>
  results.map((r) => ('line' in r ? r.line : `<too-long ${r.length}>`));

test('splits lines, strips one \\r, skips empty lines', () => {
  const s = new LineSplitter();
  assert.deepEqual(lines(s.push(Buffer.from('a\r\n\nb\r\r\n\r\nc'))), ['a', 'b\r']);
  assert.equal(s.pending(), 1);
  assert.deepEqual(lines(s.push(Buffer.from('\n'))), ['c']);
  assert.equal(s.pending(), 0);
});

test('same lines whatever the chunk boundaries', () => {
  const input = Buffer.from('{"command":"inc"}\r\n---%0Acommand: worker:ack%0Apid: 1%0A\n\nh\u00e9llo \u20ac\nlast\r\n', 'utf8');
  const expected = ['{"command":"inc"}', '---%0Acommand: worker:ack%0Apid: 1%0A', 'h\u00e9llo \u20ac', 'last'];
  assert.deepEqual(lines(new LineSplitter().push(input)), expected);
  for (let cut = 0; cut <= input.length; cut++) {
    const s = new LineSplitter();
    const got = [...s.push(input.subarray(0, cut)), ...s.push(input.subarray(cut))];
    assert.deepEqual(lines(got), expected, `cut at ${cut}`);
  }
  for (let a = 0; a <= input.length; a += 3) {
    for (let b = a; b <= input.length; b += 5) {
      const s = new LineSplitter();
      const got = [...s.push(input.subarray(0, a)), ...s.push(input.subarray(a, b)), ...s.push(input.subarray(b))];
      assert.deepEqual(lines(got), expected, `cuts at ${a}, ${b}`);
    }
  }
  const s = new LineSplitter();
  const byByte = [...input].flatMap((byte) => s.push(Buffer.from([byte])));
  assert.deepEqual(lines(byByte), expected);
});

test('too-long line yields one error, is discarded, then the next line is fine', () => {
  const s = new LineSplitter({ maxLineLength: 10 });
  const out: SplitResult[] = [];
  out.push(...s.push(Buffer.from('0123456789')));
  assert.equal(s.pending(), 10);
  out.push(...s.push(Buffer.from('abc')));
  assert.equal(s.pending(), 0, 'nothing buffered while discarding');
  out.push(...s.push(Buffer.alloc(100000, 0x41)));
  assert.equal(s.pending(), 0);
  out.push(...s.push(Buffer.from('xyz\nok\n')));
  assert.equal(out.length, 2);
  assert.deepEqual(out[0], { error: 'too-long', length: 13 });
  assert.deepEqual(out[1], { line: 'ok' });
});

test('too-long line inside one chunk, and exact-limit lines with \\r\\n', () => {
  const s = new LineSplitter({ maxLineLength: 4 });
  assert.deepEqual(s.push(Buffer.from('abcd\r\nabcde\nab')), [{ line: 'abcd' }, { error: 'too-long', length: 5 }]);
  assert.deepEqual(s.push(Buffer.from('cd\r')), []);
  assert.deepEqual(s.push(Buffer.from('\n')), [{ line: 'abcd' }]);
});

test('invalid UTF-8 becomes U+FFFD, no throw', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(Buffer.from([0x61, 0xff, 0xc3, 0x0a])), [{ line: 'a\ufffd\ufffd' }]);
});

test('end() returns the unterminated last line', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(Buffer.from('a\nb')), [{ line: 'a' }]);
  assert.deepEqual(s.end(), [{ line: 'b' }]);
  assert.equal(s.pending(), 0);
  assert.throws(() => new LineSplitter({ maxLineLength: 0 }), RangeError);
});
