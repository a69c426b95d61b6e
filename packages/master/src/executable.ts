/**
 * Is this file (its first bytes) a program this machine can run? An ELF executable of this
 * machine's class, byte order and architecture (e_machine for process.arch), or a `#!`
 * script. Pure: the fetcher reads the header, this decides.
 */

/** ELF class (1: 32-bit, 2: 64-bit), data (1: little-endian, 2: big) and e_machine per Node's process.arch. */
const ARCHES: Readonly<Record<string, { cls: 1 | 2; machine: number }>> = {
  x64: { cls: 2, machine: 62 },
  arm64: { cls: 2, machine: 183 },
  ia32: { cls: 1, machine: 3 },
  arm: { cls: 1, machine: 40 },
  riscv64: { cls: 2, machine: 243 },
  ppc64: { cls: 2, machine: 21 },
  s390x: { cls: 2, machine: 22 },
  loong64: { cls: 2, machine: 258 },
  mips: { cls: 1, machine: 8 },
  mipsel: { cls: 1, machine: 8 },
};

const MACHINE_NAMES: Readonly<Record<number, string>> = {
  3: 'x86 (i386)',
  8: 'MIPS',
  20: 'PowerPC',
  21: 'PowerPC64',
  22: 's390',
  40: 'ARM',
  62: 'x86-64',
  183: 'AArch64',
  243: 'RISC-V',
  258: 'LoongArch',
};

/** How many bytes of the file `executableProblem` wants. */
export const HEADER_BYTES = 256;

/**
 * Null if `header` (the file's first bytes) starts a program this machine runs, else why
 * not. `arch` and `endianness` are process.arch and os.endianness().
 */
export function executableProblem(header: Uint8Array, arch: string, endianness: 'LE' | 'BE'): string | null {
  const b = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  if (b.length >= 2 && b[0] === 0x23 && b[1] === 0x21) {
    const nl = b.indexOf(0x0a);
    const line = b.subarray(2, nl < 0 ? b.length : nl).toString('latin1').trim();
    if (line === '') return 'a #! line without an interpreter';
    return null;
  }
  if (b.length < 20 || b.readUInt32BE(0) !== 0x7f454c46) {
    return b.length === 0 ? 'an empty file' : 'neither an ELF executable nor a #! script';
  }
  const want = ARCHES[arch];
  if (!want) return `an ELF file, but this machine's architecture (${arch}) is not known to the check`;
  const cls = b[4];
  const data = b[5];
  const le = data === 1;
  if (data !== 1 && data !== 2) return `an ELF file with an invalid byte order (${String(data)})`;
  const type = le ? b.readUInt16LE(16) : b.readUInt16BE(16);
  const machine = le ? b.readUInt16LE(18) : b.readUInt16BE(18);
  const name = (m: number) => `${MACHINE_NAMES[m] ?? 'e_machine'} ${m}`;
  if (machine !== want.machine) return `an ELF executable for ${name(machine)}; this machine is ${arch} (${name(want.machine)})`;
  if (cls !== want.cls) return `a ${cls === 1 ? '32' : cls === 2 ? '64' : '?'}-bit ELF file; this machine runs ${want.cls === 1 ? '32' : '64'}-bit ones`;
  if ((data === 1 ? 'LE' : 'BE') !== endianness) return `a ${le ? 'little' : 'big'}-endian ELF file on a ${endianness === 'LE' ? 'little' : 'big'}-endian machine`;
  // ET_EXEC, or ET_DYN (position-independent executables are ET_DYN).
  if (type !== 2 && type !== 3) return `an ELF file that is not an executable (e_type ${type})`;
  return null;
}
