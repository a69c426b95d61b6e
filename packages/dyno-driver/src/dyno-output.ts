/**
 * The dynos' output, line by line with their names (`web.1 | ...`), through the driver.
 * The read ends of their pipes cross a reload (the new image reads them on), so that a
 * reload keeps every process of every type, with its output; so does the start of a line
 * the old image had read but not yet written (a process that wrote without a newline):
 * the new image writes it in front of the rest of the line, so the line comes out whole,
 * once, with its name.
 */
import { pipeStreamLines, type LinePipe, type WorkerProcess } from '@einhyrningsins/master';
import { decodePartial, encodePartial, pipeFd, readPipe } from './carried-pipes.js';

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

export class DynoOutput {
  private readonly pipes = new Map<number, Tracked>();

  /** `onBytes`: how much of the dynos' output was read (the memory keeper compacts after each MiB). */
  constructor(private readonly onBytes: (bytes: number) => void = () => undefined) {}

  /** Counts what a pipe delivers (another 'data' listener beside the line splitter's). */
  private meter(stream: NodeJS.ReadableStream | null): void {
    stream?.on('data', (d: Buffer | string) => this.onBytes(d.length));
  }

  /** A dyno just spawned: its output goes to ours, labelled with its name. */
  track(name: string, child: WorkerProcess): void {
    const label = `${name} | `;
    const out = child.stdout ? pipeStreamLines(child.stdout, process.stdout, () => label) : null;
    const err = child.stderr ? pipeStreamLines(child.stderr, process.stderr, () => label) : null;
    this.meter(child.stdout);
    this.meter(child.stderr);
    const pid = child.pid;
    this.pipes.set(pid, { pipes: { pid, name, fds: [pipeFd(child.stdout), pipeFd(child.stderr)] }, lines: [out, err] });
    child.once('exit', () => this.pipes.delete(pid));
  }

  /** The pipes of the dynos still running, with what each holds of an unfinished line, for the next image. */
  snapshot(live: (pid: number) => boolean): OutputPipes[] {
    return [...this.pipes.values()]
      .filter((t) => live(t.pipes.pid))
      .map((t) => ({ ...t.pipes, fds: [...t.pipes.fds], partial: [encodePartial(t.lines[0]), encodePartial(t.lines[1])] }));
  }

  /** The new image reads on from the old one's pipes. */
  adopt(all: readonly OutputPipes[]): void {
    for (const p of all) {
      const label = `${p.name} | `;
      const t: Tracked = { pipes: { pid: p.pid, name: p.name, fds: [...p.fds] }, lines: [null, null] };
      this.pipes.set(p.pid, t);
      p.fds.forEach((fd, i) => {
        if (fd === null) return;
        const stream = readPipe(fd);
        t.lines[i] = pipeStreamLines(stream, i === 0 ? process.stdout : process.stderr, () => label, decodePartial(p.partial?.[i]));
        this.meter(stream);
        stream.once('close', () => {
          const cur = this.pipes.get(p.pid);
          if (cur) cur.pipes.fds[i] = null;
          if (cur && cur.pipes.fds.every((x) => x === null)) this.pipes.delete(p.pid);
        });
      });
    }
  }
}
