/**
 * What the dyno driver reads from disk to start: `--version` and a plain Procfile start
 * read none of the code of the config-file reader, the per-program log files or the fetcher (the bundle is split into chunks at its `await import()`s,
 * scripts/bundle.mjs); `--config` does read the config reader. Which files are read is
 * recorded in the driver itself (a preload that notes every file of dist/ it requires); what
 * each holds is told by the names the minifier keeps. The CPU this saves is a ratio in
 * `npm run bench` (start-up phase), not a threshold here.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ROOT, cleanupAll, until } from './harness.js';
import { DYNO_BIN, baseEnv, newDir } from './dyno-harness.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

/** Where `name` is declared (the minifier keeps names: `class X`, `X=class`, `function X`). */
const declared = (name: string) => new RegExp(`\\bclass ${name}\\b|\\b${name}=class\\b|\\bfunction ${name}\\b`);

/** Code that only some start-ups need, by a name each keeps in the bundle. */
const LATE: Record<string, RegExp> = {
  'the config-file reader': declared('ConfigSource'),
  'supervisorctl commands': declared('ConfigControl'),
  'per-program log files': declared('LogWriter'),
  'the fetcher': declared('Fetcher'),
};

/** Run the driver to its end (--version, or a one-shot start) with a preload that lists the files of dist/ it required. */
async function filesRead(dir: string, args: string[]): Promise<string[]> {
  const log = join(dir, 'required.log');
  const preload = join(dir, 'note-required.cjs');
  writeFileSync(
    preload,
    `const M = require('module'); const fs = require('fs'); const orig = M._load;
M._load = function (req, parent, isMain) {
  const r = orig.apply(this, arguments);
  try { const f = M._resolveFilename(req, parent, isMain); if (f.startsWith(${JSON.stringify(join(ROOT, 'dist') + '/')})) fs.appendFileSync(${JSON.stringify(log)}, f + '\\n'); } catch {}
  return r;
};
`,
  );
  writeFileSync(log, '');
  const p = spawn(process.execPath, ['-r', preload, DYNO_BIN, ...args], { cwd: dir, env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr!.on('data', (d) => (stderr += d));
  p.stdout!.resume();
  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  try {
    await until(`the driver to end by itself (stderr: ${stderr})`, () => (p.exitCode !== null || p.signalCode !== null ? true : null), 20_000);
  } finally {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
  assert.equal(await exited, 0, stderr);
  return [...new Set(readFileSync(log, 'utf8').trim().split('\n').filter(Boolean))];
}

function lateCodeIn(files: readonly string[]): string[] {
  const found: string[] = [];
  for (const f of files) {
    const code = readFileSync(f, 'utf8');
    for (const [what, re] of Object.entries(LATE)) if (re.test(code)) found.push(`${what} (${basename(f)})`);
  }
  return found;
}

test('--version reads only the command line of the driver: none of the config reader, log files or fetcher', async () => {
  const dir = newDir();
  const files = await filesRead(dir, ['--version']);
  assert.ok(files.some((f) => basename(f) === 'einhyrningsins-dyno.cjs'), files.join(', '));
  assert.deepEqual(lateCodeIn(files), []);
});

test('a plain Procfile start reads none of the config reader, log files or fetcher; --config reads the config reader', async () => {
  const dir = newDir();
  writeFileSync(join(dir, 'Procfile'), 'worker: true\n');
  const procfile = await filesRead(dir, ['start', '--oneshot', '-d', join(dir, 'ctl.sock')]);
  assert.deepEqual(lateCodeIn(procfile), []);
  // The markers do name the code: a --config start reads the config reader and the log files.
  writeFileSync(join(dir, 'app.conf'), '[program:one]\ncommand=true\nautorestart=false\nstartsecs=0\n');
  const config = await filesRead(dir, ['start', '--oneshot', '--config', join(dir, 'app.conf'), '-d', join(dir, 'ctl.sock')]);
  const late = lateCodeIn(config);
  assert.ok(late.some((x) => x.startsWith('the config-file reader')), late.join(', '));
  assert.ok(late.some((x) => x.startsWith('per-program log files')), late.join(', '));
});
