/**
 * A child's output pipes carried across a reload: the pieces that a Procfile dyno's
 * (dyno-output.ts) and a config program's (program-logs.ts) pipes share. The read ends'
 * fds travel to the new image, which reads on from them; the start of a line read but
 * not yet passed on travels as base64.
 */
import { Socket } from 'node:net';
import * as native from 'native-reuseport';
import type { LinePipe } from '@einhyrningsins/master';

/** The fd of a pipe stream Node opened (libuv's handle); null when it has none. */
export function pipeFd(stream: NodeJS.ReadableStream | null): number | null {
  const fd = (stream as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** A carried read end as a stream again (close-on-exec, as Node's own pipes are). */
export function readPipe(fd: number): Socket {
  native.setCloexec(fd, true);
  return new Socket({ fd, readable: true, writable: false });
}

/** What `lines` holds of an unfinished line, for the snapshot; null when nothing. */
export function encodePartial(lines: LinePipe | null): string | null {
  const b = lines?.partial();
  return b && b.length > 0 ? b.toString('base64') : null;
}

/** A carried unfinished line, to start a LinePipe with. */
export function decodePartial(carried: string | null | undefined): Buffer | undefined {
  return carried ? Buffer.from(carried, 'base64') : undefined;
}

/** Every fd still open among carried pipes (the exec must keep them). */
export function openFds(all: readonly { fds: readonly (number | null)[] }[]): number[] {
  return all.flatMap((p) => p.fds.filter((fd): fd is number => fd !== null));
}
