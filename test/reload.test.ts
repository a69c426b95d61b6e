/**
 * reload: the master re-executes itself in place. Same pid, same listening sockets
 * and control socket (never ENOENT or ECONNREFUSED), the same workers adopted with
 * their slots, generations, ACK state and pings; --reexec-as and --upgrade-check as
 * einhorn has them; no request fails through a reload under load.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { BIN, alive, cleanupAll, ctl, fixture, httpGet, load, startMaster, tempDir, until, type StateWorker } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

const HTTP_CHILD = ['--', process.execPath, fixture('node-http-child.mjs')];

interface FullState {
  workers: Array<StateWorker & { pingedAt?: number | null; pingRequestId?: string | number | null }>;
  generation: number;
}

async function fullState(sock: string): Promise<FullState> {
  const [r] = await ctl(sock, 'status');
  return (r as unknown as { state: FullState }).state;
}

/** Connect to the control socket again and again until stopped; every failure is kept. */
function connectLoop(path: string): { stop: () => Promise<{ ok: number; errors: string[] }> } {
  let running = true;
  const r = { ok: 0, errors: [] as string[] };
  const loop = (async () => {
    while (running) {
      await new Promise<void>((resolve) => {
        const c = createConnection(path);
        c.once('connect', () => {
          r.ok += 1;
          c.destroy();
          resolve();
        });
        c.once('error', (e: NodeJS.ErrnoException) => {
          r.errors.push(e.code ?? e.message);
          resolve();
        });
      });
      await new Promise((res) => setTimeout(res, 2));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return r;
    },
  };
}

test('reload keeps the pid, the sockets and the workers with their state; the requester hears "Reload done"', async () => {
  const dir = tempDir();
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', '-e', join(dir, 'pid'), ...HTTP_CHILD], {
    env: { FIXTURE_ACK: '1' },
    dir,
  });
  const port = await m.port();
  const before = await m.ready(2);
  // A ping with a request id must survive the reload (einhorn's test does the same).
  const pinger = before[0]!;
  await new Promise<void>((resolve, reject) => {
    const c = createConnection(m.sockPath, () => c.end(JSON.stringify({ command: 'worker:ping', pid: pinger.pid, request_id: 'id-1' }) + '\n'));
    c.on('close', () => resolve());
    c.on('error', reject);
  });
  const st0 = await fullState(m.sockPath);
  const pingsBefore = (((await ctl(m.sockPath, 'state'))[0]!.message.match(/:pinged_(at|request_id): .*/g)) ?? []).join('\n');
  assert.match(pingsBefore, /:pinged_request_id: id-1/);
  const conns = connectLoop(m.sockPath);
  const replies = await m.ctl('reload');
  const connects = await conns.stop();
  assert.match(replies.at(-1)!.message, /^Reload done: master \d+ is now einhyrningsins [\d.]+ \(reload 1\), 2 workers adopted$/, JSON.stringify(replies));
  assert.equal(replies.at(-1)!.error, undefined);
  assert.ok(replies.some((r) => /Upgrade check passed/.test(r.message)), 'progress was streamed');
  assert.deepEqual(connects.errors, [], 'no client saw the control socket missing or refusing');
  assert.ok(connects.ok > 0);
  assert.equal(m.exited, null, 'the master process never exited');
  const st1 = await fullState(m.sockPath);
  const strip = (w: FullState['workers'][number]) => ({ pid: w.pid, slot: w.slot, generation: w.generation, state: w.state, acked: w.acked, pingRequestId: w.pingRequestId });
  assert.deepEqual(st1.workers.map(strip), st0.workers.map(strip));
  const pingLines = async () => {
    const [r] = await ctl(m.sockPath, 'state');
    return (r!.message.match(/:pinged_(at|request_id): .*/g) ?? []).join('\n');
  };
  // The same request id and the same time (to the few ms by which Date.now() and the
  // two images' monotonic clocks can disagree).
  const pingsAfter = await pingLines();
  assert.equal(pingsAfter.split('\n')[1], pingsBefore.split('\n')[1]);
  const when = (text: string) => Date.parse(text.split('\n')[0]!.replace(/^:pinged_at: (\S+) (\S+) Z$/, '$1T$2Z').replace(/(\.\d{3})\d+Z$/, '$1Z'));
  assert.ok(Math.abs(when(pingsAfter) - when(pingsBefore)) <= 5, `${pingsBefore} vs ${pingsAfter}`);
  for (const w of before) assert.equal(JSON.parse(await httpGet(port)).masterPid, String(m.pid), `worker ${w.pid} still has its parent`);
  // The adopted workers are still supervised: one that dies is reaped and replaced.
  process.kill(before[1]!.pid, 'SIGKILL');
  const after = await until('the dead adopted worker replaced', async () => {
    const ws = await m.workers();
    return ws.length === 2 && ws.every((w) => w.state === 'up') && !ws.some((w) => w.pid === before[1]!.pid) ? ws : null;
  });
  assert.ok(after.some((w) => w.pid === before[0]!.pid));
  // An upgrade after the reload works as always, and so does a second reload.
  assert.equal((await m.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  assert.match((await m.ctl('reload')).at(-1)!.message, /\(reload 2\)/);
  await m.ready(2);
  const r = await m.stop();
  assert.deepEqual(r, { code: 0, signal: null });
  assert.equal(existsSync(join(dir, 'pid')), false, 'pidfile removed by the new image');
  for (const w of before) assert.equal(alive(w.pid), false);
});

test('no request fails through reloads under load', async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', ...HTTP_CHILD], { env: { FIXTURE_ACK: '1' } });
  const port = await m.port();
  await m.ready(2);
  const traffic = load(port, 16);
  for (let i = 1; i <= 3; i++) {
    const replies = await m.ctl('reload');
    assert.match(replies.at(-1)!.message, new RegExp(`\\(reload ${i}\\)`), JSON.stringify(replies));
  }
  const result = await traffic.stop();
  assert.equal(result.failed, 0, `failed requests: ${result.errors.join(', ')}`);
  assert.ok(result.ok > 50, `the load loop ran: ${result.ok}`);
  await m.stop();
});

