/** /proc readings for the tests, the bench and the soak: liveness, children, CPU ticks, memory, fds. Linux only. */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Fields of /proc/<pid>/stat after the command name; [0] is field 3 (state). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Is `pid` a live process? Zombies count as exited. */
export function alive(pid: number): boolean {
  const f = statFields(pid);
  return f !== null && f[0] !== 'Z' && f[0] !== 'X';
}

/** Live direct children of `pid` (a /proc scan). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (f && Number(f[1]) === pid && f[0] !== 'Z') out.push(Number(d));
  }
  return out;
}

/** Direct children of `pid` that have exited and not been reaped (zombies). */
export function zombiesOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (f && Number(f[1]) === pid && f[0] === 'Z') out.push(Number(d));
  }
  return out;
}

/** How many fds `pid` has open. */
export function openFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Start time in clock ticks since boot (field 22): with the pid, a process's identity. */
export function startTime(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[19]) : null;
}

/** utime + stime in clock ticks (fields 14 and 15), or null when gone. */
export function cpuTicks(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : null;
}

/** utime + stime + cutime + cstime: the process and its reaped children (fields 14-17). */
export function treeTicks(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) : null;
}

/** cutime + cstime: CPU of the children `pid` has waited for (fields 16-17). */
export function reapedChildrenTicks(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[13]) + Number(f[14]) : null;
}

/** A VmRSS / VmHWM style line of /proc/<pid>/status, in kB. */
export function statusKb(pid: number, key: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

let clk: number | null = null;
/** Clock ticks per second (`getconf CLK_TCK`, 100 on Linux). */
export function clockTicks(): number {
  if (clk === null) {
    try {
      clk = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clk = 100;
    }
  }
  return clk;
}

/** A process we started (or a worker of a master we started), identified by pid and start time. */
export class Tracked {
  readonly start: number | null;
  constructor(readonly pid: number) {
    this.start = startTime(pid);
  }
  /** Still the same live process (not a reused pid)? */
  get alive(): boolean {
    return alive(this.pid) && startTime(this.pid) === this.start;
  }
  kill(signal: NodeJS.Signals): boolean {
    if (!this.alive) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/** Busy clock ticks of the whole machine (every CPU): /proc/stat minus idle and iowait. */
export function machineBusyTicks(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  } catch {
    return 0;
  }
}

/**
 * How much of the machine something other than this process and what `ours`
 * counts used between two readings: the noise from elsewhere on a shared machine.
 * `ours` returns clock ticks of the processes under test (monotonic over the interval:
 * count exited children through their parent's cutime/cstime).
 */
export class ForeignLoad {
  private readonly t0 = performance.now();
  private readonly busy0 = machineBusyTicks();
  private readonly ours0: number;
  constructor(private readonly oursTicks: () => number) {
    this.ours0 = this.ours();
  }
  private ours(): number {
    return (cpuTicks(process.pid) ?? 0) + this.oursTicks();
  }
  /** Share (0..1) of all CPUs' time used by other processes since construction. */
  share(): number {
    const elapsedTicks = ((performance.now() - this.t0) / 1000) * clockTicks() * availableParallelism();
    const foreign = machineBusyTicks() - this.busy0 - (this.ours() - this.ours0);
    return elapsedTicks > 0 ? Math.max(0, foreign / elapsedTicks) : 0;
  }
}

/** A process's main thread: [ns on a CPU, ns runnable but waiting for one] so far (/proc/PID/task/PID/schedstat), or null. */
export function schedstat(pid: number): [number, number] | null {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return Number.isFinite(run) && Number.isFinite(wait) ? [run as number, wait as number] : null;
  } catch {
    return null;
  }
}

/** What an RSS breakdown of a process (rssBreakdownIn) sorts its mappings into, in this order. */
export const RSS_PARTS = ['node binary', 'other files', 'V8 heap pages', 'V8 code pages', 'malloc main arena', 'malloc other arenas', 'stacks', 'other anonymous'] as const;
export type RssPart = (typeof RSS_PARTS)[number];

/**
 * A /proc/PID/smaps text's resident kilobytes by kind of mapping: the node binary's pages
 * (file-backed, shared with every Node process), other files (libraries, the addon), V8's
 * heap (anonymous rw-p mappings in whole 256 KiB pages) and code (anonymous rwx), glibc's
 * main arena ([heap]) and its other arenas (mallocArenasIn), stacks, the rest.
 */
export function rssBreakdownIn(smaps: string, binary = process.execPath): Record<RssPart, number> {
  const out = Object.fromEntries(RSS_PARTS.map((p) => [p, 0])) as Record<RssPart, number>;
  const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/;
  const maps: string[] = [];
  const rows: Array<{ s: number; e: number; perms: string; name: string; rss: number }> = [];
  for (const line of smaps.split('\n')) {
    const h = header.exec(line);
    if (h) {
      maps.push(line);
      rows.push({ s: parseInt(h[1] as string, 16), e: parseInt(h[2] as string, 16), perms: h[3] as string, name: (h[4] as string).trim(), rss: 0 });
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    const last = rows[rows.length - 1];
    if (r && last) last.rss = Number(r[1]);
  }
  const arenaStarts = new Set(mallocArenaStartsIn(maps.join('\n')));
  for (const m of rows) {
    let part: RssPart;
    if (m.name !== '' && (m.name === binary || m.name.endsWith('/node'))) part = 'node binary';
    else if (m.name.startsWith('/')) part = 'other files';
    else if (m.name === '[heap]') part = 'malloc main arena';
    else if (arenaStarts.has(m.s)) part = 'malloc other arenas';
    else if (m.name.startsWith('[stack')) part = 'stacks';
    else if (m.name === '' && m.perms === 'rwxp') part = 'V8 code pages';
    else if (m.name === '' && m.perms === 'rw-p' && (m.e - m.s) % (256 * 1024) === 0) part = 'V8 heap pages';
    else part = 'other anonymous';
    out[part] += m.rss;
  }
  return out;
}

/** rssBreakdownIn of a live process. */
export function rssBreakdown(pid: number): Record<RssPart, number> {
  return rssBreakdownIn(readFileSync(`/proc/${pid}/smaps`, 'utf8'), readlinkOr(`/proc/${pid}/exe`));
}

function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return process.execPath;
  }
}

