import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, decodeReply, parseRequest } from '../src/index.js';
import { prng } from './prng.js';


const ALPHABET = Buffer.from('{}[]:,"\'-!&*%0A25 \n\r\t#|>?@`command pid args worker:ack\\');

test('binary garbage / invalid UTF-8 gives an error result, no throw', () => {
  const s = new LineSplitter();
  const results = s.push(Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x7b, 0xc3, 0x28, 0x0a, 0xed, 0xa0, 0x80, 0x25, 0x46, 0x46, 0x0a]));
  assert.equal(results.length, 2);
  for (const r of results) {
    assert.ok('line' in r);
    const p = parseRequest(r.line);
    assert.equal(p.ok, false);
  }
});

test('5000 random byte strings never make the splitter or parsers throw', () => {
  const rand = prng(0xe1_4b_02_7);
  const splitter = new LineSplitter({ maxLineLength: 4096 });
  let lines = 0;
  let parsed = 0;
  for (let i = 0; i < 5000; i++) {
    const len = Math.floor(rand() * 200);
    const bytes = Buffer.alloc(len);
    const structured = rand() < 0.6;
    for (let j = 0; j < len; j++) {
      bytes[j] = structured ? ALPHABET[Math.floor(rand() * ALPHABET.length)]! : Math.floor(rand() * 256);
    }
    for (const r of splitter.push(bytes)) {
      if (!('line' in r)) continue;
      lines++;
      const req = parseRequest(r.line);
      assert.equal(typeof req.ok, 'boolean');
      if (req.ok) {
        parsed++;
        assert.equal(typeof req.request.command, 'string');
        assert.ok(req.request.args.every((a) => typeof a === 'string'));
      } else {
        assert.equal(typeof req.error, 'string');
      }
      assert.equal(typeof decodeReply(r.line).ok, 'boolean');
    }
    assert.ok(splitter.pending() <= 4097);
  }
  assert.ok(lines > 1000, `only ${lines} lines`);
  assert.ok(parsed >= 0);
});
