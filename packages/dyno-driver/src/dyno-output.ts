/**
 * The dynos' output, line by line with their names (`web.1 | ...`), through the driver.
 * The read ends of their pipes cross a reload (the new image reads them on), so that a
 * reload keeps every process of every type, with its output.
 */
import type { ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import * as native from 'native-reuseport';
import { pipeStreamLines } from '@einhyrningsins/master';

/** A dyno's output pipes across a reload. */
export interface OutputPipes {
  pid: number;
  name: string;
  /** The read ends (stdout, stderr) in the driver; null when closed. */
  fds: [number | null, number | null];
}

/** The fd of a pipe stream Node opened (libuv's handle). */
function fdOf(stream: NodeJS.ReadableStream | null): number | null {
  const fd = (stream as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

export class DynoOutput {
  private readonly pipes = new Map<number, OutputPipes>();

  /** A dyno just spawned: its output goes to ours, labelled with its name. */
  track(name: string, child: ChildProcess): void {
    const label = `${name} | `;
    if (child.stdout) pipeStreamLines(child.stdout, process.stdout, () => label);
    if (child.stderr) pipeStreamLines(child.stderr, process.stderr, () => label);
    const pid = child.pid;
    if (pid === undefined) return;
    this.pipes.set(pid, { pid, name, fds: [fdOf(child.stdout), fdOf(child.stderr)] });
    child.once('exit', () => this.pipes.delete(pid));
  }

  /** The pipes of the dynos still running, for the next image. */
  snapshot(live: (pid: number) => boolean): OutputPipes[] {
    return [...this.pipes.values()].filter((p) => live(p.pid));
  }

  /** The new image reads on from the old one's pipes. */
  adopt(all: readonly OutputPipes[]): void {
    for (const p of all) {
      const label = `${p.name} | `;
      p.fds.forEach((fd, i) => {
        if (fd === null) return;
        native.setCloexec(fd, true);
        const stream = new Socket({ fd, readable: true, writable: false });
        pipeStreamLines(stream, i === 0 ? process.stdout : process.stderr, () => label);
        stream.once('close', () => {
          const cur = this.pipes.get(p.pid);
          if (cur) cur.fds[i] = null;
          if (cur && cur.fds.every((x) => x === null)) this.pipes.delete(p.pid);
        });
      });
      this.pipes.set(p.pid, { pid: p.pid, name: p.name, fds: [...p.fds] });
    }
  }
}
