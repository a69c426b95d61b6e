/**
 * einhorn's `upgrade` with --reexec-as re-executes the master first (through
 * reload's machinery), then upgrades the workers from the new image; without
 * --reexec-as it stays workers-only.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, cleanupAll, fixture, httpGet, load, startMaster, tempDir, until } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

const HTTP_CHILD = ['--', process.execPath, fixture('node-http-child.mjs')];

test('upgrade with --reexec-as: the master re-executes as that command, then the workers are upgraded from it; one request, no failed request', async () => {
  const dir = tempDir();
  const [a, b] = [join(dir, 'a'), join(dir, 'b')];
  writeFileSync(a, 'release-a\n');
  writeFileSync(b, 'release-b\n');
  // The worker library's child: it answers "<pid> <release>", the release read from FIXTURE_RELEASE_FILE.
  const m = startMaster(
    ['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', `--reexec-as=env FIXTURE_RELEASE_FILE=${b} ${process.execPath} ${BIN}`, '--', process.execPath, fixture('drain-child.mjs')],
    { dir, env: { FIXTURE_RELEASE_FILE: a } },
  );
  const port = await m.port();
  const before = await m.ready(2);
  assert.match(await httpGet(port), /release-a/);
  const l = load(port, 4, { fresh: true, maxMs: 30_000 });
  await until('load running', () => l.result.ok > 20);
  const replies = await m.ctl('upgrade');
  assert.match(replies.map((r) => r.message).join('\n'), /Reload done: master \d+ is now einhyrningsins .* \(reload 1\)/);
  assert.equal(replies.at(-1)?.message, 'Upgrade done');
  assert.notEqual(replies.at(-1)?.wait, true);
  const after = await m.ready(2);
  await until('the new workers serve', async () => /release-b/.test(await httpGet(port)));
  const r = await l.stop();
  assert.equal(r.failed, 0, r.errors.join('; '));
  for (const w of after) assert.ok(!before.some((x) => x.pid === w.pid), 'every worker replaced');
  assert.match(m.stderr, new RegExp(`Reloading einhyrningsins master ${m.pid}`), 'the same master pid, re-executed');
  await m.stop();
});

test('upgrade without --reexec-as stays workers-only: no re-execution', async () => {
  const m = startMaster(['-n', '1', '-b', '127.0.0.1:0,r', '-m', 'manual', ...HTTP_CHILD], { env: { FIXTURE_ACK: '1' } });
  await m.port();
  await m.ready(1);
  assert.equal((await m.ctl('upgrade')).at(-1)?.message, 'Upgrade done');
  assert.doesNotMatch(m.stderr, /Reloading|Reload done/);
  await m.stop();
});
