/**
 * native-reuseport: raw listening sockets (SO_REUSEPORT, blocking or not) and
 * a few fd helpers that Node's `net` module does not offer, plus the path of
 * the `einhyrningsins-launch` exec launcher.
 *
 * The C addon (build/Release/native_reuseport.node, built by `node-gyp
 * rebuild` in this package) is loaded lazily on the first call, so importing
 * this module never throws, even when the addon has not been built yet.
 *
 * Errors from system calls are plain `Error`s carrying `code` (errno name,
 * e.g. `'EADDRINUSE'`), `errno` (the positive Linux errno, comparable with
 * `os.constants.errno.*`; note that Node's own SystemErrors use negative
 * libuv numbers instead) and `syscall`; see {@link NativeSyscallError}.
 * Misuse of the arguments (wrong types, out-of-range numbers, strings with
 * NUL bytes) throws a `TypeError` whose `code` is `ERR_INVALID_ARG_TYPE`,
 * `ERR_INVALID_ARG_VALUE` or `ERR_MISSING_ARGS`.
 *
 * @module
 */
import { spawnSync as runSync } from 'node:child_process';
import { accessSync, existsSync, realpathSync, constants as fsConstants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { libcOfExecutable } from './elf.js';

import type { ListenTcpOptions, ListenUnixOptions, SockName, FdInfo, NativeSyscallError, NativeBinding, ReapedChild, PeerCred, SpawnResult } from './types.js';

export type { ListenTcpOptions, ListenUnixOptions, SockName, FdInfo, NativeSyscallError, ReapedChild, PeerCred, SpawnResult } from './types.js';

// ---- where the binaries are ----------------------------------------------------
//
// Two layouts, one rule. In a clone, node-gyp builds into
// packages/native-reuseport/build/Release. In the published package the same
// directory exists only after a build from source; what ships is
// prebuilds/<platform>-<arch>-<libc>/ at the package root, made at pack time.
// This module is either compiled alone (packages/native-reuseport/dist/src) or
// bundled into the programs (dist/ at the package root), so the package root is
// found by walking up to the directory that holds packages/native-reuseport/binding.gyp
// (shipped in both). A local build wins over a prebuilt one: it was made here.

const here = dirname(fileURLToPath(import.meta.url));

function findPackageRoot(): string {
  let dir = here;
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'packages', 'native-reuseport', 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return resolve(here, '..', '..', '..', '..');
}

/** The root of the einhyrningsins package (or of the clone). */
export const packageRoot: string = findPackageRoot();
/** Where binding.gyp and the C sources are; node-gyp builds in `build/` below it. */
export const sourceDir: string = join(packageRoot, 'packages', 'native-reuseport');
/** What node-gyp produces, in a clone or after a build from source. */
export const buildDir: string = join(sourceDir, 'build', 'Release');

/**
 * musl or glibc: the libc this Node itself runs on, told by its own ELF
 * interpreter (PT_INTERP of process.execPath, one 4 KiB read), not by what is on
 * disk (Debian's `musl` package puts /lib/ld-musl-* on glibc machines). A static
 * or unreadable node falls back to process.report (~5 ms, rare).
 */
function libc(): 'glibc' | 'musl' {
  return libcOfExecutable(process.execPath, () => {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return header?.glibcVersionRuntime ? 'glibc' : 'musl';
  });
}

/** The platform tag of the prebuilt binaries this machine can use, e.g. `linux-x64-glibc`. */
export const platformTag: string = process.platform === 'linux' ? `linux-${process.arch}-${libc()}` : `${process.platform}-${process.arch}`;
/** Where the prebuilt binaries for this platform would be. */
export const prebuildDir: string = join(packageRoot, 'prebuilds', platformTag);

/** Every native file the package ships, by name (the same names in buildDir and prebuildDir). */
export const ARTIFACTS = ['native_reuseport.node', 'einhyrningsins-launch', 'einhyrningsins-bind-shim.so'] as const;
export type ArtifactName = (typeof ARTIFACTS)[number];

/**
 * Absolute path of a native file: the local build if there is one, else the
 * prebuilt one for this platform, else (nothing there yet) where a build from
 * source will put it.
 */
export function artifactPath(name: ArtifactName): string {
  const built = join(buildDir, name);
  if (existsSync(built)) return built;
  const pre = join(prebuildDir, name);
  if (existsSync(pre)) return pre;
  return built;
}

/** Absolute path of the compiled addon (`native_reuseport.node`). */
export let addonPath: string = artifactPath('native_reuseport.node');

/**
 * Absolute path of the `einhyrningsins-launch` executable. Not checked at import
 * time; {@link assertLauncher} (or {@link ensureNative}) makes sure it exists.
 *
 * Its usage and options: native/launch.c's header. It execv()s PATH. Exit codes when it
 * cannot exec: {@link LAUNCH_EXIT}.
 */
export let launcherPath: string = artifactPath('einhyrningsins-launch');

/**
 * Absolute path of the `einhyrningsins-bind-shim.so` LD_PRELOAD library (the
 * dyno driver's). Not checked at import time.
 *
 * With `EINHYRNINGSINS_BIND_FDS=3[,4...]` in the environment, a bind() of a
 * TCP stream socket to port P, when one of those fds is a listening TCP
 * socket bound to port P, dup3()s that socket onto the app's fd (keeping its
 * close-on-exec flag and O_NONBLOCK) and returns 0: a stock app that binds
 * $PORT itself accepts on the inherited socket. Every other bind() is the
 * real one. `EINHYRNINGSINS_BIND_VERBOSE=1` logs each substitution on stderr.
 */
export let bindShimPath: string = artifactPath('einhyrningsins-bind-shim.so');

/** Launcher exit codes (only seen when PATH was not exec'd). */
export const LAUNCH_EXIT = {
  /** setpgid/prctl failed, or the parent died before PR_SET_PDEATHSIG was armed. */
  SETUP_FAILED: 1,
  /** Bad command line (a bad --umask, a --cwd it cannot enter). */
  USAGE: 2,
  /** PATH exists but cannot be executed (EACCES, EPERM, ENOEXEC, ETXTBSY). */
  NOT_EXECUTABLE: 126,
  /** Any other execv failure (ENOENT, ENOTDIR, ELOOP, ...). */
  EXEC_FAILED: 127,
} as const;

/** Thrown when the native files are missing and cannot be built here; its message is one line. */
export class NativeMissingError extends Error {
  override name = 'NativeMissingError';
}

/** What a build from source runs, and how a message names it. node-gyp links the addon with g++. */
const BUILD_TOOLS = [
  ['python3', 'python3'],
  ['make', 'make'],
  ['cc', 'a C compiler (cc)'],
  ['g++', 'g++ (node-gyp links with it)'],
] as const;

/** The packages that bring {@link BUILD_TOOLS}, for the platform's usual package manager. */
export function installHint(tag: string): string {
  return tag.endsWith('-musl') ? 'apk add python3 make gcc g++ musl-dev' : 'apt-get install python3 make gcc g++';
}

/**
 * The command that builds the native files from the shipped sources in place,
 * exactly as the programs do on their first start (npm runs node-gyp, its own).
 */
export function rebuildCommand(dir: string = sourceDir): string {
  return `npm --prefix ${/^[\w@%+=:,./-]+$/.test(dir) ? dir : `'${dir.replace(/'/g, "'\\''")}'`} run build:native`;
}

