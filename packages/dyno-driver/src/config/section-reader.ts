/**
 * Reading one section's keys with supervisord's `saneget`: the section's own
 * value or [DEFAULT]'s, `%(...)` expanded unless asked not to, every failure
 * turned into `FILE:LINE: key: problem` at the line of the key (at the
 * section header for a missing required key).
 */
import { ConfigError, ValueError } from './errors.js';
import { expand, type Expansions } from './expand.js';
import { lookup, type IniStore, type RawSection, type RawValue } from './ini.js';
import type { Loc } from './errors.js';

export class SectionReader {
  constructor(
    readonly store: IniStore,
    readonly section: RawSection,
  ) {}

  raw(key: string): RawValue | undefined {
    return lookup(this.store, this.section, key);
  }

  /** Where a key is written, or the section header. */
  loc(key: string): Loc {
    return this.raw(key)?.loc ?? this.section.loc;
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  /** Run `fn` on the key's value (expanded), or on `fallback` when the key is absent; errors get FILE:LINE. */
  get<T>(key: string, fallback: string, expansions: Expansions | null, fn: (v: string) => T): T {
    const raw = this.raw(key);
    const loc = raw?.loc ?? this.section.loc;
    try {
      let v = raw === undefined ? fallback : raw.value;
      if (expansions !== null) v = expand(v, expansions, `${this.section.name}.${key}`);
      return fn(v);
    } catch (err) {
      if (err instanceof ValueError) throw new ConfigError(loc, `${key}: ${err.message}`);
      throw err;
    }
  }

  /** Like get, for a key with no default: null when absent. */
  optional<T>(key: string, expansions: Expansions | null, fn: (v: string) => T): T | null {
    return this.has(key) ? this.get(key, '', expansions, fn) : null;
  }

  /** Run `fn`, reporting a ValueError at the key's line. */
  check<T>(key: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ValueError) throw new ConfigError(this.loc(key), `${key}: ${err.message}`);
      throw err;
    }
  }

  /** The keys written in this section itself (not [DEFAULT]'s), with where. */
  ownKeys(): [string, RawValue][] {
    return [...this.section.keys.entries()].filter(([, v]) => !v.inherited);
  }
}
