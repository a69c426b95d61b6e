import type { LogLevel } from '@einhyrningsins/core';
import { isoTime } from './clock.js';
import { probe, probeStart } from './loop-probe.js';

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * The master's log: one line per message on stderr,
 * `2026-11-23T21:28:45.123Z [MASTER 1234] WARN: message (pid 5678, index 0)`.
 * verbosity -1 (-vv) adds trace lines, 0 (-v) shows debug, 1 (default) info, 2 warnings,
 * 3 errors only; `always` lines (the start-up line) show at every verbosity.
 */
export class Logger {
  verbosity: number;
  /** Also receives every message (whatever the verbosity): syslog takes warnings and errors. */
  sink: ((level: LogLevel, message: string) => void) | null = null;
  private readonly tag: string;
  private readonly write: (line: string) => void;

  constructor(
    verbosity: number,
    pid: number,
    write: (line: string) => void = (l) => process.stderr.write(l),
    role = 'MASTER',
  ) {
    this.verbosity = verbosity;
    this.tag = `[${role} ${pid}]`;
    this.write = write;
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.verbosity;
  }

  log(level: LogLevel, message: string, ctx?: { pid?: number; slot?: number }): void {
    if (!this.enabled(level) && !this.sink) return;
    let suffix = '';
    if (ctx && (ctx.pid !== undefined || ctx.slot !== undefined)) {
      const parts = [];
      if (ctx.pid !== undefined && !message.includes(String(ctx.pid))) parts.push(`pid ${ctx.pid}`);
      if (ctx.slot !== undefined && !message.includes('index:')) parts.push(`index ${ctx.slot}`);
      if (parts.length) suffix = ` (${parts.join(', ')})`;
    }
    this.sink?.(level, message + suffix);
    if (!this.enabled(level)) return;
    const t0 = probeStart();
    this.write(`${isoTime()} ${this.tag} ${level.toUpperCase()}: ${message}${suffix}\n`);
    probe?.task('log', t0);
  }

  /** -vv detail (every request and reply line): stderr only, never syslog. */
  get tracing(): boolean {
    return this.verbosity < 0;
  }

  trace(m: string): void {
    if (this.verbosity < 0) this.write(`${isoTime()} ${this.tag} TRACE: ${m}\n`);
  }

  /** A line shown whatever the verbosity (-q keeps it): the master's start-up line. */
  always(m: string): void {
    this.sink?.('info', m);
    this.write(`${isoTime()} ${this.tag} INFO: ${m}\n`);
  }

  debug(m: string): void {
    this.log('debug', m);
  }
  info(m: string): void {
    this.log('info', m);
  }
  warn(m: string): void {
    this.log('warn', m);
  }
  error(m: string): void {
    this.log('error', m);
  }
}
