/**
 * A config's programs' output (stdout_logfile, stderr_logfile, redirect_stderr): one
 * non-blocking LogWriter per distinct file (packages/master/src/logfile), shared by
 * every stream that names it, whole lines only; AUTO is the driver's own output with
 * the process name in front (as a Procfile's types); NONE is discarded. `reopen`
 * (and SIGUSR2, as supervisord's) reopens every file after an outside rotation;
 * `tail NAME [stdout|stderr]` reads a file's end.
 */
import type { ChildProcess } from 'node:child_process';
import { pipeStreamLines, type Logger } from '@einhyrningsins/master';
// Not through the package's index: the per-program log files are read only with --config.
import { LineSource, LogWriter, follow, tailBytes, type Follower } from '@einhyrningsins/master/logfile';
import type { LogConfig, ProcessConfig, ProgramConfig } from './config/index.js';
import { formatGo, localParts } from './minisv/go-time.js';

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

/** How long an exit waits for the log files to take what is queued. */
export const FLUSH_AT_EXIT_MS = 5000;

export class ProgramLogs {
  private readonly writers = new Map<string, LogWriter>();

  constructor(private readonly log: Logger) {}

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

  /** Whether any program writes a file (a reload cannot carry them yet). */
  get hasFiles(): boolean {
    return this.writers.size > 0;
  }

  /** Where a just-spawned process's streams go. */
  route(x: ProcessConfig, child: ChildProcess): void {
    const label = `${x.name} | `;
    const one = (stream: NodeJS.ReadableStream | null, c: LogConfig, dest: NodeJS.WritableStream) => {
      if (!stream) return;
      if (c.target.kind === 'none') return void stream.resume();
      if (c.target.kind === 'auto') return pipeStreamLines(stream, dest, () => label);
      const w = this.writer(c as LogConfig & { target: { kind: 'file'; path: string } });
      const lines = new LineSource(c.linePrefix ? datedLines(c.linePrefix, w) : w);
      stream.on('data', (d: Buffer) => lines.write(d));
      stream.once('end', () => lines.end());
    };
    one(child.stdout, x.stdout, process.stdout);
    one(child.stderr, x.redirectStderr ? x.stdout : x.stderr, x.redirectStderr ? process.stdout : process.stderr);
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
