/**
 * scripts/prebuild.mjs in the clone: it rebuilds the tags it has compilers for,
 * keeps every other tag's files (built elsewhere, or by a machine with more
 * compilers), says in one line what to install for a skipped tag, and with
 * --require-all refuses to leave one out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './harness.js';

const script = join(ROOT, 'scripts', 'prebuild.mjs');
const prebuilds = join(ROOT, 'prebuilds');

function prebuild(args: string[], path = process.env.PATH ?? '') {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PATH: path }, timeout: 120_000 });
  return { code: r.status, stderr: r.stderr ?? '' };
}

test('prebuild.mjs never deletes another tag; a skipped tag is one line naming what to install, its files kept', (t) => {
  const has = (cc: string) => spawnSync(cc, ['--version']).status === 0;
  if (!has('gcc')) return t.skip('gcc is needed to build linux-x64-glibc here');
  const planted = join(prebuilds, 'linux-riscv64-glibc');
  const keptMusl = join(prebuilds, 'linux-arm64-musl');
  const hadMusl = existsSync(keptMusl);
  mkdirSync(planted, { recursive: true });
  writeFileSync(join(planted, 'native_reuseport.node'), 'built on a riscv64 machine');
  mkdirSync(keptMusl, { recursive: true });
  const marker = join(keptMusl, 'native_reuseport.node');
  const before = existsSync(marker) ? readFileSync(marker) : null;
  if (before === null) writeFileSync(marker, 'built elsewhere');
  const bare = mkdtempSync(join(tmpdir(), 'ein-prebuild-bin-'));
  try {
    const x = prebuild(['--only', 'linux-x64-glibc']);
    assert.equal(x.code, 0, x.stderr);
    assert.match(x.stderr, /^prebuild: prebuilds\/linux-x64-glibc\/einhyrningsins-launch \(\d+ bytes, static, no glibc\)$/m);
    assert.ok(statSync(join(prebuilds, 'linux-x64-glibc', 'native_reuseport.node')).size > 1000);
    assert.equal(readFileSync(join(planted, 'native_reuseport.node'), 'utf8'), 'built on a riscv64 machine', 'another tag is kept');

    // No compiler at all on PATH: linux-arm64-musl is skipped, said once, and its files stay.
    symlinkSync(process.execPath, join(bare, 'node'));
    const m = prebuild(['--only', 'linux-arm64-musl'], bare);
    assert.equal(m.code, 0, m.stderr);
    assert.equal(
      m.stderr,
      'prebuild: linux-arm64-musl skipped: aarch64-linux-musl-gcc, aarch64-linux-gnu-strip not found ' +
        '(apt-get install gcc-aarch64-linux-gnu musl:arm64 musl-dev:arm64 (dpkg --add-architecture arm64)); ' +
        'keeping the files already in prebuilds/linux-arm64-musl\n',
    );
    assert.ok(existsSync(marker));
    const all = prebuild(['--only', 'linux-arm64-musl', '--require-all'], bare);
    assert.equal(all.code, 1);
    assert.match(all.stderr, /--require-all: linux-arm64-musl not built$/m);
  } finally {
    rmSync(planted, { recursive: true, force: true });
    rmSync(bare, { recursive: true, force: true });
    if (before !== null) writeFileSync(marker, before);
    else if (!hadMusl) rmSync(keptMusl, { recursive: true, force: true });
    else rmSync(marker, { force: true });
  }
});