function missing(): string[] {
  return ARTIFACTS.filter((name) => !existsSync(artifactPath(name)));
}

/** Find `cmd` on PATH (an executable regular file), or null. */
function which(cmd: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(':')) {
    if (dir === '') continue;
    const file = join(dir, cmd);
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** npm's own command-line script, which carries node-gyp for its scripts. */
function npmCli(): string | null {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && /npm-cli\.js$/.test(fromEnv) && existsSync(fromEnv)) return fromEnv;
  const npm = which('npm');
  if (npm === null) return null;
  try {
    const real = realpathSync(npm);
    return real.endsWith('.js') ? real : null;
  } catch {
    return null;
  }
}

/**
 * Make sure the addon and the launcher exist: use the local build or the
 * prebuilt files for this platform, and where neither is there, build them
 * from the shipped sources with node-gyp (npm's own), once, into
 * {@link buildDir}. Its progress goes to stderr.
 * @throws NativeMissingError with a one-line message naming the platform and
 *   what to install when that cannot be done.
 */
export function ensureNative(): void {
  if (missing().length === 0) return;
  const where = `no prebuilt native binary for ${platformTag} in this package`;
  if (!existsSync(join(sourceDir, 'binding.gyp'))) {
    throw new NativeMissingError(`${where}, and no sources to build one from (${sourceDir})`);
  }
  const absent: string[] = BUILD_TOOLS.filter(([cmd]) => which(cmd) === null).map(([, name]) => name);
  const cli = npmCli();
  if (cli === null) absent.push('npm');
  if (absent.length > 0) {
    throw new NativeMissingError(
      `${where}; building it from source needs ${absent.join(', ')} on PATH ` +
        `(e.g. ${installHint(platformTag)}), then run it again`,
    );
  }
  try {
    accessSync(sourceDir, fsConstants.W_OK);
  } catch {
    throw new NativeMissingError(`${where}; cannot build it: ${sourceDir} is not writable (as its owner, run: ${rebuildCommand()})`);
  }
  process.stderr.write(`einhyrningsins: ${where}; building it from source in ${sourceDir} (once)\n`);
  const r = runSync(process.execPath, [cli as string, 'run', '--silent', 'build:native'], {
    cwd: sourceDir,
    stdio: ['ignore', 2, 2],
  });
  const still = missing();
  if (r.status !== 0 || still.length > 0) {
    throw new NativeMissingError(
      `building the native binary from source failed (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`}); see the lines above`,
    );
  }
  addonPath = artifactPath('native_reuseport.node');
  launcherPath = artifactPath('einhyrningsins-launch');
  bindShimPath = artifactPath('einhyrningsins-bind-shim.so');
}

/**
 * Check that {@link launcherPath} exists and is executable; returns it.
 * @throws Error (with `cause`) telling how to build it.
 */
export function assertLauncher(): string {
  try {
    accessSync(launcherPath, fsConstants.X_OK);
  } catch (cause) {
    throw new Error(
      `native-reuseport: launcher ${launcherPath} is missing or not executable ` +
        `(build it with: ${rebuildCommand()})`,
      { cause },
    );
  }
  return launcherPath;
}

const require = createRequire(import.meta.url);
let binding: NativeBinding | undefined;

function native(): NativeBinding {
  if (binding === undefined) {
    try {
      binding = require(addonPath) as NativeBinding;
    } catch (cause) {
      throw new Error(
        `native-reuseport: cannot load ${addonPath}: ${(cause as Error).message.split('\n')[0]} ` +
          `(build it with: ${rebuildCommand()})`,
        { cause },
      );
    }
  }
  return binding;
}

/** True when `err` is an Error thrown by a failing system call in this addon. */
export function isNativeSyscallError(err: unknown): err is NativeSyscallError {
  return (
    err instanceof Error &&
    typeof (err as Partial<NativeSyscallError>).code === 'string' &&
    typeof (err as Partial<NativeSyscallError>).errno === 'number' &&
    typeof (err as Partial<NativeSyscallError>).syscall === 'string'
  );
}

/**
 * Create a listening TCP socket: socket(SOCK_STREAM|SOCK_CLOEXEC), the
 * requested SO_REUSEADDR / SO_REUSEPORT / IPV6_V6ONLY options, bind, listen,
 * then O_NONBLOCK if asked.
 *
 * The returned fd is close-on-exec in this process; pass it to a child through
 * `child_process.spawn`'s `stdio` array (its dup2 clears FD_CLOEXEC on the
 * child's copy). Close it with {@link close}.
 *
 * @returns the listening fd.
 * @throws NativeSyscallError, e.g. `bind 127.0.0.1:8080: Address already in use`
 *   (code EADDRINUSE); a non-numeric `host` gives code EINVAL, syscall
 *   `inet_pton`. No fd is leaked on failure.
 * @throws TypeError on malformed options.
 */
export function listenTcp(opts: ListenTcpOptions): number {
  return native().listenTcp(opts);
}

/**
 * Create a listening AF_UNIX stream socket bound at `opts.path` (close-on-exec).
 * Never unlinks anything: an existing path fails with EADDRINUSE, and the
 * socket file stays after {@link close} (removing it is the caller's job).
 *
 * @throws NativeSyscallError (EADDRINUSE, ENAMETOOLONG for paths of 108 bytes
 *   or more, EACCES, ENOENT...), with `path` set.
 * @throws TypeError on malformed options.
 */
export function listenUnix(opts: ListenUnixOptions): number {
  return native().listenUnix(opts);
}

/** Local address of a socket fd. @throws NativeSyscallError (EBADF, ENOTSOCK...). */
export function getsockname(fd: number): SockName {
  return native().getsockname(fd);
}

/** Flags and socket options of an fd, for tests and diagnostics. @throws NativeSyscallError (EBADF). */
export function fdInfo(fd: number): FdInfo {
  return native().fdInfo(fd);
}

/**
 * close(2). An EINTR from close is ignored (the fd is released anyway on
 * Linux). Never use it on fds that Node itself owns.
 * @throws NativeSyscallError (EBADF when `fd` is not open).
 */
export function close(fd: number): void {
  native().close(fd);
}

/** Set (`on`) or clear FD_CLOEXEC on `fd`. @throws NativeSyscallError (EBADF). */
export function setCloexec(fd: number, on: boolean): void {
  native().setCloexec(fd, on);
}

/**
 * flock(fd, LOCK_EX|LOCK_NB).
 * @returns true when the lock is held, false when another open file
 *   description holds it (EWOULDBLOCK).
 * @throws NativeSyscallError for any other failure (EBADF, ...).
 */
export function flock(fd: number): boolean {
  return native().flock(fd);
}

/** The fds this process has open, ascending (from /proc/self/fd), for leak checks. */
export function openFds(): number[] {
  return native().openFds();
}

/**
 * A connected pair of unix stream sockets (both close-on-exec), e.g. a control
 * connection handed to a child at a fixed fd (einhorn's -g, EINHORN_SOCK_FD).
 */
export function socketPair(): [number, number] {
  return native().socketPair();
}

/**
 * execve(2): replace this process's image, keeping every fd that is not
 * close-on-exec (clear FD_CLOEXEC with {@link setCloexec} on what must cross).
 * `env` is a list of `KEY=value` strings. Returns only by throwing.
 * @throws NativeSyscallError (ENOENT, EACCES, E2BIG, ...).
 */
export function execve(path: string, argv: string[], env: string[]): never {
  return native().execve(path, argv, env);
}

/** memfd_create(2) with MFD_CLOEXEC: an anonymous in-memory file. */
export function memfdCreate(name: string): number {
  return native().memfdCreate(name);
}

/**
 * Send one datagram to a unix socket without blocking: sd_notify(3) to
 * `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace), syslog lines to
 * /dev/log. Node has no unix datagram sockets.
 * @throws NativeSyscallError (ENOENT, ECONNREFUSED, EACCES, EAGAIN when the
 *   receiver's queue is full: the datagram is dropped).
 */
export function sendDatagram(path: string, message: string): void {
  native().sendDatagram(path, message);
}

/**
 * prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented to this
 * process instead of init (reap them with {@link reapPid}).
 * @throws NativeSyscallError.
 */
export function setChildSubreaper(on: boolean): void {
  native().setChildSubreaper(on);
}

/**
 * waitpid(pid, WNOHANG) for a child that Node did not spawn (never for one it
 * did: its exit would be lost to Node). null while it still runs.
 * @throws NativeSyscallError (ECHILD: not our child).
 */
export function reapPid(pid: number): ReapedChild | null {
  return native().reapPid(pid);
}

/** SO_PEERCRED of a connected unix socket fd. @throws NativeSyscallError. */
export function peerCred(fd: number): PeerCred {
  return native().peerCred(fd);
}

/** getpgid(2), or -1 when `pid` does not exist (or is not visible). */
export function getpgid(pid: number): number {
  return native().getpgid(pid);
}

/**
 * One more pending connection of a non-blocking listening socket (accept4, CLOEXEC and
 * NONBLOCK): its fd, or null when none is pending, on an error (the event loop's own
 * accept deals with it) or with an addon built before this function.
 */
export function acceptPending(fd: number): number | null {
  const n = native();
  if (typeof n.acceptPending !== 'function') return null;
  const r = n.acceptPending(fd);
  return r >= 0 ? r : null;
}

/** glibc mallopt(M_ARENA_MAX, n) for arenas created from now on; false if refused. */
export function mallocArenaMax(n: number): boolean {
  return native().mallocArenaMax(n);
}

/** glibc malloc_trim(0): return free heap pages to the kernel; true if any were. */
export function mallocTrim(): boolean {
  return native().mallocTrim();
}

// ---- spawning off the event loop (native/spawn.c: what each does) -----------------

type Spawner = Required<Pick<NativeBinding, 'spawnInit' | 'spawnStart' | 'spawnSync' | 'spawnResults' | 'spawnWait' | 'reapSpawned' | 'spawnedAdopt'>>;

/** The spawn functions, or an error naming the stale build that lacks them. */
function spawner(): Spawner {
  const n = native();
  if (typeof n.spawnStart !== 'function') throw new Error(`native-reuseport: ${addonPath} was built before spawnStart (rebuild it with: ${rebuildCommand()})`);
  return n as Spawner;
}

/** Once per process: `onResults` is called on this thread when spawns have completed (take them with spawnResults). */
export function spawnInit(onResults: () => void): void {
  spawner().spawnInit(onResults);
}

/**
 * posix_spawn(path, argv, env) on the addon's own threads (not libuv's threadpool); the
 * child's fd i is `fds[i]` (dup'ed before this returns: the caller may close its own), every
 * signal at its default and none blocked. Returns the id spawnResults reports it under.
 */
export function spawnStart(path: string, argv: string[], env: string[], fds: number[]): number {
  return spawner().spawnStart(path, argv, env, fds);
}

/** The same on this thread (then the child's parent thread, which PR_SET_PDEATHSIG watches). @throws NativeSyscallError. */
export function spawnSync(path: string, argv: string[], env: string[], fds: number[]): number {
  return spawner().spawnSync(path, argv, env, fds);
}

/** The spawns completed since the last call, each once; their pids may be reaped from now on. */
export function spawnResults(): SpawnResult[] {
  return spawner().spawnResults();
}

/** Block until no spawn is in flight (before a reload's snapshot); then take spawnResults. */
export function spawnWait(): void {
  spawner().spawnWait();
}

/**
 * waitpid(WNOHANG) of the children spawned (or adopted) here and handed out by spawnResults:
 * the exited ones, forgotten. Usually only the zombies the kernel lists are looked at; `all`:
 * every registered pid (one no longer our child, ECHILD, comes back with code and signal null).
 */
export function reapSpawned(all = false): ReapedChild[] {
  return spawner().reapSpawned(all);
}

/** A child this process had before a re-exec: reaped by reapSpawned from now on. */
export function spawnedAdopt(pid: number): void {
  spawner().spawnedAdopt(pid);
}

/** Was `pid` spawned (or adopted) here and not reaped yet? */
export function isSpawned(pid: number): boolean {
  return native().isSpawned?.(pid) ?? false;
}

/** Spawns queued or running whose pid is not registered yet (see reaper.ts). */
export function spawnsInFlight(): number {
  return native().spawnsInFlight?.() ?? 0;
}
