/**
 * A config's programs' output (stdout_logfile, stderr_logfile, redirect_stderr): one
 * non-blocking LogWriter per distinct file (packages/master/src/logfile), shared by
 * every stream that names it, whole lines only; AUTO is the driver's own output with
 * the process name in front (as a Procfile's types); NONE is discarded. `reopen`
 * (and SIGUSR2, as supervisord's) reopens every file after an outside rotation;
 * `tail NAME [stdout|stderr]` reads a file's end.
 *
 * Across a reload every process's pipes are carried (their read ends' fds): the streams
 * are paused first (the kernel holds what the processes write meanwhile), what Node
 * had read is passed on, partial lines go to their files, the files' queues are written
 * (`prepareReload`, then `snapshot`), and the new image reads on (`adopt`). No line is
 * lost, and no process meets a closed pipe.
 */
import { pipeStreamLines, type LinePipe, type Logger, type WorkerProcess } from '@einhyrningsins/master';
// Not through the package's index: the per-program log files are read only with --config.
import { LineSource, LogWriter, follow, tailBytes, type Follower } from '@einhyrningsins/master/logfile';
import type { LogConfig, ProcessConfig, ProgramConfig } from './config/index.js';
import { formatGo, localParts } from './minisv/go-time.js';
import { decodePartial, encodePartial, openFds, pipeFd, readPipe } from './carried-pipes.js';

/** minisv's logdate: every line with the time in front (`TIME: line`). */
export function datedLines(layout: string, writer: { write(b: Buffer): unknown }, now: () => Date = () => new Date()): { write(b: Buffer): void } {
  return {
    write(b: Buffer) {
      const stamp = `${formatGo(layout, localParts(now()))}: `;
      const text = b.toString('utf8');
      const lines = text.split('\n');
      const last = lines.pop() as string;
      writer.write(Buffer.from(lines.map((l) => stamp + l + '\n').join('') + (last ? stamp + last : '')));
    },
  };
}

/** A process's output pipes across a reload. */
export interface ProcessPipes {
  pid: number;
  program: string;
  /** The process name (process_name expanded). */
  process: string;
  /** The read ends (stdout, stderr) in the driver; null when closed. */
  fds: [number | null, number | null];
  /** AUTO streams: the start of a line read but not yet written (base64), carried to the next image (absent from older images). */
  partial?: [string | null, string | null];
}

interface Tracked {
  pipes: ProcessPipes;
  streams: NodeJS.ReadableStream[];
  lines: LineSource[];
  /** The AUTO streams (stdout, stderr), passed on line by line to the driver's own. */
  auto: [LinePipe | null, LinePipe | null];
}

/** How long an exit waits for the log files to take what is queued. */
export const FLUSH_AT_EXIT_MS = 5000;

export class ProgramLogs {
  private readonly writers = new Map<string, LogWriter>();
  private readonly tracked = new Map<number, Tracked>();
  /** A reload is being prepared: new streams start paused too. */
  private paused = false;

  constructor(
    private readonly log: Logger,
    /** How much of the programs' output was read (the memory keeper compacts after each MiB). */
    private readonly onBytes: (bytes: number) => void = () => undefined,
  ) {}

  private writer(c: LogConfig & { target: { kind: 'file'; path: string } }): LogWriter {
    let w = this.writers.get(c.target.path);
    if (!w) {
      const base = c.target.path;
      const layout = c.dateSuffix;
      w = new LogWriter({
        path: base,
        // minisv's logsuffixdate: NAME.log.<date>, named again at each reopen (rotate, logreopen).
        ...(layout ? { pathAt: () => `${base}.${formatGo(layout, localParts(new Date()))}` } : {}),
        maxBytes: c.maxBytes,
        backups: c.backups,
        onDrop: ({ path, reason }) => this.log.warn(`log file ${path}: ${reason}`),
      });
      this.writers.set(c.target.path, w);
    }
    return w;
  }

  /** Where a just-spawned process's streams go. */
  route(x: ProcessConfig, child: WorkerProcess): void {
    this.attach(x, child.pid, child.stdout, child.stderr);
  }

  private attach(x: ProcessConfig, pid: number, out: NodeJS.ReadableStream | null, err: NodeJS.ReadableStream | null, carried?: ProcessPipes['partial']): void {
    const label = `${x.name} | `;
    const t: Tracked = { pipes: { pid, program: x.program, process: x.name, fds: [pipeFd(out), pipeFd(err)] }, streams: [], lines: [], auto: [null, null] };
    const one = (i: 0 | 1, stream: NodeJS.ReadableStream | null, c: LogConfig, dest: NodeJS.WritableStream) => {
      if (!stream) return;
      t.streams.push(stream);
      stream.on('data', (d: Buffer | string) => this.onBytes(d.length));
      stream.once('close', () => {
        t.pipes.fds[i] = null;
        if (t.pipes.fds.every((fd) => fd === null)) this.tracked.delete(pid);
      });
      if (c.target.kind === 'none') stream.on('data', () => undefined);
      else if (c.target.kind === 'auto') {
        t.auto[i] = pipeStreamLines(stream, dest, () => label, decodePartial(carried?.[i]));
      }
      else {
        const w = this.writer(c as LogConfig & { target: { kind: 'file'; path: string } });
        const lines = new LineSource(c.linePrefix ? datedLines(c.linePrefix, w) : w);
        t.lines.push(lines);
        stream.on('data', (d: Buffer) => lines.write(d));
        stream.once('end', () => lines.end());
      }
      if (this.paused) stream.pause();
    };
    one(0, out, x.stdout, process.stdout);
    one(1, err, x.redirectStderr ? x.stdout : x.stderr, x.redirectStderr ? process.stdout : process.stderr);
    this.tracked.set(pid, t);
  }

