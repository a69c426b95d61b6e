/**
 * Issue 18 (hardening, round three), black-box: each defect found by attacking the landed
 * tree from outside, with the real CLIs, real children, real sockets and real signals.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, startMaster, tempDir, until } from './harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

// ---- 1. -b unix:PATH,mode=OCTAL: the mode is never applied by path ---------------------

/**
 * The attacker of the issue, made deterministic: a preload (NODE_OPTIONS=--require) in the
 * master that, whenever the master chmods the socket's path, first renames a symlink to
 * `victim` over the socket, which is what another user who can write the directory does in
 * the window between bind() and a chmod() by path. A master that never applies the mode by
 * path is never raced; one that does chmods the victim, every time.
 */
function attackerPreload(dir: string, sock: string, victim: string): string {
  const hook = join(dir, 'swap-before-chmod.cjs');
  writeFileSync(
    hook,
    `const fs = require('node:fs');
const sock = ${JSON.stringify(sock)}, victim = ${JSON.stringify(victim)};
const swap = (p) => {
  if (String(p) !== sock) return;
  fs.appendFileSync(${JSON.stringify(join(dir, 'chmod-by-path.log'))}, 'chmod ' + p + '\\n');
  try { fs.unlinkSync(sock + '.evil'); } catch {}
  fs.symlinkSync(victim, sock + '.evil');
  fs.renameSync(sock + '.evil', sock);
};
for (const name of ['chmodSync', 'chmod', 'lchmodSync']) {
  const orig = fs[name];
  if (typeof orig !== 'function') continue;
  fs[name] = function (p, ...rest) { swap(p); return orig.call(this, p, ...rest); };
}
const origP = fs.promises.chmod;
fs.promises.chmod = async (p, ...rest) => { swap(p); return origP(p, ...rest); };
`,
  );
  return hook;
}

test('1: -b unix:PATH,mode=666 with a symlink renamed over the new socket never chmods the link target', async () => {
  const dir = tempDir();
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'secret\n');
  chmodSync(victim, 0o600);
  const sock = join(dir, 'app.sock');
  const hook = attackerPreload(dir, sock, victim);
  const m = startMaster(['-m', '0', '-b', `unix:${sock},mode=666`, '--', 'sleep', '1000'], {
    dir,
    env: { NODE_OPTIONS: `--require ${hook}` },
  });
  await until('the master up or gone', () => m.exited ?? (/Master \d+ up/.test(m.stderr) ? true : null), 15_000);
  if (!m.exited) await m.stop();
  assert.equal(statSync(victim).mode & 0o777, 0o600, `the victim was chmodded through the swapped symlink (stderr:\n${m.stderr})`);
  assert.equal(existsSync(join(dir, 'chmod-by-path.log')), false, 'the socket mode was applied by path');
  assert.equal(m.exited?.code, 0, m.stderr);
});

test('1: the control socket (--socket-mode 0666) is not chmodded by path either', async () => {
  const dir = tempDir();
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'secret\n');
  chmodSync(victim, 0o600);
  const hook = attackerPreload(dir, join(dir, 'ctl.sock'), victim);
  const m = startMaster(['--socket-mode', '0666', '-m', '0', '--', 'sleep', '1000'], { dir, env: { NODE_OPTIONS: `--require ${hook}` } });
  await until('the master up or gone', () => m.exited ?? (/Master \d+ up/.test(m.stderr) ? true : null), 15_000);
  if (!m.exited) await m.stop();
  assert.equal(statSync(victim).mode & 0o777, 0o600, `the victim was chmodded through the swapped symlink (stderr:\n${m.stderr})`);
  assert.equal(existsSync(join(dir, 'chmod-by-path.log')), false, 'the socket mode was applied by path');
  assert.equal(m.exited?.code, 0, m.stderr);
});

test('1: the unix socket is created with exactly the mode asked for, whatever the umask', async () => {
  const dir = tempDir();
  const sock = join(dir, 'app.sock');
  const m = startMaster(['-m', '0', '-b', `unix:${sock},mode=0660`, '--', 'sleep', '1000'], { dir, prefix: ['sh', '-c', 'umask 077; exec "$@"', 'sh'] });
  await m.waitLog(/Master \d+ up/);
  const st = lstatSync(sock);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal((await m.stop()).code, 0);
  assert.equal(existsSync(sock), false);
});

test('1: -b unix: in a world-writable non-sticky directory is refused; group-writable is warned about', async () => {
  const dir = tempDir();
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const m = startMaster(['-m', '0', '-b', `unix:${join(open, 'app.sock')}`, '--', 'sleep', '1000'], { dir });
  await until('the master gone', () => m.exited, 15_000);
  assert.equal(m.exited?.code, 1, m.stderr);
  assert.match(m.stderr, /socket directory .*open is writable by every user \(mode 0777\) and not sticky.*refusing/);
  assert.equal(m.stderr.trim().split('\n').length, 1, m.stderr);
  assert.equal(existsSync(join(open, 'app.sock')), false);

  const grp = join(dir, 'grp');
  mkdirSync(grp);
  chmodSync(grp, 0o775);
  const g = startMaster(['-m', '0', '-b', `unix:${join(grp, 'app.sock')}`, '--', 'sleep', '1000'], { dir });
  await g.waitLog(/Master \d+ up/);
  assert.match(g.stderr, /WARN: -b unix:.*grp is writable by its group \(mode 0775/);
  assert.equal((await g.stop()).code, 0);

  const sticky = join(dir, 'sticky');
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  const s = startMaster(['-m', '0', '-b', `unix:${join(sticky, 'app.sock')}`, '--', 'sleep', '1000'], { dir });
  await s.waitLog(/Master \d+ up/);
  assert.doesNotMatch(s.stderr, /WARN/);
  assert.equal((await s.stop()).code, 0);
});
