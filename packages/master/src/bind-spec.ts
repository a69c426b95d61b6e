import { isIP } from 'node:net';

/** One `-b ADDR:PORT[,OPT...]` as written. */
export interface BindSpec {
  text: string;
  host: string;
  port: number;
  reuseAddr: boolean;
  nonBlock: boolean;
  reusePort: boolean;
}

/** A spec with its host resolved to one numeric address. */
export interface ResolvedBind extends BindSpec {
  address: string;
  family: 4 | 6;
}

export class BindError extends Error {
  override name = 'BindError';
}

/** A -b that is malformed as written (a usage error: exit 2), not one that failed to bind. */
export class BindUsageError extends BindError {
  override name = 'BindUsageError';
}

const FLAGS: Readonly<Record<string, 'reuseAddr' | 'nonBlock' | 'reusePort'>> = {
  r: 'reuseAddr',
  so_reuseaddr: 'reuseAddr',
  n: 'nonBlock',
  o_nonblock: 'nonBlock',
  p: 'reusePort',
  so_reuseport: 'reusePort',
};

export function parseBindSpec(text: string): BindSpec {
  const [addr = '', ...opts] = text.split(',');
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(addr);
  if (bracket) {
    host = bracket[1] as string;
    portText = bracket[2] as string;
    if (isIP(host) !== 6) throw new BindUsageError(`-b ${text}: '${host}' is not an IPv6 address`);
  } else {
    const colon = addr.lastIndexOf(':');
    host = colon < 0 ? '' : addr.slice(0, colon);
    portText = colon < 0 ? '' : addr.slice(colon + 1);
    if (host.includes(':')) {
      throw new BindUsageError(`-b ${text}: write IPv6 addresses in brackets, as [${host}]:${portText}`);
    }
  }
  if (host === '' || !/^\d+$/.test(portText)) {
    throw new BindUsageError(`-b ${text}: expected ADDR:PORT[,OPT...], e.g. 127.0.0.1:8080,r`);
  }
  const port = Number(portText);
  if (port > 65535) throw new BindUsageError(`-b ${text}: port ${portText} is out of range (0-65535)`);
  const spec: BindSpec = { text, host, port, reuseAddr: false, nonBlock: false, reusePort: false };
  for (const raw of opts) {
    const opt = raw.trim().toLowerCase();
    if (opt === '') continue;
    const flag = FLAGS[opt];
    if (!flag) {
      throw new BindUsageError(`-b ${text}: unknown socket option '${raw}' (known: r, n, p; so_reuseaddr, o_nonblock, so_reuseport)`);
    }
    spec[flag] = true;
  }
  return spec;
}

/** Resolve the host of a spec to one numeric address of the allowed family. */
export async function resolveBind(spec: BindSpec, only: 4 | 6 | null): Promise<ResolvedBind> {
  const literal = isIP(spec.host);
  if (literal) {
    if (only !== null && literal !== only) {
      throw new BindUsageError(`-b ${spec.text}: ${spec.host} is not an IPv${only} address (-${only} was given)`);
    }
    return { ...spec, address: spec.host, family: literal as 4 | 6 };
  }
  try {
    // node:dns only for a host name: numeric -b addresses (the usual case) need none of it.
    const { lookup } = await import('node:dns/promises');
    const found = await lookup(spec.host, { family: only ?? 0, all: false });
    return { ...spec, address: found.address, family: found.family as 4 | 6 };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const what = only ? ` to an IPv${only} address` : '';
    throw new BindError(`-b ${spec.text}: cannot resolve '${spec.host}'${what} (${code})`);
  }
}
