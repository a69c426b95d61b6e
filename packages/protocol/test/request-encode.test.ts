import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRequest, parseRequest, unescapeLine } from '../src/index.js';

test('json framing', () => {
  assert.equal(encodeRequest({ command: 'worker:ack', pid: 4242 }, 'json'), '{"command":"worker:ack","pid":4242}\n');
  assert.equal(
    encodeRequest({ command: 'signal', args: ['HUP'], id: 1, user: 'a' }, 'json'),
    '{"command":"signal","args":["HUP"],"id":1,"user":"a"}\n',
  );
  assert.equal(encodeRequest({ command: '50%\nx' }, 'json'), '{"command":"50%25\\nx"}\n');
});

test('yaml framing looks like einhorn', () => {
  assert.equal(encodeRequest({ command: 'worker:ack', pid: 4242 }, 'yaml'), '---%0Acommand: worker:ack%0Apid: 4242%0A\n');
  const line = encodeRequest({ command: 'inc', args: [], id: 3 }, 'yaml');
  assert.equal(line, '---%0Acommand: inc%0Aargs: []%0Aid: 3%0A\n');
});

test('yaml framing quotes YAML 1.1 look-alikes and escapes % and LF', () => {
  const args = ['3', 'yes', 'off', '1:20', '~', '50%', 'two\nlines', ' pad ', ''];
  const line = encodeRequest({ command: 'config', args }, 'yaml');
  assert.equal(line.indexOf('\n'), line.length - 1);
  const text = unescapeLine(line.slice(0, -1), 'einhorn');
  assert.match(text, /"yes"|'yes'/);
  assert.match(text, /"off"|'off'/);
  assert.match(text, /"1:20"|'1:20'/);
  for (const framing of ['json', 'yaml'] as const) {
    const r = parseRequest(encodeRequest({ command: 'config', args, id: 'x' }, framing).slice(0, -1), { unescape: 'einhorn' });
    assert.ok(r.ok, framing);
    assert.deepEqual(r.request.args, args, framing);
    assert.equal(r.request.id, 'x');
  }
});
