/**
 * Which prebuilt binaries the loader picks: the libc is told by the running
 * Node's own ELF interpreter, never by the ld-musl-* files that Debian's `musl`
 * package (or a multi-arch musl) puts on a glibc machine. Fake executables in a
 * fake root, with and without those files; then this process's own tag.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elfInfo, glibcFloor, libcOfExecutable, readInterp } from '../src/elf.js';
import { installHint, platformTag, rebuildCommand } from '../src/index.js';

/** A minimal 64-bit little-endian ELF executable: one PT_INTERP (or none), placed at `interpAt`. */
function fakeElf(interp: string | null, opts: { machine?: number; interpAt?: number } = {}): Buffer {
  const interpAt = opts.interpAt ?? 64 + 56;
  const size = interp === null ? 64 + 56 : interpAt + interp.length + 1;
  const b = Buffer.alloc(size);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(3, 16); // ET_DYN (PIE)
  b.writeUInt16LE(opts.machine ?? 0x3e, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(64n, 32); // e_phoff
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54); // e_phentsize
  b.writeUInt16LE(1, 56); // e_phnum
  if (interp === null) {
    b.writeUInt32LE(1, 64); // PT_LOAD only
  } else {
    b.writeUInt32LE(3, 64); // PT_INTERP
    b.writeBigUInt64LE(BigInt(interpAt), 64 + 8);
    b.writeBigUInt64LE(BigInt(interp.length + 1), 64 + 32);
    b.write(interp, interpAt, 'latin1');
  }
  return b;
}

function fakeRoot(withMusl: boolean): string {
  const root = mkdtempSync(join(tmpdir(), 'ein-fakeroot-'));
  for (const d of ['lib', 'lib64', 'usr/lib', 'usr/bin']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'lib64', 'ld-linux-x86-64.so.2'), fakeElf(null));
  if (withMusl) {
    // What Debian's musl and musl:arm64 packages install on a glibc system.
    writeFileSync(join(root, 'lib', 'ld-musl-x86_64.so.1'), fakeElf(null));
    writeFileSync(join(root, 'lib', 'ld-musl-aarch64.so.1'), fakeElf(null, { machine: 0xb7 }));
    writeFileSync(join(root, 'usr', 'lib', 'ld-musl-x86_64.so.1'), fakeElf(null));
  }
  const nodes: Record<string, Buffer> = {
    glibc: fakeElf('/lib64/ld-linux-x86-64.so.2'),
    'glibc-arm64': fakeElf('/lib/ld-linux-aarch64.so.1', { machine: 0xb7 }),
    musl: fakeElf('/lib/ld-musl-x86_64.so.1'),
    'musl-arm64': fakeElf('/lib/ld-musl-aarch64.so.1', { machine: 0xb7 }),
    // Program headers within the first 4 KiB, the string past it: read from the whole file.
    'musl-far': fakeElf('/lib/ld-musl-x86_64.so.1', { interpAt: 10_000 }),
    static: fakeElf(null),
  };
  for (const [name, bytes] of Object.entries(nodes)) {
    writeFileSync(join(root, 'usr', 'bin', `node-${name}`), bytes);
    chmodSync(join(root, 'usr', 'bin', `node-${name}`), 0o755);
  }
  writeFileSync(join(root, 'usr', 'bin', 'node-script'), '#!/bin/sh\necho not elf\n');
  return root;
}

test('the libc is the running node\'s own: its ELF interpreter decides, ld-musl-* files on disk do not', () => {
  const expected: Record<string, 'glibc' | 'musl' | 'fallback'> = {
    glibc: 'glibc',
    'glibc-arm64': 'glibc',
    musl: 'musl',
    'musl-arm64': 'musl',
    'musl-far': 'musl',
    static: 'fallback',
    script: 'fallback',
    missing: 'fallback',
  };
  for (const withMusl of [false, true]) {
    const root = fakeRoot(withMusl);
    try {
      assert.equal(existsSync(join(root, 'lib', 'ld-musl-aarch64.so.1')), withMusl);
      for (const [name, want] of Object.entries(expected)) {
        let fellBack = false;
        const got = libcOfExecutable(join(root, 'usr', 'bin', `node-${name}`), () => {
          fellBack = true;
          return 'glibc';
        });
        assert.equal(fellBack ? 'fallback' : got, want, `node-${name}, ${withMusl ? 'with' : 'without'} ld-musl-* in the root`);
      }
      assert.equal(readInterp(join(root, 'usr', 'bin', 'node-musl-far')), '/lib/ld-musl-x86_64.so.1');
      assert.equal(readInterp(join(root, 'usr', 'bin', 'node-static')), null);
      assert.throws(() => readInterp(join(root, 'usr', 'bin', 'node-script')), /not an ELF file/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
});

test('this process\'s tag follows its own node binary, whatever ld-musl-* files this machine has', (t) => {
  const interp = readInterp(process.execPath);
  const libc = interp !== null && /ld-musl-/.test(interp) ? 'musl' : 'glibc';
  assert.equal(platformTag, `linux-${process.arch}-${libc}`);
  const musls = ['/lib', '/usr/lib'].flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.startsWith('ld-musl-')) : []));
  t.diagnostic(`node's interpreter ${interp ?? '(none)'}; ld-musl-* on this machine: ${musls.join(' ') || 'none'}`);
});

test('elfInfo reads the machine, interpreter, DT_NEEDED and glibc versions of this node', () => {
  const info = elfInfo(process.execPath);
  assert.equal(info.machine, process.arch === 'x64' ? 'x86-64' : process.arch === 'arm64' ? 'aarch64' : info.machine);
  if (info.interp !== null && /ld-linux/.test(info.interp)) {
    assert.ok(info.needed.includes('libc.so.6'), info.needed.join(' '));
    const floor = glibcFloor(info);
    assert.ok(floor !== null && /^2\.\d+$/.test(floor), String(floor));
  }
});

test('the build-from-source hints: g++ and a command that really rebuilds', () => {
  assert.equal(installHint('linux-x64-glibc'), 'apt-get install python3 make gcc g++');
  assert.equal(installHint('linux-arm64-musl'), 'apk add python3 make gcc g++ musl-dev');
  assert.equal(rebuildCommand('/usr/lib/node_modules/einhyrningsins/packages/native-reuseport'), 'npm --prefix /usr/lib/node_modules/einhyrningsins/packages/native-reuseport run build:native');
  assert.equal(rebuildCommand("/opt/my app's/x"), "npm --prefix '/opt/my app'\\''s/x' run build:native");
});
