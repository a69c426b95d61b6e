/**
 * `-b unix:PATH[,mode=OCTAL][,n]`: a UNIX-domain listening socket bound by the master
 * and passed to the children like the TCP ones (EINHORN_FD_FAMILY_n=AF_UNIX).
 * A stale socket file (nobody accepts) is replaced, a live one or a non-socket
 * refused; the file is removed at exit.
 *
 * The mode is never applied by path: the socket file is created with it (the umask is
 * set for the bind), since a chmod() after bind() would follow whatever another user
 * renamed over the new socket in between (root chmodding a file of the attacker's
 * choosing). Its directory is held to the control socket's rule (see socket-dir.ts):
 * another user's, or world-writable without the sticky bit, is refused; group-writable
 * is warned about.
 */
import { lstatSync, statSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, resolve } from 'node:path';
import * as native from 'native-reuseport';
import { BindUsageError } from './bind-spec.js';
import { StartupError } from './errors.js';
import { checkSocketDir } from './socket-dir.js';

export interface UnixBindSpec {
  text: string;
  path: string;
  mode: number | null;
  nonBlock: boolean;
}

/** sun_path is 108 bytes on Linux, NUL included. */
const MAX_UNIX_PATH = 107;

export function isUnixBind(text: string): boolean {
  return text.startsWith('unix:');
}

export function parseUnixBind(text: string, cwd: string): UnixBindSpec {
  const [first = '', ...opts] = text.slice('unix:'.length).split(',');
  if (first === '') throw new BindUsageError(`-b ${text}: expected unix:PATH[,mode=OCTAL]`);
  const spec: UnixBindSpec = { text, path: resolve(cwd, first), mode: null, nonBlock: false };
  for (const raw of opts) {
    const opt = raw.trim();
    const m = /^mode=(0?[0-7]{3})$/.exec(opt);
    if (m) spec.mode = parseInt(m[1] as string, 8);
    else if (opt === 'n' || opt === 'o_nonblock') spec.nonBlock = true;
    else if (opt !== '') throw new BindUsageError(`-b ${text}: unknown unix socket option '${raw}' (known: mode=OCTAL, n)`);
  }
  if (Buffer.byteLength(spec.path) > MAX_UNIX_PATH) {
    throw new BindUsageError(`-b ${text}: the socket path is too long (${Buffer.byteLength(spec.path)} bytes, at most ${MAX_UNIX_PATH})`);
  }
  return spec;
}

/** Bind and listen; returns the fd and a function that closes it and removes the file (if still ours). */
export async function listenUnixBind(
  spec: UnixBindSpec,
  backlog: number,
  warn: (message: string) => void = (m) => process.stderr.write(`${m}\n`),
): Promise<{ fd: number; release: () => void }> {
  const dir = dirname(spec.path);
  let dst;
  try {
    dst = statSync(dir);
    if (!dst.isDirectory()) throw new Error('not a directory');
  } catch {
    throw new StartupError(`cannot bind -b ${spec.text}: directory ${dir} does not exist`);
  }
  const uid = process.getuid?.() ?? 0;
  if (dst.uid !== uid && dst.uid !== 0) {
    throw new StartupError(`cannot bind -b ${spec.text}: directory ${dir} belongs to another user (uid ${dst.uid}), who could replace the socket; refusing`);
  }
  try {
    checkSocketDir(dir, dst, warn, `-b ${spec.text}: socket directory`);
  } catch (err) {
    throw new StartupError(`cannot bind ${(err as Error).message}`);
  }
  let st;
  try {
    st = lstatSync(spec.path);
  } catch {
    st = null;
  }
  if (st) {
    if (!st.isSocket()) throw new StartupError(`cannot bind -b ${spec.text}: ${spec.path} exists and is not a socket`);
    const live = await new Promise<boolean>((res) => {
      const c = createConnection(spec.path);
      c.once('connect', () => {
        c.destroy();
        res(true);
      });
      c.once('error', () => {
        c.destroy();
        res(false);
      });
    });
    if (live) throw new StartupError(`cannot bind -b ${spec.text}: another process is listening on ${spec.path}`);
    unlinkSync(spec.path);
  }
  let fd: number;
  // bind() creates the file with 0777 & ~umask: with this umask it has exactly the mode asked
  // for, from its first instant, and nothing is ever chmodded by path (no race with a rename).
  const old = spec.mode === null ? null : process.umask(~spec.mode & 0o777);
  try {
    fd = native.listenUnix({ path: spec.path, backlog, nonBlock: spec.nonBlock });
  } catch (err) {
    throw new StartupError(`cannot bind -b ${spec.text}: ${(err as Error).message}`);
  } finally {
    if (old !== null) process.umask(old);
  }
  // Verify: the file at the path is a socket of ours with that mode (not something renamed there).
  let ino = -1;
  try {
    const st = lstatSync(spec.path);
    if (!st.isSocket() || st.uid !== uid) throw new Error(`${spec.path} was replaced by another file while it was bound`);
    if (spec.mode !== null && (st.mode & 0o777) !== spec.mode) {
      throw new Error(`${spec.path} has mode 0${(st.mode & 0o777).toString(8)}, not 0${spec.mode.toString(8)}`);
    }
    ino = st.ino;
  } catch (err) {
    native.close(fd);
    throw new StartupError(`cannot bind -b ${spec.text}: ${(err as Error).message}; refusing`);
  }
  return { fd, release: releaser(fd, spec.path, ino) };
}

/** Close `fd` and remove `path` if it is still the file we bound (same inode). */
export function releaser(fd: number, path: string, ino: number): () => void {
  return () => {
    try {
      native.close(fd);
    } finally {
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        /* already gone */
      }
    }
  };
}