/** One line: each part's MB, and how it moved from `from` (e.g. the base) when given. */
export function rssBreakdownLine(to: Record<RssPart, number>, from?: Record<RssPart, number>): string {
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  return RSS_PARTS.map((p) => (from ? `${p} ${mb(from[p])} -> ${mb(to[p])}` : `${p} ${mb(to[p])}`)).join(', ') + ' MiB';
}

/**
 * glibc's malloc arenas other than the main one in a /proc/PID/maps text: each is a heap
 * of 64 MiB aligned on 64 MiB, anonymous, its used part rw-p and the rest reserved (---p).
 * The kilobytes of each one's rw-p part, in address order.
 */
export function mallocArenasIn(maps: string): number[] {
  return arenaRows(maps).map((a) => a.kb);
}

/** Where each of mallocArenasIn's arenas starts. */
function mallocArenaStartsIn(maps: string): number[] {
  return arenaRows(maps).map((a) => a.start);
}

function arenaRows(maps: string): Array<{ start: number; kb: number }> {
  const HEAP = 64 * 1024 * 1024;
  const rows = maps
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [range = '', perms = '', , , , name = ''] = l.trim().split(/\s+/);
      const [s = 0, e = 0] = range.split('-').map((x) => parseInt(x, 16));
      return { s, e, perms, name };
    });
  const out: Array<{ start: number; kb: number }> = [];
  rows.forEach((m, i) => {
    if (m.name !== '' || m.perms !== 'rw-p' || m.s % HEAP !== 0) return;
    const next = rows[i + 1];
    const end = next && next.name === '' && next.perms === '---p' && next.s === m.e ? next.e : m.e;
    if (end - m.s === HEAP) out.push({ start: m.s, kb: (m.e - m.s) / 1024 });
  });
  return out;
}

/** The malloc arenas of `pid` besides glibc's main one (see mallocArenasIn). */
export function mallocArenas(pid: number): number[] {
  return mallocArenasIn(readFileSync(`/proc/${pid}/maps`, 'utf8'));
}
