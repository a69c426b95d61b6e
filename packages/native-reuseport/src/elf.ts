/**
 * Just enough of ELF (64-bit little-endian: x86-64 and aarch64) to tell which
 * libc a program runs on and what a shared object asks of it:
 *
 * - {@link readInterp}: the PT_INTERP of an executable (its dynamic loader,
 *   e.g. `/lib64/ld-linux-x86-64.so.2` or `/lib/ld-musl-aarch64.so.1`), from the
 *   first few kilobytes of the file. The native loader uses it on
 *   `process.execPath` to tell musl from glibc by the running Node itself.
 * - {@link elfInfo}: machine, type, interpreter, DT_NEEDED and the glibc symbol
 *   versions needed (SHT_GNU_verneed), for the prebuild script and its tests.
 * - {@link staticExecutable}: no PT_INTERP, so LD_PRELOAD never applies to it (any
 *   ELF class and byte order), for the bind shim's warning.
 *
 * @module
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

const PT_INTERP = 3;
const SHT_DYNAMIC = 6;
const SHT_GNU_VERNEED = 0x6ffffffe;
const DT_NEEDED = 1;
const MACHINES: Record<number, string> = { 0x3e: 'x86-64', 0xb7: 'aarch64', 0x03: 'x86', 0x28: 'arm' };

/** What {@link elfInfo} reads. */
export interface ElfInfo {
  /** `'x86-64'`, `'aarch64'`, ... (e_machine). */
  machine: string;
  /** `'EXEC'` (fixed address), `'DYN'` (shared object or PIE). */
  type: 'EXEC' | 'DYN' | 'OTHER';
  /** PT_INTERP, or null for a static executable or a shared object. */
  interp: string | null;
  /** DT_NEEDED libraries. */
  needed: string[];
  /** Every symbol version needed, e.g. `['GLIBC_2.2.5', 'GLIBC_2.28']`, sorted, no duplicates. */
  versions: string[];
}

