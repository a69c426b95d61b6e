import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeReply, encodeReply } from '../src/index.js';

test('einhorn streamed reply', () => {
  const r = decodeReply('---%0Amessage: Upgrading smoothly, as commanded%0Arequest_id: 4%0Await: true%0A');
  assert.ok(r.ok);
  assert.equal(r.reply.message, 'Upgrading smoothly, as commanded');
  assert.equal(r.reply.requestId, 4);
  assert.equal(r.reply.wait, true);
});

test('einhorn final reply', () => {
  const r = decodeReply('---%0Amessage: Incrementing number of workers from 1 -> 2%0Arequest_id: 3%0A');
  assert.ok(r.ok);
  assert.equal(r.reply.message, 'Incrementing number of workers from 1 -> 2');
  assert.equal(r.reply.requestId, 3);
  assert.equal(r.reply.wait, false);
});

test('einhorn reply without id, with symbol keys, empty message', () => {
  const r = decodeReply("---%0A:message: ''%0A");
  assert.ok(r.ok);
  assert.equal(r.reply.message, '');
  assert.equal(r.reply.requestId, undefined);
  const m = decodeReply('---%0Amessage: |%0A  line one%0A  100%25 sure%0A');
  assert.ok(m.ok);
  assert.equal(m.reply.message, 'line one\n100% sure\n');
});

test('einhyrningsins 0.2 bare JSON string replies', () => {
  const r = decodeReply('"Acknowledged!"');
  assert.deepEqual(r, { ok: true, reply: { message: 'Acknowledged!', wait: false } });
  const h = decodeReply('"Help:\\n  inc"');
  assert.ok(h.ok);
  assert.equal(h.reply.message, 'Help:\n  inc');
});

test('encodeReply shape', () => {
  // What einhorn's psych writes (reference: einhorn.md section 3).
  assert.equal(encodeReply({ message: 'hi' }), '---%0Amessage: hi%0A\n');
  assert.equal(encodeReply({ message: 'Incrementing number of workers from 1 -> 2', requestId: 3, wait: false }), '---%0Amessage: Incrementing number of workers from 1 -> 2%0Arequest_id: 3%0A\n');
  assert.equal(
    encodeReply({ message: 'Upgrading smoothly, as commanded', requestId: 4, wait: true }),
    '---%0Amessage: Upgrading smoothly, as commanded%0Arequest_id: 4%0Await: true%0A\n',
  );
  // Structured extras as JSON flow collections (valid YAML, one line each).
  assert.equal(encodeReply({ message: 'x', workers: [{ pid: 1 }], skipped: undefined }), '---%0Amessage: x%0Aworkers: [{"pid": 1}]%0A\n');
  // Strings that YAML 1.1 (psych) would read as something else are quoted.
  for (const m of ['yes', 'off', '12', '1:20', '', ' lead', 'trail ', 'a: b', '#x', '- x', 'null', '2026-11-23']) {
    assert.ok(encodeReply({ message: m }).startsWith(`---%0Amessage: ${JSON.stringify(m).replace(/%/g, '%25')}%0A`), m);
  }
  // A multi-line message is a literal block; a long one is never folded.
  assert.equal(encodeReply({ message: 'a\nb\n' }), '---%0Amessage: |2%0A  a%0A  b%0A\n');
  assert.ok(!encodeReply({ message: 'word '.repeat(100).trim() }).slice(0, -1).includes('%0A  '));
});

test('% and newlines round-trip; one LF only at the end', () => {
  const message = '100% done\n%0A literal\n\nlast %25\n';
  const line = encodeReply({ message, requestId: 9, wait: true, extra: 'a\nb%' });
  assert.equal(line.indexOf('\n'), line.length - 1);
  const r = decodeReply(line.slice(0, -1));
  assert.ok(r.ok);
  assert.equal(r.reply.message, message);
  assert.equal(r.reply.requestId, 9);
  assert.equal(r.reply.wait, true);
  assert.equal(r.reply['extra'], 'a\nb%');
});

test('bad replies give errors', () => {
  for (const line of ['[1]', '---%0Afoo: 1%0A', '---%0Amessage: 3%0A', 'a: [1', 'plain words']) {
    assert.equal(decodeReply(line).ok, false, line);
  }
});

test('encodeReply/decodeReply round-trip any message (seeded random strings)', () => {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const alphabet = ['a', 'Z', '0', '9', ' ', ':', '#', '-', '?', '|', '>', "'", '"', '%', '\n', '\n', '\\', '{', ']', ',', '&', '*', '!', 'é', '😀', '\t', '\r', '@', '`', '~'];
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rnd() * 20);
    let m = '';
    for (let j = 0; j < len; j++) m += alphabet[Math.floor(rnd() * alphabet.length)];
    const line = encodeReply({ message: m, requestId: i, wait: i % 2 === 0 });
    assert.equal(line.indexOf('\n'), line.length - 1, 'one line');
    const d = decodeReply(line.slice(0, -1));
    assert.ok(d.ok, `decodes: ${JSON.stringify(m)}`);
    assert.equal(d.reply.message, m, `round-trips: ${JSON.stringify(m)} via ${line}`);
    assert.equal(d.reply.requestId, i);
    assert.equal(d.reply.wait, i % 2 === 0);
  }
});
