/**
 * The control socket's file: its path resolved, the path claimed (a stale socket removed,
 * a live master's or another file refused) and the socket bound there with its mode.
 */
import { lstatSync, realpathSync, unlinkSync, type Stats } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import { basename, dirname, join } from 'node:path';
import * as native from 'native-reuseport';
import { StartupError } from './errors.js';
import { checkSocketDir } from './socket-dir.js';
import type { Logger } from './log.js';

/**
 * The control socket's listen backlog (the kernel caps it at net.core.somaxconn, 4096 by
 * default): 1,000 workers ACK within a second of each other, and a connection past the
 * backlog is refused at once (EAGAIN on a unix socket), not queued: with 511, a busy
 * master's workers lost half their ACKs.
 */
export const CONTROL_BACKLOG = 4096;
/** sun_path is 108 bytes on Linux, NUL included. */
const MAX_UNIX_PATH = 107;

/**
 * The control socket's path with its directory resolved (symlinks followed once, now):
 * what is bound, passed to children in EINHORN_SOCK_PATH and checked later.
 */
export function resolveSocketPath(path: string): string {
  const dir = dirname(path);
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    throw new StartupError(`control socket directory does not exist: ${dir}`);
  }
  return join(real, basename(path));
}

/** The directory's identity, to notice it being replaced (a swapped symlink, a rename). */
export function sameDir(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Make `path` (directory already resolved) free for a new control socket: refuse when a
 * live master answers there or when it is not a socket; remove a stale socket file.
 * Returns the directory's stat, to check later that it is still the same directory.
 */
export async function claimPath(path: string, log: Logger): Promise<Stats> {
  const dir = dirname(path);
  let dst: Stats;
  try {
    dst = lstatSync(dir);
  } catch {
    throw new StartupError(`control socket directory does not exist: ${dir}`);
  }
  if (!dst.isDirectory()) throw new StartupError(`control socket directory is not a directory: ${dir}`);
  // Another user who can write to the directory could replace the socket: refuse unless the
  // sticky bit protects it (as on /tmp), and unless the directory is ours or root's.
  const uid = process.getuid?.() ?? 0;
  if (dst.uid !== uid && dst.uid !== 0) {
    throw new StartupError(`control socket directory ${dir} belongs to another user (uid ${dst.uid}); refusing`);
  }
  checkSocketDir(dir, dst, (m) => log.warn(m));
  if (Buffer.byteLength(path) > MAX_UNIX_PATH) {
    throw new StartupError(`control socket path is too long (${Buffer.byteLength(path)} bytes, at most ${MAX_UNIX_PATH}): ${path}`);
  }
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return dst;
  }
  if (!st.isSocket()) {
    throw new StartupError(`${path} exists and is not a socket; refusing to replace it (pass -d to use another path)`);
  }
  const live = await new Promise<boolean | Error>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', (err: NodeJS.ErrnoException) => {
      c.destroy();
      resolve(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? false : err);
    });
  });
  if (live === true) {
    throw new StartupError(`another master is listening on the control socket ${path}; pass -d to use another path`);
  }
  if (live instanceof Error) throw new StartupError(`cannot check the control socket ${path}: ${live.message}`);
  log.info(`Removing stale control socket ${path}`);
  try {
    unlinkSync(path);
  } catch (err) {
    throw new StartupError(`cannot remove stale control socket ${path}: ${(err as Error).message}`);
  }
  return dst;
}

/**
 * Listen on `path` with mode `mode`; resolves to the socket file's inode. The socket is
 * bound by the addon and handed to Node as an fd: a pipe server Node bound itself unlinks
 * its path when closed (libuv), which would remove whatever is at the path by then (a
 * recreated socket, another master's).
 */
export async function listenAt(server: Server, path: string, mode: number): Promise<number> {
  // Created with its mode (the umask set for the bind), never chmodded by path: a chmod()
  // after bind() would follow a symlink renamed over the new socket in between.
  const old = process.umask(~mode & 0o777);
  let fd: number;
  try {
    fd = native.listenUnix({ path, backlog: CONTROL_BACKLOG, nonBlock: true });
  } finally {
    process.umask(old);
  }
  try {
    const st = lstatSync(path);
    if (!st.isSocket() || st.uid !== (process.getuid?.() ?? 0)) throw new Error(`${path} was replaced by another file while it was bound`);
    const ino = st.ino;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(err);
      server.once('error', onError);
      // Node listens again on the fd it is given, with its own 511 unless told (for an fd,
      // only the positional backlog counts).
      server.listen({ fd }, CONTROL_BACKLOG, () => {
        server.off('error', onError);
        resolve();
      });
    });
    return ino;
  } catch (err) {
    try {
      unlinkSync(path);
    } catch {
      /* not there */
    }
    native.close(fd);
    throw err;
  }
}
