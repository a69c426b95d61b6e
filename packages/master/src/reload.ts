/**
 * The master's reload (einhorn's master re-exec): what crosses the execve and how.
 *
 * The old image writes a JSON snapshot into a memfd and clears FD_CLOEXEC on
 * everything the new image takes over (listening sockets, the control socket and
 * its connections, the lockfile, the memfd), then execve()s
 * `<reexec words> --with-state-fd N <its own argv>`: same pid, so the workers stay
 * its children and the pidfile stays true. The new image reads the snapshot
 * instead of binding, adopts the fds by number and the workers by pid.
 */
import { spawn } from 'node:child_process';
import { fstatSync, readSync, writeSync, closeSync } from 'node:fs';
import * as native from 'native-reuseport';
import { monotonicMs } from './clock.js';
import type { ReloadState } from './reload-state.js';


/** The option that carries the snapshot's fd; always the first word of the new image's argv. */
export const STATE_FD_OPTION = '--with-state-fd';

export type { BoundSocket, ReloadState } from './reload-state.js';

/**
 * How long the exec took, to add to every age: on the monotonic clock (the same clock in
 * both images: same process, same boot), never negative. A snapshot of an older image
 * without it falls back to the wall clock.
 */
export function execGapMs(state: Pick<ReloadState, 'wall' | 'monotonic'>, nowMono = monotonicMs(), nowWall = Date.now()): number {
  const gap = typeof state.monotonic === 'number' && Number.isFinite(state.monotonic) ? nowMono - state.monotonic : nowWall - state.wall;
  return Math.max(0, gap);
}

/** Write a snapshot (any JSON with a `format`) into a memfd that the new image inherits. */
export function writeSnapshot(state: { format: unknown }): number {
  const fd = native.memfdCreate('einhyrningsins-state');
  try {
    const data = Buffer.from(JSON.stringify(state));
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off, off);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Read (and close) the snapshot fd of the image before; `check` says whether it is one this image can carry on from. */
export function readSnapshot<T>(fd: number, check: (value: unknown) => T): T {
  let text: string;
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    text = buf.subarray(0, off).toString('utf8');
  } finally {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message})`);
  }
  return check(value);
}

/** The master's snapshot (format 1); reload-state-check.ts reads it (loaded only by the image a reload starts). */
export const writeState = (state: ReloadState): number => writeSnapshot(state);

/**
 * einhorn's --upgrade-check: run the new code with the same options and
 * `--upgrade-check`, which loads everything and exits 0 without touching a socket.
 * Resolves with null when it passed, else with why it did not (one line).
 */
export async function upgradeCheck(
  path: string,
  argv0: readonly string[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
): Promise<string | null> {
  return await new Promise((resolve) => {
    const child = spawn(path, [...argv0.slice(1), '--upgrade-check', ...argv], {
      argv0: argv0[0],
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve(`cannot run ${argv0.join(' ')}: ${err.message}`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(null);
      const last = out.trim().split('\n').filter(Boolean).at(-1) ?? '';
      const how = signal === 'SIGKILL' ? `did not finish within ${timeoutMs / 1000} s` : signal ? `was killed by ${signal}` : `exited ${code}`;
      resolve(`${argv0.join(' ')} --upgrade-check ${how}${last ? `: ${last}` : ''}`);
    });
  });
}
