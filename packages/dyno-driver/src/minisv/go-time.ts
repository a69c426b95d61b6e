/**
 * Go's time formatting and durations, as minisv's config uses them: `logsuffixdate` and
 * `logdate` are layouts of Go's reference time (Mon Jan 2 15:04:05 MST 2006), `logreopen`
 * is a time.ParseDuration string ("1h", "30m", "1h30m", "500ms"). Pure: the caller gives
 * the broken-down time (local, as Go's time.Now()), so tests need no clock and no TZ.
 */

export interface TimeParts {
  year: number;
  /** 1..12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
  /** 0 = Sunday */
  weekday: number;
  /** Minutes east of UTC (Go's zone offset; JS's getTimezoneOffset is its negation). */
  offsetMinutes: number;
  /** Zone abbreviation (MST); Go prints the offset when it has none. */
  zone?: string;
}

/** A Date's local time as Go's time.Now() would give it. */
export function localParts(d: Date): TimeParts {
  return {
    year: d.getFullYear(),
    month: d.getMonth() + 1,
    day: d.getDate(),
    hour: d.getHours(),
    minute: d.getMinutes(),
    second: d.getSeconds(),
    millisecond: d.getMilliseconds(),
    weekday: d.getDay(),
    offsetMinutes: -d.getTimezoneOffset(),
  };
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

const pad = (n: number, w: number, c = '0'): string => String(n).padStart(w, c);

function offset(mins: number, colon: boolean, z: boolean, short = false): string {
  if (z && mins === 0) return 'Z';
  const sign = mins < 0 ? '-' : '+';
  const a = Math.abs(mins);
  const hh = pad(Math.floor(a / 60), 2);
  if (short) return `${sign}${hh}`;
  return `${sign}${hh}${colon ? ':' : ''}${pad(a % 60, 2)}`;
}

function dayOfYear(t: TimeParts): number {
  const start = Date.UTC(t.year, 0, 1);
  return Math.round((Date.UTC(t.year, t.month - 1, t.day) - start) / 86_400_000) + 1;
}

/**
 * The chunks of Go's layout language (time/format.go's nextStdChunk), longest first
 * where one is a prefix of another.
 */
const CHUNKS: Array<[string, (t: TimeParts) => string]> = [
  ['January', (t) => MONTHS[t.month - 1] as string],
  ['Jan', (t) => (MONTHS[t.month - 1] as string).slice(0, 3)],
  ['Monday', (t) => DAYS[t.weekday] as string],
  ['Mon', (t) => (DAYS[t.weekday] as string).slice(0, 3)],
  ['MST', (t) => t.zone ?? offset(t.offsetMinutes, false, false, t.offsetMinutes % 60 === 0)],
  ['2006', (t) => pad(t.year, 4)],
  ['2', (t) => String(t.day)],
  ['_2006', (t) => `_${pad(t.year, 4)}`],
  ['__2', (t) => pad(dayOfYear(t), 3, ' ')],
  ['_2', (t) => pad(t.day, 2, ' ')],
  ['002', (t) => pad(dayOfYear(t), 3)],
  ['02', (t) => pad(t.day, 2)],
  ['01', (t) => pad(t.month, 2)],
  ['06', (t) => pad(t.year % 100, 2)],
  ['05', (t) => pad(t.second, 2)],
  ['04', (t) => pad(t.minute, 2)],
  ['03', (t) => pad(t.hour % 12 === 0 ? 12 : t.hour % 12, 2)],
  ['15', (t) => pad(t.hour, 2)],
  ['1', (t) => String(t.month)],
  ['3', (t) => String(t.hour % 12 === 0 ? 12 : t.hour % 12)],
  ['4', (t) => String(t.minute)],
  ['5', (t) => String(t.second)],
  ['PM', (t) => (t.hour >= 12 ? 'PM' : 'AM')],
  ['pm', (t) => (t.hour >= 12 ? 'pm' : 'am')],
  ['Z07:00:00', (t) => offset(t.offsetMinutes, true, true) + (t.offsetMinutes === 0 ? '' : ':00')],
  ['Z07:00', (t) => offset(t.offsetMinutes, true, true)],
  ['Z0700', (t) => offset(t.offsetMinutes, false, true)],
  ['Z07', (t) => offset(t.offsetMinutes, false, true, true)],
  ['-07:00:00', (t) => offset(t.offsetMinutes, true, false) + ':00'],
  ['-07:00', (t) => offset(t.offsetMinutes, true, false)],
  ['-0700', (t) => offset(t.offsetMinutes, false, false)],
  ['-07', (t) => offset(t.offsetMinutes, false, false, true)],
];

/** Fractional seconds: `.000` (fixed digits) or `.999` (trailing zeros dropped), also with a comma. */
const FRACTION = /^[.,](0+|9+)(?![0-9])/;

/** Format `t` with Go layout `layout` (time.Time.Format). */
export function formatGo(layout: string, t: TimeParts): string {
  let out = '';
  let i = 0;
  outer: while (i < layout.length) {
    const rest = layout.slice(i);
    const f = FRACTION.exec(rest);
    // Go takes a fraction only right after a seconds field; after any digit run here is close enough.
    if (f && /(05|5)$/.test(layout.slice(0, i))) {
      const digits = (f[1] as string).length;
      const frac = pad(t.millisecond, 3).padEnd(9, '0').slice(0, digits);
      if ((f[1] as string)[0] === '9') {
        const trimmed = frac.replace(/0+$/, '');
        out += trimmed ? (f[0][0] as string) + trimmed : '';
      } else out += (f[0][0] as string) + frac;
      i += f[0].length;
      continue;
    }
    for (const [chunk, fmt] of CHUNKS) {
      if (rest.startsWith(chunk)) {
        // Go: "Jan"/"Mon" only when not followed by a lower-case letter (e.g. "Month" is literal).
        if ((chunk === 'Jan' || chunk === 'Mon') && /^[a-z]/.test(rest.slice(chunk.length))) continue;
        out += fmt(t);
        i += chunk.length;
        continue outer;
      }
    }
    out += layout[i];
    i += 1;
  }
  return out;
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds; throws with Go's message shape on a bad string. */
export function parseGoDuration(text: string): number {
  const bad = () => new Error(`invalid duration ${JSON.stringify(text)} (Go's form: 300ms, 1.5h, 2h45m)`);
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw bad();
  let total = 0;
  while (s !== '') {
    const m = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/.exec(s);
    if (!m) throw bad();
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/**
 * When minisv's `logreopen` next fires: it sleeps until the interval's next multiple
 * (time.Truncate, from the zero time; for whole minutes and hours, as the epoch) and
 * then every interval.
 */
export function nextAligned(nowMs: number, everyMs: number): number {
  return Math.floor(nowMs / everyMs) * everyMs + everyMs;
}
