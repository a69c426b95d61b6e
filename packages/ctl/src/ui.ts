/**
 * What the client shapes around talking to a master: the nearest command to a
 * typo, help text wrapped at word boundaries, signal-name completion. (How many
 * arguments a command takes is the server's to say: a master and the dyno
 * driver differ.)
 */
import { constants } from 'node:os';

function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known commands nearest to `word` (a typo, a prefix), best first; empty when nothing is close. */
export function nearest(word: string, names: readonly string[]): string[] {
  const w = word.toLowerCase();
  const prefixed = names.filter((n) => n.startsWith(w));
  if (w.length >= 2 && prefixed.length) return prefixed.slice(0, 3);
  const scored = names.map((n) => ({ n, d: distance(w, n) })).filter((x) => x.d <= Math.max(1, Math.floor(x.n.length / 3)));
  scored.sort((x, y) => x.d - y.d || x.n.localeCompare(y.n));
  return scored.slice(0, 3).map((x) => x.n);
}

/** Wrap each line at word boundaries to `width`, continuing under the text after `name: `. */
export function wrapText(text: string, width: number): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.length <= width) {
      out.push(line);
      continue;
    }
    const colon = /^[\w-]+: /.exec(line);
    const indent = colon && colon[0].length < width / 2 ? ' '.repeat(colon[0].length) : '  ';
    let cur = '';
    for (const word of line.split(' ')) {
      const limit = width - (out.length && cur === '' ? 0 : 0);
      if (cur && cur.length + 1 + word.length > limit) {
        out.push(cur);
        cur = indent + word;
      } else cur = cur ? `${cur} ${word}` : word;
    }
    if (cur) out.push(cur);
  }
  return out.join('\n');
}

export const SIGNAL_NAMES: readonly string[] = Object.keys(constants.signals)
  .map((s) => s.replace(/^SIG/, ''))
  .sort();

/** Tab completion of a shell line: command names first, then signal names after `signal`/`die`. */
export function complete(line: string, commands: readonly string[]): [string[], string] {
  const m = /^(\s*)(\S*)$/.exec(line);
  if (m) {
    const hits = commands.filter((n) => n.startsWith(m[2]!));
    return [hits.length ? hits : [...commands], m[2]!];
  }
  const words = line.trimStart().split(/\s+/);
  const cmd = words[0];
  const last = line.endsWith(' ') ? '' : (words.at(-1) ?? '');
  if (cmd === 'signal' || (cmd === 'die' && words.length <= 2)) {
    const upper = last.toUpperCase().replace(/^SIG/, '');
    const hits = SIGNAL_NAMES.filter((s) => s.startsWith(upper));
    return [hits, last];
  }
  if (cmd === 'status' && last.startsWith('-')) return [['--json', '--watch', '--interval'].filter((o) => o.startsWith(last)), last];
  return [[], last];
}
