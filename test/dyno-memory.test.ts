/**
 * The dyno driver's memory: it runs for months, so V8's optimising compiler is kept off
 * (packages/dyno-driver/src/lean-v8.ts; measured: TurboFan's first compilation alone cost
 * 3.7-6 MB of RSS, for no CPU the driver's work needed). The memory itself is measured by
 * `npm run bench:supervisors`; here, what is deterministic: no function is optimised by
 * TurboFan (`--trace-opt` says when one is) while the driver starts and passes on a burst of
 * its processes' output, which made its line splitter hot enough before; and which of Node's
 * modules a config start loads (node:crypto, +0.6 MB, only with --http).
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SupervisorProc, cleanupAll, track, until } from './harness.js';
import { DYNO_BIN, baseEnv, newDir, q } from './dyno-harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

const LINES = 40_000;

test('the driver compiles nothing with TurboFan while it starts and passes on 40,000 lines of output', async () => {
  const dir = newDir();
  const chatty = `let s='';for(let i=1;i<=${LINES};i++){s+='line '+i+' '+'x'.repeat(60)+'\\n';if(s.length>16384){process.stdout.write(s);s=''}}process.stdout.write(s);setInterval(()=>{},1e9)`;
  writeFileSync(join(dir, 'Procfile'), `chatty: ${q(process.execPath)} -e ${q(chatty)}\n`);
  const sock = join(dir, 'ctl.sock');
  const d = new SupervisorProc(process.execPath, ['--trace-opt', DYNO_BIN], ['start', '-d', sock], dir, sock, baseEnv());
  track(d, dir);
  await until(`the ${LINES} lines passed on (stderr: ${d.stderr.slice(-2000)})`, () => d.stdout.includes(`chatty.1 | line ${LINES} `) || null, 60_000, 50);
  assert.equal((d.stdout.match(/^chatty\.1 \| line \d+ x+$/gm) ?? []).length, LINES, 'every line, whole and labelled');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  // V8 prints its trace through C's stdio, flushed at exit: read our end of the pipe to its end.
  await until('the driver\'s stdout to end', () => d.proc.stdout!.readableEnded || d.proc.stdout!.destroyed || null);
  const optimised = d.stdout.split('\n').filter((l) => /TURBOFAN/i.test(l));
  assert.deepEqual(optimised, [], 'functions TurboFan compiled');
});

/** Start a driver with a preload that writes the Node modules it loaded at exit; stop it once its status answers. */
async function modulesOfStart(dir: string, args: string[], ready?: RegExp): Promise<Set<string>> {
  const out = join(dir, 'modules.json');
  const preload = join(dir, 'note-modules.cjs');
  writeFileSync(preload, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)));\n`);
  const sock = join(dir, 'ctl.sock');
  const d = new SupervisorProc(process.execPath, ['-r', preload, DYNO_BIN], ['start', '-d', sock, ...args], dir, sock, baseEnv());
  track(d, dir);
  if (ready) await d.waitLog(ready, 20_000);
  await until('the driver answers status', async () => ((await d.ctl('status').catch(() => []))[0]?.message.includes('RUNNING') ? true : null), 20_000, 100);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  const loaded = JSON.parse(readFileSync(out, 'utf8')) as string[];
  return new Set(loaded.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length)));
}

test('a --config start loads node:crypto only when --http asks for the TCP API (its token check)', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'app.conf'), '[program:w]\ncommand = sleep 1000\n');
  const plain = await modulesOfStart(dir, ['--config', 'app.conf']);
  assert.ok(plain.has('child_process') && plain.has('net'), [...plain].join(' '));
  assert.equal(plain.has('crypto'), false, 'node:crypto loaded without --http');
  const token = join(dir, 'token');
  writeFileSync(token, 'k3Q9x0Zr7LmN2pV5sT8wY1bC4dF6gH0j\n');
  chmodSync(token, 0o600);
  const http = await modulesOfStart(dir, ['--config', 'app.conf', '--http', '127.0.0.1:0', '--http-token-file', token], /HTTP API on 127\.0\.0\.1:\d+/);
  assert.ok(http.has('crypto'), 'with --http the token check loads it (the probe sees what is loaded)');
});
