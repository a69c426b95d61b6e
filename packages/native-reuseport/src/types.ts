/** The types of native-reuseport's API and of the C addon's binding (index.ts). */

/** Options for {@link listenTcp}. Every field is required. */
export interface ListenTcpOptions {
  /** NUMERIC address (`'127.0.0.1'`, `'::'`, `'fe80::1%eth0'`); never a host name. */
  host: string;
  /** 0..65535; 0 lets the kernel pick (read it back with {@link getsockname}). */
  port: number;
  /** Address family of `host`: 4 (AF_INET) or 6 (AF_INET6). */
  family: 4 | 6;
  /** Set SO_REUSEADDR before bind. */
  reuseAddr: boolean;
  /** Set SO_REUSEPORT before bind (every socket sharing the port needs it, same uid). */
  reusePort: boolean;
  /** Set O_NONBLOCK after listen (OR-ed into the existing file status flags). */
  nonBlock: boolean;
  /**
   * Family 6 only: IPV6_V6ONLY 1/0, or `null` to keep the kernel default
   * (net.ipv6.bindv6only). Note that Linux forces it to true when binding to a
   * specific non-v4-mapped IPv6 address such as `::1`. Ignored for family 4.
   */
  v6Only: boolean | null;
  /** listen(2) backlog, >= 0 (the kernel caps it at net.core.somaxconn). */
  backlog: number;
}

/** Options for {@link listenUnix}. */
export interface ListenUnixOptions {
  /** Filesystem path of the socket; must not exist yet and be < 108 bytes. */
  path: string;
  /** listen(2) backlog, >= 0. */
  backlog: number;
  /** Set O_NONBLOCK after listen. */
  nonBlock: boolean;
}

/** Result of {@link getsockname}. */
export interface SockName {
  /** 4, 6, or `'unix'` for AF_UNIX sockets. */
  family: 4 | 6 | 'unix';
  /**
   * Numeric address, or the socket path for unix sockets (`''` when unnamed,
   * `'@name'` for the abstract namespace).
   */
  address: string;
  /** Local port; 0 for unix sockets. */
  port: number;
}

/** Result of {@link fdInfo}. */
export interface FdInfo {
  /** O_NONBLOCK is set on the open file description (shared by every dup). */
  nonBlock: boolean;
  /** FD_CLOEXEC is set on this descriptor (per-fd, not shared by dups). */
  cloexec: boolean;
  /** SO_REUSEADDR (false for non-sockets). */
  reuseAddr: boolean;
  /** SO_REUSEPORT (false for non-sockets). */
  reusePort: boolean;
  /** IPV6_V6ONLY, or `null` when the fd is not an AF_INET6 socket. */
  v6Only: boolean | null;
  /** SO_ACCEPTCONN: the socket is listening. */
  listening: boolean;
  /** TCP over IPv4/IPv6, AF_UNIX stream socket, or anything else (files, pipes, UDP...). */
  type: 'tcp4' | 'tcp6' | 'unix' | 'other';
}

/** The Error thrown when a system call fails. */
export interface NativeSyscallError extends Error {
  /** errno name, e.g. `'EADDRINUSE'`, `'EACCES'`, `'EADDRNOTAVAIL'`, `'EINVAL'`. */
  code: string;
  /** Positive Linux errno (same numbering as `os.constants.errno`). */
  errno: number;
  /** Failing call: `'socket'`, `'setsockopt'`, `'bind'`, `'listen'`, `'inet_pton'`, ... */
  syscall: string;
  /** listenTcp only: the host and port that were asked for. */
  address?: string;
  port?: number;
  /** listenUnix only: the socket path. */
  path?: string;
}

export interface NativeBinding {
  listenTcp(opts: ListenTcpOptions): number;
  listenUnix(opts: ListenUnixOptions): number;
  getsockname(fd: number): SockName;
  fdInfo(fd: number): FdInfo;
  close(fd: number): void;
  setCloexec(fd: number, on: boolean): void;
  flock(fd: number): boolean;
  openFds(): number[];
  socketPair(): [number, number];
  execve(path: string, argv: string[], env: string[]): never;
  memfdCreate(name: string): number;
  sendDatagram(path: string, message: string): void;
  setChildSubreaper(on: boolean): void;
  reapPid(pid: number): ReapedChild | null;
  peerCred(fd: number): PeerCred;
  getpgid(pid: number): number;
  /** Absent from an addon built before it (a stale local build). */
  acceptPending?(fd: number): number;
  mallocArenaMax(n: number): boolean;
  mallocTrim(): boolean;
  /** Absent from an addon built before them (a stale local build): see index.ts. */
  spawnInit?(onResults: () => void): void;
  spawnStart?(path: string, argv: string[], env: string[], fds: number[]): number;
  spawnSync?(path: string, argv: string[], env: string[], fds: number[]): number;
  spawnResults?(): SpawnResult[];
  spawnWait?(): void;
  reapSpawned?(all?: boolean): ReapedChild[];
  spawnedAdopt?(pid: number): void;
  isSpawned?(pid: number): boolean;
  spawnsInFlight?(): number;
}

/** A spawn started with spawnStart, completed: its pid, or why the launcher could not be started. */
export type SpawnResult = { id: number; pid: number } | { id: number; error: string; code: string };

/** Result of {@link reapPid}. */
export interface ReapedChild {
  pid: number;
  /** Exit status, or null when killed by a signal. */
  code: number | null;
  /** Number of the signal that killed it, or null. */
  signal: number | null;
}

/** Result of {@link peerCred}: the peer of a unix socket when it connected. */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}
