/** Is a file a static ELF executable (no PT_INTERP: LD_PRELOAD never applies to it)? One ELF reader: native-reuseport's. */
export { staticExecutable } from 'native-reuseport/elf';
