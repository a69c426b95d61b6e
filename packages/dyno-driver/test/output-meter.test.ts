import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { WorkerProcess } from '@einhyrningsins/master';
import { DynoOutput } from '../src/dyno-output.js';

/** A spawned process as DynoOutput sees it: a pid and two pipes. */
function fakeChild(pid: number): WorkerProcess & { stdout: PassThrough; stderr: PassThrough } {
  const c = new EventEmitter() as unknown as WorkerProcess & { stdout: PassThrough; stderr: PassThrough };
  Object.assign(c, { pid, stdout: new PassThrough(), stderr: new PassThrough() });
  return c;
}

test('DynoOutput: every byte read from the dynos is counted for the memory keeper, and still labelled on our output', async (t) => {
  // The dynos' lines are kept here; anything else (the test runner's own messages) goes through.
  const written: string[] = [];
  for (const stream of [process.stdout, process.stderr]) {
    const orig = stream.write.bind(stream) as (chunk: unknown) => boolean;
    t.mock.method(stream, 'write', (chunk: unknown) => (String(chunk).startsWith('web.1 | ') ? (written.push(String(chunk)), true) : orig(chunk)));
  }
  let counted = 0;
  const out = new DynoOutput((n) => (counted += n));
  const c = fakeChild(4242);
  out.track('web.1', c);
  c.stdout.write('hello\nwor');
  c.stdout.write('ld\n');
  c.stderr.write('oops\n');
  await new Promise((r) => setImmediate(r));
  assert.equal(counted, 'hello\nworld\noops\n'.length);
  assert.deepEqual(written.sort(), ['web.1 | hello\n', 'web.1 | oops\n', 'web.1 | world\n']);
});