function header(buf: Buffer, what: string): void {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${what}: not an ELF file`);
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error(`${what}: not a 64-bit little-endian ELF file`);
}

function cstring(buf: Buffer, at: number): string {
  const end = buf.indexOf(0, at);
  return buf.toString('latin1', at, end < 0 ? buf.length : end);
}

/** The interpreter of `buf`'s program headers, null when there is none, undefined when they lie past `buf`. */
function interpFrom(buf: Buffer): string | null | undefined {
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 56 > buf.length) return undefined;
    if (buf.readUInt32LE(at) !== PT_INTERP) continue;
    const off = Number(buf.readBigUInt64LE(at + 8));
    const size = Number(buf.readBigUInt64LE(at + 32));
    if (off + size > buf.length) return undefined;
    return cstring(buf.subarray(off, off + size), 0);
  }
  return null;
}

/**
 * The dynamic loader an executable asks for (PT_INTERP), or null when it has
 * none (static). Reads the first 4 KiB only (the program headers and the
 * interpreter string sit at the start of every executable linked by GNU ld,
 * gold, lld or mold), then the whole file in the rare case they do not.
 * @throws Error when the file cannot be read or is not a 64-bit LE ELF file.
 */
export function readInterp(path: string): string | null {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(4096);
    const n = readSync(fd, head, 0, head.length, 0);
    const buf = head.subarray(0, n);
    header(buf, path);
    const fromHead = interpFrom(buf);
    if (fromHead !== undefined) return fromHead;
  } finally {
    closeSync(fd);
  }
  const whole = readFileSync(path);
  return interpFrom(whole) ?? null;
}

/** Machine, type, interpreter, DT_NEEDED and needed symbol versions of an ELF file. */
export function elfInfo(path: string): ElfInfo {
  const buf = readFileSync(path);
  header(buf, path);
  const etype = buf.readUInt16LE(16);
  const machine = MACHINES[buf.readUInt16LE(18)] ?? `machine-${buf.readUInt16LE(18)}`;
  const shoff = Number(buf.readBigUInt64LE(40));
  const shentsize = buf.readUInt16LE(58);
  const shnum = buf.readUInt16LE(60);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      type: buf.readUInt32LE(at + 4),
      offset: Number(buf.readBigUInt64LE(at + 24)),
      size: Number(buf.readBigUInt64LE(at + 32)),
      link: buf.readUInt32LE(at + 40),
      info: buf.readUInt32LE(at + 44),
    };
  });
  const strtab = (index: number) => sections[index]?.offset ?? 0;
  const needed: string[] = [];
  const versions = new Set<string>();
  for (const s of sections) {
    if (s.type === SHT_DYNAMIC) {
      for (let at = s.offset; at + 16 <= s.offset + s.size; at += 16) {
        const tag = buf.readBigInt64LE(at);
        if (tag === 0n) break;
        if (tag === BigInt(DT_NEEDED)) needed.push(cstring(buf, strtab(s.link) + Number(buf.readBigUInt64LE(at + 8))));
      }
    } else if (s.type === SHT_GNU_VERNEED) {
      // Elf64_Verneed { vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32 }
      // Elf64_Vernaux { vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32 }
      let at = s.offset;
      for (let n = 0; n < s.info; n++) {
        const cnt = buf.readUInt16LE(at + 2);
        let aux = at + buf.readUInt32LE(at + 8);
        for (let k = 0; k < cnt; k++) {
          versions.add(cstring(buf, strtab(s.link) + buf.readUInt32LE(aux + 8)));
          aux += buf.readUInt32LE(aux + 12);
        }
        const next = buf.readUInt32LE(at + 12);
        if (next === 0) break;
        at += next;
      }
    }
  }
  return {
    machine,
    type: etype === 2 ? 'EXEC' : etype === 3 ? 'DYN' : 'OTHER',
    interp: interpFrom(buf) ?? null,
    needed,
    versions: [...versions].sort(compareVersions),
  };
}

/** Compare `GLIBC_2.28`-style or bare `2.28` versions numerically. */
export function compareVersions(a: string, b: string): number {
  const num = (v: string) => v.replace(/^[A-Z_]+_/, '').split('.').map(Number);
  const x = num(a);
  const y = num(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The newest GLIBC_x.y an ELF file needs (`'2.28'`), or null when it needs no glibc version. */
export function glibcFloor(info: ElfInfo): string | null {
  const g = info.versions.filter((v) => /^GLIBC_\d/.test(v)).sort(compareVersions);
  return g.length > 0 ? (g[g.length - 1] as string).slice('GLIBC_'.length) : null;
}

/**
 * Which libc a program runs on, told by its own ELF interpreter: `ld-musl-*`
 * is musl, anything else (`ld-linux-*`) glibc. A static or unreadable
 * executable is decided by `fallback`.
 */
export function libcOfExecutable(path: string, fallback: () => 'glibc' | 'musl'): 'glibc' | 'musl' {
  let interp: string | null;
  try {
    interp = readInterp(path);
  } catch {
    return fallback();
  }
  if (interp === null) return fallback();
  return /(^|\/)ld-musl-[^/]*$/.test(interp) ? 'musl' : 'glibc';
}

/** True only for an ELF executable without a program interpreter; false for scripts, dynamic ELF files and anything unreadable. */
export function staticExecutable(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 52 || h.readUInt32BE(0) !== 0x7f454c46) return false;
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const type = u16(h, 16);
    // ET_EXEC, or ET_DYN (static-pie is ET_DYN without PT_INTERP, as are shared libraries)
    if (type !== 2 && type !== 3) return false;
    const phoff = is64 ? Number(le ? h.readBigUInt64LE(32) : h.readBigUInt64BE(32)) : u32(h, 28);
    const phentsize = u16(h, is64 ? 54 : 42);
    const phnum = u16(h, is64 ? 56 : 44);
    if (phnum === 0 || phnum > 256 || phentsize < 8) return false;
    const ph = Buffer.alloc(phentsize * phnum);
    if (readSync(fd, ph, 0, ph.length, phoff) < ph.length) return false;
    for (let i = 0; i < phnum; i++) if (u32(ph, i * phentsize) === PT_INTERP) return false;
    // No interpreter. ET_EXEC: static. ET_DYN: static-pie (or a shared library): count it
    // as an executable only with a non-zero entry point.
    let entryOk = type === 2;
    if (!entryOk) {
      const entry = is64 ? Number(le ? h.readBigUInt64LE(24) : h.readBigUInt64BE(24)) : u32(h, 24);
      entryOk = entry !== 0;
    }
    return entryOk;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
