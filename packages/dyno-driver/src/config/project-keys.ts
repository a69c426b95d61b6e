/**
 * This project's own per-program keys, beside supervisord's:
 *   socket = tcp://HOST:PORT[,r][,n][,p] | unix:PATH[,mode=OCTAL][,n]
 *   handoff = einhorn, systemd, server-starter, port
 *   ack = manual[:DEADLINE] | SECONDS
 *   fetch = URL, fetch_interval = SECONDS, fetch_max_size = SIZE
 *   watch = PATH[,PATH...]
 * The socket is written as the master's -b (same options), the hand-off as its
 * --handoff (same names and rules), the ACK mode as its -m (`manual`, or a
 * timer of SECONDS; default: timer, 1 second); `manual:DEADLINE` is manual with
 * its own ACK deadline in seconds (otherwise the driver's --ack-timeout); `fetch=` and its two keys are
 * --fetch, --fetch-interval and --fetch-max-size (a size may also be written as
 * supervisord's byte sizes, 50MB), `watch=` is --watch (comma-separated paths,
 * relative to the working directory as the other paths of the file).
 */
import { isAbsolute, resolve } from 'node:path';
import { HANDOFF_NAMES, HandoffError, parseBindSpec, parseFetchSize, parseFetchUrl, parseHandoffs, watchPathProblem } from '@einhyrningsins/master';
import { ValueError } from './errors.js';
import type { AckMode, Handoff, SocketSpec } from './model.js';

/** sockaddr_un's sun_path holds 108 bytes with the terminating NUL. */
export const MAX_UNIX_PATH = 107;

/** The master's --handoff names: `handoff=` means what --handoff means. */
export const HANDOFFS: readonly Handoff[] = HANDOFF_NAMES;

export const DEFAULT_ACK: AckMode = { kind: 'timer', seconds: 1 };

/** The master's parseSeconds (-m SECONDS): a plain decimal number. */
function seconds(word: string): number | null {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(word)) return null;
  const n = Number(word);
  return Number.isFinite(n) ? n : null;
}

export function parseSocket(text: string, cwd: string): SocketSpec {
  if (text.startsWith('tcp://')) {
    const inner = text.slice('tcp://'.length);
    let spec;
    try {
      spec = parseBindSpec(inner);
    } catch (err) {
      let msg = (err as Error).message;
      if (msg.startsWith(`-b ${inner}: `)) msg = msg.slice(`-b ${inner}: `.length);
      msg = msg.replace('ADDR:PORT[,OPT...], e.g. 127.0.0.1:8080,r', 'tcp://HOST:PORT[,OPT...], e.g. tcp://127.0.0.1:8080');
      throw new ValueError(`socket ${JSON.stringify(text)}: ${msg}`);
    }
    if (spec.port === 0) throw new ValueError(`socket ${JSON.stringify(text)}: port 0 would bind a different port at every start`);
    const { host, port, reuseAddr, nonBlock, reusePort } = spec;
    return { kind: 'tcp', text, host, port, reuseAddr, nonBlock, reusePort };
  }
  const unix = /^unix:(?:\/\/)?(.*)$/s.exec(text);
  if (unix) {
    const [raw = '', ...opts] = (unix[1] as string).split(',');
    if (raw === '') throw new ValueError(`socket ${JSON.stringify(text)}: expected unix:PATH[,mode=OCTAL]`);
    let mode: number | null = null;
    let nonBlock = false;
    for (const o of opts) {
      const opt = o.trim();
      const m = /^mode=([0-7]{1,4})$/.exec(opt);
      if (m) mode = parseInt(m[1] as string, 8);
      else if (opt === 'n' || opt === 'o_nonblock') nonBlock = true;
      else if (opt !== '') throw new ValueError(`socket ${JSON.stringify(text)}: unknown unix socket option '${o}' (known: mode=OCTAL, n)`);
    }
    const path = isAbsolute(raw) ? raw : resolve(cwd, raw);
    if (path.includes('\0')) throw new ValueError(`socket ${JSON.stringify(text)}: the path contains NUL`);
    if (Buffer.byteLength(path) > MAX_UNIX_PATH) {
      throw new ValueError(`socket ${JSON.stringify(text)}: the path is too long (${Buffer.byteLength(path)} bytes, at most ${MAX_UNIX_PATH})`);
    }
    return { kind: 'unix', text, path, mode, nonBlock };
  }
  throw new ValueError(`socket ${JSON.stringify(text)}: expected tcp://HOST:PORT or unix:PATH`);
}

