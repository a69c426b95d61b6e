/** The process's own files: the lockfile (flock, held for life) and the pidfile. */
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as native from 'native-reuseport';
import type { Cleanup } from '../cleanup.js';
import { StartupError } from '../errors.js';

const { O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fsConstants;

export interface HeldLock {
  fd: number;
  path: string;
}

/** Take the lockfile or fail in one line; it is removed at exit. */
export function takeLock(path: string, cleanup: Cleanup): HeldLock {
  let fd: number;
  try {
    // Never through a symlink (a dangling one would make us create the file it names), never
    // blocking on a FIFO; an existing regular file left by an earlier master is reused.
    fd = openSync(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP') throw new StartupError(`lockfile ${path} is a symbolic link; refusing to follow it`);
    throw new StartupError(`cannot open lockfile ${path}: ${e.message}`);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new StartupError(`lockfile ${path} is not a regular file; refusing`);
  }
  let got: boolean;
  try {
    got = native.flock(fd);
  } catch (err) {
    closeSync(fd);
    throw new StartupError(`cannot lock ${path}: ${(err as Error).message}`);
  }
  if (!got) {
    closeSync(fd);
    throw new StartupError(`lockfile ${path} is held by another master`);
  }
  return holdLock(fd, path, cleanup);
}

/** A lock already held (taken over across a reload): released at exit. */
export function holdLock(fd: number, path: string, cleanup: Cleanup): HeldLock {
  cleanup.add(() => {
    try {
      unlinkSync(path);
    } finally {
      closeSync(fd);
    }
  });
  return { fd, path };
}

/** Write our pid to `path` atomically, or fail in one line; removed at exit if still ours. */
export function writePidfile(path: string, cleanup: Cleanup): void {
  // A fresh file under an unpredictable name, created exclusively: a symlink or file planted
  // at the temporary name is never followed or written (rename then replaces `path` itself,
  // never what a symlink there points to).
  // (globalThis.crypto: node:crypto is loaded only now, with -e; it costs ~1.5 MB of RSS.)
  const random = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(6))).toString('hex');
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${random}.tmp`);
  try {
    const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* nothing written */
    }
    throw new StartupError(`cannot write pidfile ${path}: ${(err as Error).message}`);
  }
  removePidfileAtExit(path, cleanup);
}

export function removePidfileAtExit(path: string, cleanup: Cleanup): void {
  cleanup.add(() => {
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
  });
}
