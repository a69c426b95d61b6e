/**
 * The log-file phase of `npm run bench`: the per-program LogWriter
 * (packages/master/src/logfile/) against the plainest baseline, one
 * synchronous write(2) per line, in the same run; and N lines against 4N lines
 * through the writer, so that a cost per line that grows with the queue
 * (an O(n) dequeue made the writer 33x slower than the baseline, and stalled
 * the loop for a second) shows as a ratio, whatever the machine's load.
 * Targets: writer time <= baseline time (median of interleaved pairs), and
 * time(4N) / time(N) <= 6 (linear is 4).
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

interface Writer {
  write(data: Buffer): boolean;
  close(): Promise<void>;
  stats: { droppedLines: number };
}
interface LogModule {
  LogWriter: new (o: { path: string; maxBytes: number; backups: number; maxQueueBytes?: number }) => Writer;
  LineSource: new (w: Writer) => { write(b: Buffer): void; end(): void };
}

export interface LogfileCheck {
  metric: string;
  ok: boolean;
}

const LINE = Buffer.from(`2026-12-06T03:50:00Z GET /api/v1/items?page=2 200 12ms ${'x'.repeat(40)}\n`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

async function throughWriter(mod: LogModule, path: string, lines: number): Promise<number> {
  const w = new mod.LogWriter({ path, maxBytes: 5 * 1024 * 1024, backups: 3, maxQueueBytes: 256 * 1024 * 1024 });
  const src = new mod.LineSource(w);
  const t = performance.now();
  for (let i = 0; i < lines; i++) {
    src.write(LINE);
    if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
  }
  src.end();
  await w.close();
  if (w.stats.droppedLines > 0) throw new Error(`the writer dropped ${w.stats.droppedLines} lines`);
  return performance.now() - t;
}

function syncPerLine(path: string, lines: number): number {
  const t = performance.now();
  const fd = openSync(path, 'a');
  for (let i = 0; i < lines; i++) writeSync(fd, LINE);
  closeSync(fd);
  return performance.now() - t;
}

export async function logfileBench(rounds = 5, lines = 100_000): Promise<{ text: string; checks: LogfileCheck[] }> {
  const url = new URL('../../../packages/master/dist/src/logfile/index.js', import.meta.url).href;
  const mod = (await import(url)) as LogModule;
  const dir = mkdtempSync(join(tmpdir(), 'einh-bench-log-'));
  // also when the bench's watchdog or a signal ends the process mid-phase
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', cleanup);
  try {
    const base: number[] = [];
    const ours: number[] = [];
    const big: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const rd = join(dir, `round-${r}`); // removed after each round: the disk use of one round at most
      mkdirSync(rd);
      base.push(syncPerLine(join(rd, 'base'), lines));
      ours.push(await throughWriter(mod, join(rd, 'ours.log'), lines));
      big.push(await throughWriter(mod, join(rd, 'big.log'), 4 * lines));
      rmSync(rd, { recursive: true, force: true });
    }
    const pair = median(ours.map((o, i) => o / (base[i] as number)));
    const scale = median(big.map((b, i) => b / (ours[i] as number)));
    const checks = [
      { metric: 'log writer time / one write(2) per line <= 1', ok: pair <= 1 },
      { metric: 'log writer time(4N) / time(N) <= 6', ok: scale <= 6 },
    ];
    const mb = ((lines * LINE.length) / 1048576).toFixed(1);
    const text = [
      `Log files (${lines} lines, ${mb} MiB, rotation at 5 MiB, ${rounds} rounds, same run):`,
      `  one write(2) per line    median ${median(base).toFixed(0)} ms`,
      `  LogWriter + LineSource   median ${median(ours).toFixed(0)} ms   ratio ${pair.toFixed(2)} (target <= 1) ${checks[0]!.ok ? 'ok' : 'MISSED'}`,
      `  4x the lines             median ${median(big).toFixed(0)} ms   ratio ${scale.toFixed(2)} (target <= 6) ${checks[1]!.ok ? 'ok' : 'MISSED'}`,
    ].join('\n');
    return { text, checks };
  } finally {
    process.removeListener('exit', cleanup);
    cleanup();
  }
}
