/** Is a file a static ELF executable (no PT_INTERP: LD_PRELOAD never applies to it)? */
import { closeSync, openSync, readSync } from 'node:fs';

const PT_INTERP = 3;

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
