/**
 * The dynos' output, line by line with their names (`web.1 | ...`), through the driver.
 * The read ends of their pipes cross a reload (the new image reads them on), so that a
 * reload keeps every process of every type, with its output; so does the start of a line
 * the old image had read but not yet written (a process that wrote without a newline):
 * the new image writes it in front of the rest of the line, so the line comes out whole,
 * once, with its name.
 */
import type { ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import * as native from 'native-reuseport';
import { pipeStreamLines, type LinePipe } from '@einhyrningsins/master';

/** A dyno's output pipes across a reload. */
export interface OutputPipes {
  pid: number;
  name: string;
  /** The read ends (stdout, stderr) in the driver; null when closed. */
  fds: [number | null, number | null];
  /** The start of a line read from each but not written yet (base64), null when none (absent from older images). */
  partial?: [string | null, string | null];
}

interface Tracked {
  pipes: OutputPipes;
  lines: [LinePipe | null, LinePipe | null];
}

/** The fd of a pipe stream Node opened (libuv's handle). */
function fdOf(stream: NodeJS.ReadableStream | null): number | null {
  const fd = (stream as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

export class DynoOutput {
  private readonly pipes = new Map<number, Tracked>();

  /** A dyno just spawned: its output goes to ours, labelled with its name. */
  track(name: string, child: ChildProcess): void {
    const label = `${name} | `;
    const out = child.stdout ? pipeStreamLines(child.stdout, process.stdout, () => label) : null;
    const err = child.stderr ? pipeStreamLines(child.stderr, process.stderr, () => label) : null;
    const pid = child.pid;
    if (pid === undefined) return;
    this.pipes.set(pid, { pipes: { pid, name, fds: [fdOf(child.stdout), fdOf(child.stderr)] }, lines: [out, err] });
    child.once('exit', () => this.pipes.delete(pid));
  }

  /** The pipes of the dynos still running, with what each holds of an unfinished line, for the next image. */
  snapshot(live: (pid: number) => boolean): OutputPipes[] {
    const partial = (l: LinePipe | null): string | null => {
      const b = l?.partial();
      return b && b.length > 0 ? b.toString('base64') : null;
    };
    return [...this.pipes.values()]
      .filter((t) => live(t.pipes.pid))
      .map((t) => ({ ...t.pipes, fds: [...t.pipes.fds], partial: [partial(t.lines[0]), partial(t.lines[1])] }));
  }

  /** The new image reads on from the old one's pipes. */
  adopt(all: readonly OutputPipes[]): void {
    for (const p of all) {
      const label = `${p.name} | `;
      const t: Tracked = { pipes: { pid: p.pid, name: p.name, fds: [...p.fds] }, lines: [null, null] };
      this.pipes.set(p.pid, t);
      p.fds.forEach((fd, i) => {
        if (fd === null) return;
        native.setCloexec(fd, true);
        const stream = new Socket({ fd, readable: true, writable: false });
        const carried = p.partial?.[i];
        t.lines[i] = pipeStreamLines(stream, i === 0 ? process.stdout : process.stderr, () => label, carried ? Buffer.from(carried, 'base64') : undefined);
        stream.once('close', () => {
          const cur = this.pipes.get(p.pid);
          if (cur) cur.pipes.fds[i] = null;
          if (cur && cur.pipes.fds.every((x) => x === null)) this.pipes.delete(p.pid);
        });
      });
    }
  }
}
