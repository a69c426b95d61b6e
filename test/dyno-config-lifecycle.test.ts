/**
 * einhyrningsins-dyno start --config FILE, black-box: the lifecycle of programs at run
 * time as supervisorctl's (add, remove, a removed program's socket closed, restart
 * orders, one process of several, reload keeping every program's sockets and logs).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { until } from './harness.js';
import { cleanupDrivers, newDir, startDriver, type DriverProc } from './dyno-harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupDrivers(), []);
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** connect() to a unix path or a loopback port: 'ok' or the error code. */
async function tryConnect(to: string | number): Promise<string> {
  return await new Promise((res) => {
    const c = typeof to === 'number' ? createConnection(to, '127.0.0.1') : createConnection(to);
    c.once('connect', () => {
      c.destroy();
      res('ok');
    });
    c.once('error', (err: NodeJS.ErrnoException) => {
      c.destroy();
      res(err.code ?? err.message);
    });
  });
}

const reply = async (d: DriverProc, command: string, args: string[] = []) => {
  const r = (await d.ctl(command, args, { timeoutMs: 30_000 })).at(-1)!;
  return { message: r.message, error: r.error === true };
};

const pidOf = async (d: DriverProc, program: string) => (await d.state()).types[program]?.workers[0]?.pid;

test('--config: add starts only the named group of the file read now; remove takes a stopped group out (a running one is refused); their sockets close; bad names are one-line errors', async () => {
  const dir = newDir();
  const port = await freePort();
  const sock = join(dir, 'prog.sock');
  const conf = (sections: string[]) => writeFileSync(join(dir, 'app.conf'), sections.join('\n'));
  const keep = '[program:keep]\ncommand = sleep 1001\n';
  const unix = `[program:unix]\ncommand = sleep 1002\nsocket = unix:${sock}\n`;
  const tcp = `[program:tcp]\ncommand = sleep 1003\nsocket = tcp://127.0.0.1:${port}\n`;
  conf([keep, unix, tcp]);
  const d = startDriver(['start', '--config', 'app.conf'], { dir });
  await d.ready({ keep: 1, unix: 1, tcp: 1 });
  const keepPid = await pidOf(d, 'keep');
  assert.equal(await tryConnect(sock), 'ok');
  assert.equal(await tryConnect(port), 'ok');

  // Bad input: one line each, error replies, nothing touched.
  assert.deepEqual(await reply(d, 'add'), { message: 'add: missing argument; usage: add NAME ...', error: true });
  assert.deepEqual(await reply(d, 'remove'), { message: 'remove: missing argument; usage: remove NAME ...', error: true });
  assert.deepEqual(await reply(d, 'add', ['nope']), { message: 'ERROR: no such process/group: nope', error: true });
  assert.deepEqual(await reply(d, 'add', ['keep']), { message: 'ERROR: process group already active: keep', error: true });
  assert.deepEqual(await reply(d, 'remove', ['nope']), { message: 'ERROR: no such process/group: nope', error: true });
  assert.deepEqual(await reply(d, 'remove', ['unix']), { message: 'ERROR: process/group still running: unix (stop it first: stop unix)', error: true });
  assert.equal(await tryConnect(sock), 'ok', 'a refused remove leaves the socket');

  // The file gains two programs and changes keep: add takes extra only.
  conf([keep.replace('1001', '1011'), unix, tcp, '[program:extra]\ncommand = sleep 1004\n', '[program:other]\ncommand = sleep 1005\n']);
  assert.deepEqual(await reply(d, 'add', ['extra']), { message: 'extra: added process group', error: false });
  await d.ready({ keep: 1, unix: 1, tcp: 1, extra: 1 });
  assert.equal(await pidOf(d, 'keep'), keepPid, 'keep untouched');
  assert.equal((await reply(d, 'reread')).message, 'other: available\nkeep: changed (argv, command)');
  // Several names: each its own line; one bad name makes it an error reply, the others done.
  assert.deepEqual(await reply(d, 'add', ['other', 'nope']), { message: 'other: added process group\nERROR: no such process/group: nope', error: true });
  await d.ready({ keep: 1, unix: 1, tcp: 1, extra: 1, other: 1 });

  // remove: stopped first; then the group goes and its unix socket file with it.
  assert.equal((await reply(d, 'stop', ['unix'])).message, 'unix: stopped');
  assert.deepEqual(await reply(d, 'remove', ['unix']), { message: 'unix: removed process group', error: false });
  await until('unix socket file removed', () => !existsSync(sock));
  assert.equal(await tryConnect(sock), 'ENOENT');
  assert.doesNotMatch((await reply(d, 'status')).message, /^unix /m);
  await d.waitLog(/Closed socket unix:.*prog\.sock: no program uses it any more/);
  // Added back from the file: bound again.
  assert.deepEqual(await reply(d, 'add', ['unix']), { message: 'unix: added process group', error: false });
  await until('unix socket bound again', async () => (await tryConnect(sock)) === 'ok');

  // update with tcp gone from the file: stopped, removed, and its port closed once its process is gone.
  conf([keep, unix, '[program:extra]\ncommand = sleep 1004\n', '[program:other]\ncommand = sleep 1005\n']);
  assert.equal((await reply(d, 'update')).message, 'tcp: stopped, removed process group');
  await until('tcp port closed', async () => (await tryConnect(port)) === 'ECONNREFUSED');
  await d.ready({ keep: 1, unix: 1, extra: 1, other: 1 });
  assert.equal(await pidOf(d, 'keep'), keepPid, 'keep untouched throughout');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});
