/**
 * Python's glob.glob for [include] files= patterns: `*`, `?` and `[...]`
 * (`[!...]` negates) in any path component, no recursion (`**` is `*`),
 * names starting with `.` matched only by a pattern component that starts
 * with `.`; the results are sorted by the caller, as supervisord does.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const MAGIC = /[*?[]/;

/** fnmatch.translate for one path component. */
export function componentRegExp(pat: string): RegExp {
  let re = '';
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      let j = i + 1;
      if (pat[j] === '!') j++;
      if (pat[j] === ']') j++;
      while (j < pat.length && pat[j] !== ']') j++;
      if (j >= pat.length) {
        re += '\\[';
      } else {
        let body = pat.slice(i + 1, j);
        i = j;
        const neg = body.startsWith('!');
        if (neg) body = body.slice(1);
        body = body.replace(/\\/g, '\\\\').replace(/\^/g, '\\^').replace(/\]/g, '\\]');
        re += neg ? `[^${body}]` : `[${body}]`;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The paths matching an absolute `pattern` (unsorted). */
export function glob(pattern: string): string[] {
  if (!MAGIC.test(pattern)) return exists(pattern) ? [pattern] : [];
  const parts = pattern.split('/');
  let bases = [parts[0] === '' ? '/' : (parts[0] as string)];
  for (let k = 1; k < parts.length; k++) {
    const part = parts[k] as string;
    const last = k === parts.length - 1;
    const next: string[] = [];
    for (const base of bases) {
      if (part === '') {
        if (last) next.push(`${base}/`);
        else next.push(base);
        continue;
      }
      if (!MAGIC.test(part)) {
        const p = join(base, part);
        if (last ? exists(p) : isDir(p)) next.push(p);
        continue;
      }
      let names: string[];
      try {
        names = readdirSync(base);
      } catch {
        continue;
      }
      const re = componentRegExp(part);
      for (const name of names) {
        if (name.startsWith('.') && !part.startsWith('.')) continue;
        if (!re.test(name)) continue;
        const p = join(base, name);
        if (last || isDir(p)) next.push(p);
      }
    }
    bases = next;
  }
  return bases;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