test('--reexec-as: the new image runs as that command; workers started after the reload see its environment', async () => {
  const m = startMaster(
    ['-n', '1', '-b', '127.0.0.1:0,r', '-m', 'manual', `--reexec-as=env FIXTURE_VERSION=b ${process.execPath} ${BIN}`, ...HTTP_CHILD],
    { env: { FIXTURE_ACK: '1', FIXTURE_VERSION: 'a' } },
  );
  const port = await m.port();
  await m.ready(1);
  assert.equal(JSON.parse(await httpGet(port)).version, 'a');
  assert.match((await m.ctl('reload')).at(-1)!.message, /Reload done/);
  assert.equal(JSON.parse(await httpGet(port)).version, 'a', 'reload alone keeps the workers');
  assert.equal((await m.ctl('upgrade')).at(-1)!.message, 'Upgrade done');
  await until('the new worker serves', async () => JSON.parse(await httpGet(port)).version === 'b');
  await m.stop();
});

test('a failing upgrade check keeps the old image running and says why; so does a reload during an upgrade', async () => {
  const dir = tempDir();
  const wrapper = join(dir, 'reexec.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const m = startMaster(['-n', '1', '-m', '2', `--reexec-as=${wrapper}`, '--', 'sleep', '1000'], { dir });
  const [w] = await m.ready(1);
  writeFileSync(wrapper, '#!/bin/sh\necho "new release is broken" >&2\nexit 3\n');
  const replies = await m.ctl('reload');
  const last = replies.at(-1)!;
  assert.equal(last.error, true);
  assert.match(last.message, /^Reload aborted, the master keeps running: .*reexec\.sh --upgrade-check exited 3: new release is broken$/);
  assert.deepEqual((await m.workers()).map((x) => x.pid), [w!.pid]);
  // During an upgrade: refused with the reason (workers here take 2 s to ack).
  writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`);
  const up = m.ctl('upgrade');
  await until('the upgrade to start', async () => (await m.workers()).length === 2);
  const refused = await m.ctl('reload');
  assert.equal(refused.at(-1)!.error, true);
  assert.match(refused.at(-1)!.message, /^Not reloading: an upgrade is in progress \(generation 1\); reload when it is done$/);
  assert.equal((await up).at(-1)!.message, 'Upgrade done');
  await m.stop();
});

test('a worker that dies while the master re-executes is reaped and replaced by the new image', async () => {
  const m = startMaster(
    ['-n', '2', '-m', '0', `--reexec-as=sh -c 'sleep 1; exec "$0" "$@"' ${process.execPath} ${BIN}`, '--', 'sleep', '1000'],
  );
  const ws = await m.ready(2);
  const reload = m.ctl('reload');
  // The upgrade check also goes through the wrapper (1 s), then the exec (1 s more).
  await until('the re-exec to begin', () => /re-executing the master/.test(m.stderr), 10_000);
  process.kill(ws[0]!.pid, 'SIGKILL');
  assert.match((await reload).at(-1)!.message, /Reload done/);
  const after = await until('the dead worker replaced', async () => {
    const now = await m.workers();
    return now.length === 2 && now.every((x) => x.state === 'up') && !now.some((x) => x.pid === ws[0]!.pid) ? now : null;
  });
  assert.ok(after.some((x) => x.pid === ws[1]!.pid), 'the other worker kept');
  await m.stop();
});

test('--reexec-as a command that does not exist: refused at start, one line, nothing left', async () => {
  const dir = tempDir();
  const m = startMaster(['-n', '1', '--reexec-as=no-such-einhyrningsins-wrapper --flag', '--', 'sleep', '1'], { dir });
  const r = await m.exit;
  assert.equal(r.code, 1);
  assert.match(m.stderr.trim(), /^einhyrningsins: --reexec-as: .*no-such-einhyrningsins-wrapper/);
  assert.equal(m.stderr.trim().split('\n').length, 1);
  assert.equal(existsSync(m.sockPath), false);
});

test('--upgrade-check loads everything, binds nothing and exits 0', async () => {
  const dir = tempDir();
  const m = startMaster(['--upgrade-check', '-n', '2', '-b', '127.0.0.1:1', '--', 'sleep', '1'], { dir });
  const r = await m.exit;
  assert.deepEqual(r, { code: 0, signal: null }, m.stderr);
  assert.match(m.stdout, /upgrade check passed/);
  assert.equal(existsSync(m.sockPath), false);
  // Alone, as einhorn's own re-exec probe runs it (no program): exit 0 too.
  const alone = startMaster(['--upgrade-check'], { dir: tempDir(), socket: false });
  assert.deepEqual(await alone.exit, { code: 0, signal: null }, alone.stderr);
});