  /**
   * Before a reload: stop reading every process's pipes (what they write waits in the
   * kernel), then let the log files take what is queued. Undone by `resume`.
   */
  async prepareReload(): Promise<void> {
    this.paused = true;
    for (const t of this.tracked.values()) for (const s of t.streams) s.pause();
    await Promise.all([...this.writers.values()].map((w) => w.flush()));
    for (const w of this.writers.values()) w.hold();
  }

  /** The reload did not happen: read on. */
  resume(): void {
    this.paused = false;
    for (const w of this.writers.values()) w.release();
    for (const t of this.tracked.values()) for (const s of t.streams) s.resume();
  }

  /**
   * The pipes for the next image, synchronously just before the exec: what Node had read
   * passed on, partial lines written to their files, every file's queue written.
   */
  snapshot(live: (pid: number) => boolean): ProcessPipes[] {
    for (const t of this.tracked.values()) {
      for (const s of t.streams) while ((s as NodeJS.ReadableStream & { read(): unknown }).read() !== null);
      for (const l of t.lines) l.flushPartial();
    }
    for (const w of this.writers.values()) w.drainSync();
    return [...this.tracked.values()]
      .filter((t) => live(t.pipes.pid) || t.pipes.fds.some((fd) => fd !== null))
      .map((t) => ({ ...t.pipes, fds: [...t.pipes.fds], partial: [encodePartial(t.auto[0]), encodePartial(t.auto[1])] }));
  }

  /** The new image reads on from the old one's pipes (each process found by its program and name). */
  adopt(all: readonly ProcessPipes[], programs: readonly ProgramConfig[]): void {
    for (const p of all) {
      const x = programs.find((q) => q.name === p.program)?.processes.find((y) => y.name === p.process);
      const streams = p.fds.map((fd) => (fd === null ? null : readPipe(fd)));
      if (x) this.attach(x, p.pid, streams[0] ?? null, streams[1] ?? null, p.partial);
      else for (const s of streams) s?.resume();
    }
  }

  /** The fds of every pipe carried (the exec must not close them). */
  static fds(all: readonly ProcessPipes[]): number[] {
    return openFds(all);
  }

  /** Reopen every log file (after it was renamed by logrotate). */
  async reopen(): Promise<string> {
    const all = [...this.writers.values()];
    await Promise.all(all.map((w) => w.reopen()));
    return all.length ? `Reopened ${all.length} log file${all.length === 1 ? '' : 's'}` : 'No log files to reopen';
  }

  /** Reopen the files of these processes (minisv's `rotate` of one task); how many there were. */
  async reopenOf(procs: readonly ProcessConfig[]): Promise<number> {
    const paths = new Set(procs.flatMap((x) => [x.stdout, x.stderr]).flatMap((c) => (c.target.kind === 'file' ? [c.target.path] : [])));
    const ws = [...paths].flatMap((p) => this.writers.get(p) ?? []);
    await Promise.all(ws.map((w) => w.reopen()));
    return paths.size;
  }

  /** Everything queued written, files closed (at exit), within `ms`. */
  async close(ms = FLUSH_AT_EXIT_MS): Promise<void> {
    for (const f of this.followers) void f.stop();
    this.followers.clear();
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (t = setTimeout(r, ms)));
    await Promise.race([Promise.all([...this.writers.values()].map((w) => w.close())), timeout]);
    if (t) clearTimeout(t);
  }

  private readonly followers = new Set<Follower>();

  /** `tail -f`: what is appended to the file from `offset` on, until `gone()` (the client left) or the driver exits. */
  follow(path: string, offset: number, onData: (text: string) => void, gone: () => boolean): void {
    const f = follow(path, offset, (d) => onData(d.toString('utf8')), { onError: (err) => this.log.warn(`tail -f ${path}: ${err.message}`) });
    this.followers.add(f);
    const check = setInterval(() => {
      if (!gone()) return;
      clearInterval(check);
      this.followers.delete(f);
      void f.stop();
    }, 500);
    check.unref();
  }

  /** `tail NAME [stdout|stderr]`: the end of the process's log file (and where it ends, for -f). */
  async tail(programs: readonly ProgramConfig[], name: string, stream: string): Promise<{ text: string; path: string; offset: number } | { error: string }> {
    if (stream !== 'stdout' && stream !== 'stderr') return { error: `tail: expected stdout or stderr, got '${stream}'` };
    const x = programs.flatMap((p) => p.processes).find((p) => p.name === name || `${p.group}:${p.name}` === name);
    if (!x) return { error: `No such process: ${name}` };
    const c = stream === 'stderr' && x.redirectStderr ? null : stream === 'stdout' ? x.stdout : x.stderr;
    if (!c) return { error: `${name}: stderr is redirected to stdout (redirect_stderr=true); tail ${name} stdout` };
    if (c.target.kind !== 'file') return { error: `${name}: its ${stream} has no log file (${c.target.kind === 'auto' ? 'AUTO: the driver\'s own output' : 'NONE'})` };
    const w = this.writers.get(c.target.path);
    await w?.flush();
    // A date-suffixed file (minisv's logsuffixdate): the one written now.
    const path = w?.path ?? c.target.path;
    try {
      const t = await tailBytes(path);
      return { text: t.data.toString('utf8'), path, offset: t.offset };
    } catch (err) {
      return { error: `${name}: cannot read ${path}: ${(err as Error).message}` };
    }
  }
}
