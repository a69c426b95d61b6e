/**
 * The pitfall of `-b ADDR:PORT,p` (SO_REUSEPORT): a server that opens its own
 * reuse-port socket on that port instead of using the one it was given joins
 * the kernel's group beside the master's socket, which nobody accepts from; the
 * kernel still hashes a share of the new connections to it, and those time out.
 * The master looks for such a foreign listener (in /proc/net/tcp and tcp6, by
 * port, not its own socket's inode) a few seconds after start and then every
 * minute, and warns once per socket with the fix.
 */
import { fstatSync, readFileSync } from 'node:fs';
import type { Logger } from './log.js';

export interface WatchedSocket {
  fd: number;
  family: 4 | 6 | 'unix';
  port: number;
  flags: readonly string[];
  text: string;
}

/** Inodes of the TCP sockets listening on `port` (LISTEN is state 0A), from /proc/net/tcp-format text. */
export function listenerInodes(procNetTcp: string, port: number): number[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out: number[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A') continue;
    if ((f[1] as string).split(':')[1] !== hex) continue;
    out.push(Number(f[9]));
  }
  return out;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Start watching the reuse-port sockets (if any); returns a stop function. */
export function watchReusePort(sockets: readonly WatchedSocket[], log: Logger, firstMs = 5000, everyMs = 60_000): () => void {
  const watched = sockets.filter((s) => s.family !== 'unix' && s.flags.includes('p'));
  if (watched.length === 0) return () => undefined;
  const warned = new Set<number>();
  const own = new Map(watched.map((s) => [s.fd, fstatSync(s.fd).ino]));
  const check = () => {
    const text = read('/proc/net/tcp') + read('/proc/net/tcp6');
    for (const s of watched) {
      if (warned.has(s.fd)) continue;
      const foreign = listenerInodes(text, s.port).filter((ino) => ino !== own.get(s.fd));
      if (foreign.length === 0) continue;
      warned.add(s.fd);
      log.warn(
        `-b ${s.text}: ${foreign.length} other socket${foreign.length === 1 ? ' listens' : 's listen'} on port ${s.port} beside the master's (SO_REUSEPORT): ` +
          `the kernel hands a share of new connections to the master's socket, which no child accepts from, and they time out. ` +
          `Have the server use the socket it is given (EINHORN_FD_0, --handoff systemd), or --handoff port (its own bind then gets this socket), or drop ,p`,
      );
    }
  };
  const first = setTimeout(check, firstMs);
  const every = setInterval(check, everyMs);
  first.unref();
  every.unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}
