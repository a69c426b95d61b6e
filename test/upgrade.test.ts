/**
 * Zero-downtime upgrades, black-box: real master, real Node workers using the
 * worker library's drain, a bounded keep-alive load loop, several upgrades.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, cleanupAll, fixture, load, startMaster, tempDir, until } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

test('upgrades under load drop no request and switch to the new release', async () => {
  await upgradesUnderLoad([]);
});

test('with the handover paced (--handover after-boot --handover-gap 0.2) upgrades under load drop no request either', async () => {
  await upgradesUnderLoad(['--handover', 'after-boot', '--handover-gap', '0.2']);
});

async function upgradesUnderLoad(extra: string[]): Promise<void> {
  const dir = tempDir();
  const releaseFile = join(dir, 'release');
  writeFileSync(releaseFile, 'r0');
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', ...extra, '--', process.execPath, fixture('drain-child.mjs')], {
    env: { FIXTURE_RELEASE_FILE: releaseFile },
    dir,
  });
  const port = await m.port();
  await m.ready(2);
  const traffic = load(port, 16);
  const seenPids = new Set<number>();
  for (let i = 1; i <= 5; i++) {
    writeFileSync(releaseFile, `r${i}`);
    const before = await m.workers();
    before.forEach((w) => seenPids.add(w.pid));
    const replies = await m.ctl('upgrade');
    assert.equal(replies.at(-1)!.message, 'Upgrade done', JSON.stringify(replies));
    for (const w of before) await until(`old worker ${w.pid} to exit`, () => !alive(w.pid));
    (await m.workers()).forEach((w) => seenPids.add(w.pid));
  }
  const r = await traffic.stop();
  assert.equal(r.failed, 0, `failed requests: ${r.errors.join(', ')}`);
  assert.ok(r.ok > 100, `the load loop did run: ${r.ok}`);
  const releases = new Set([...r.bodies].map((b) => b.split(' ')[1]));
  assert.ok(releases.has('r0') && releases.has('r5'), `served the old and the new releases: ${[...releases]}`);
  for (const p of seenPids) m.seenChildren.add(p);
  await m.stop();
}

test('an upgrade whose new workers crash is abandoned; the old ones keep serving', async () => {
  const dir = tempDir();
  const releaseFile = join(dir, 'release');
  writeFileSync(releaseFile, 'good');
  // The child refuses to start when the release says "bad".
  const m = startMaster(
    ['-n', '2', '-r', '1', '-s', '0.1', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', 'sh', '-c',
      'test "$(cat "$0")" = bad && exit 1; exec "$1" "$2"', releaseFile, process.execPath, fixture('drain-child.mjs')],
    { env: { FIXTURE_RELEASE_FILE: releaseFile }, dir },
  );
  const port = await m.port();
  const old = await m.ready(2);
  const traffic = load(port, 4);
  writeFileSync(releaseFile, 'bad');
  const replies = await m.ctl('upgrade');
  const last = replies.at(-1)!;
  assert.equal(last.message, 'Upgrade failed');
  assert.equal(last.error, true);
  assert.ok(replies.some((r) => /failed: a new worker \d+ \(index \d+\) exited before it was acked/.test(r.message)), JSON.stringify(replies));
  const now = await m.workers();
  assert.deepEqual(now.map((w) => w.pid).sort(), old.map((w) => w.pid).sort(), 'the old workers still serve');
  const r = await traffic.stop();
  assert.equal(r.failed, 0, r.errors.join(', '));
  // Fixed release: the next upgrade goes through.
  writeFileSync(releaseFile, 'fixed');
  const again = await m.ctl('upgrade');
  assert.equal(again.at(-1)!.message, 'Upgrade done');
  await m.stop();
});

test('-k: children get SIGUSR2 when the master is SIGKILLed; without -k they keep running', async () => {
  const withK = startMaster(['-k', '-n', '2', '-m', '0', '--', 'sleep', '1000']);
  const kids = await withK.ready(2);
  process.kill(withK.pid, 'SIGKILL');
  await withK.exit;
  for (const w of kids) await until(`child ${w.pid} to die with its master`, () => !alive(w.pid));
  // The socket file stays (SIGKILL): a new master takes it over as stale.
  const plain = startMaster(['-n', '1', '-m', '0', '--', 'sleep', '1000'], { dir: withK.dir });
  const [orphan] = await plain.ready(1);
  process.kill(plain.pid, 'SIGKILL');
  await plain.exit;
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(alive(orphan!.pid), 'without -k the child keeps running');
  process.kill(orphan!.pid, 'SIGKILL');
  await until('orphan gone', () => !alive(orphan!.pid));
  // Leave nothing: remove the stale socket with a last clean master.
  const last = startMaster(['-n', '0', '--', 'sleep', '1'], { dir: withK.dir });
  await last.waitLog(/up: control socket/);
  await last.stop();
});