/** As the master's --handoff: a comma list; einhorn (EINHORN_*) always, first; the others in a fixed order. */
export function parseHandoff(text: string): Handoff[] {
  try {
    return parseHandoffs([text]);
  } catch (err) {
    if (err instanceof HandoffError) throw new ValueError(err.message.replace(/^--handoff: /, ''));
    throw err;
  }
}

/** The longest ACK deadline `ack=manual:SECONDS` takes (as the driver's --ack-timeout: a day). */
export const MAX_ACK_DEADLINE_SEC = 86_400;

/** `ack=`: manual, manual:DEADLINE (seconds to ACK, greater than 0), or a timer of SECONDS. */
export function parseAck(text: string): AckMode {
  if (text === 'manual') return { kind: 'manual' };
  if (text.startsWith('manual:')) {
    const d = seconds(text.slice('manual:'.length));
    if (d === null || d <= 0 || d > MAX_ACK_DEADLINE_SEC) {
      throw new ValueError(`ack=manual:SECONDS expects an ACK deadline of more than 0 and at most ${MAX_ACK_DEADLINE_SEC} seconds, got ${JSON.stringify(text)}`);
    }
    return { kind: 'manual', deadlineSec: d };
  }
  const s = seconds(text);
  if (s === null) throw new ValueError(`ack expects 'manual', 'manual:SECONDS' (with its ACK deadline) or a number of seconds, got ${JSON.stringify(text)}`);
  return { kind: 'timer', seconds: s };
}

/** `fetch=`: as --fetch URL. */
export function parseFetch(text: string): string {
  const got = parseFetchUrl(text);
  if ('problem' in got) throw new ValueError(got.problem);
  return got.url;
}

/** `fetch_interval=`: as --fetch-interval, seconds greater than 0. */
export function parseFetchInterval(text: string): number {
  const s = seconds(text);
  if (s === null || s <= 0) throw new ValueError(`expects a number of seconds greater than 0, got ${JSON.stringify(text)}`);
  return s;
}

/** `fetch_max_size=`: as --fetch-max-size (bytes, K, M, G), or supervisord's byte sizes (KB, MB, GB). */
export function parseFetchMaxSize(text: string): number {
  const n = parseFetchSize(text) ?? parseFetchSize(text.replace(/^(\d+)([kKmMgG])[bB]$/, '$1$2'));
  if (n === null) throw new ValueError(`expects a size in bytes (or with a K, M or G suffix, e.g. 64M or 64MB), got ${JSON.stringify(text)}`);
  return n;
}

/** `watch=`: comma-separated paths, each resolved against `cwd`; the directory of each must exist. */
export function parseWatch(text: string, cwd: string): string[] {
  const paths = text.split(',').map((p) => p.trim());
  if (paths.some((p) => p === '')) throw new ValueError(`expects PATH[,PATH...], got ${JSON.stringify(text)}`);
  return watchPaths(paths, cwd);
}

/** Watched paths (a minisv task's "watch" array), each resolved against `cwd`; the directory of each must exist. */
export function watchPaths(paths: readonly string[], cwd: string): string[] {
  return paths.map((p) => {
    const abs = resolve(cwd, p);
    const problem = watchPathProblem(abs);
    if (problem) throw new ValueError(`${p}: ${problem}`);
    return abs;
  });
}
