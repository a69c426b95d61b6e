/**
 * The values of --fetch URL and --fetch-max-size SIZE, checked the same way wherever
 * they are written (the master's command line, a config file's `fetch=` and
 * `fetch_max_size=`): a problem is one phrase without the option's name, which the
 * caller puts in front.
 */

/** http(s) with a host, or file: with an absolute path; the URL normalized. */
export function parseFetchUrl(v: string): { url: string } | { problem: string } {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return { problem: `expects a URL (http://HOST/..., https://HOST/... or file:///PATH), got '${v}'` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'file:') {
    return { problem: `${v}: unsupported scheme '${u.protocol.slice(0, -1)}' (http, https or file)` };
  }
  if (u.protocol === 'file:' && u.host !== '' && u.host !== 'localhost') {
    return { problem: `${v}: a file URL names an absolute path, file:///PATH (here '${u.host}' would be a host)` };
  }
  if (u.protocol === 'file:' && (u.pathname === '/' || u.pathname.endsWith('/'))) {
    return { problem: `${v}: a file URL must name a file, not a directory` };
  }
  return { url: u.href };
}

/** Bytes, or with a K, M or G suffix (powers of 1024); null when it is not one, or below 1. */
export function parseFetchSize(v: string): number | null {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v);
  const n = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  return m && Number.isSafeInteger(n) && n >= 1 ? n : null;
}
