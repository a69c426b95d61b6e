/**
 * `-b unix:PATH[,mode=OCTAL][,n]`: a UNIX-domain listening socket bound by the master
 * and passed to the children like the TCP ones (EINHORN_FD_FAMILY_n=AF_UNIX).
 * A stale socket file (nobody accepts) is replaced, a live one or a non-socket
 * refused; the file is removed at exit.
 */
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, resolve } from 'node:path';
import * as native from 'native-reuseport';
import { BindUsageError } from './bind-spec.js';
import { StartupError } from './errors.js';

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
export async function listenUnixBind(spec: UnixBindSpec, backlog: number): Promise<{ fd: number; release: () => void }> {
  const dir = dirname(spec.path);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new StartupError(`cannot bind -b ${spec.text}: directory ${dir} does not exist`);
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
  try {
    fd = native.listenUnix({ path: spec.path, backlog, nonBlock: spec.nonBlock });
  } catch (err) {
    throw new StartupError(`cannot bind -b ${spec.text}: ${(err as Error).message}`);
  }
  const ino = lstatSync(spec.path).ino;
  if (spec.mode !== null) {
    try {
      chmodSync(spec.path, spec.mode);
    } catch (err) {
      native.close(fd);
      unlinkSync(spec.path);
      throw new StartupError(`cannot set the mode of ${spec.path}: ${(err as Error).message}`);
    }
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
