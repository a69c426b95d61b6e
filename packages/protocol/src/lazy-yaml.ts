import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

let loaded: typeof Yaml | null = null;

/**
 * The yaml package, loaded on first use: JSON requests (most ACKs, our own
 * ctl) and every reply never need it, and loading it costs tens of ms of
 * a master's start-up.
 */
export function yaml(): typeof Yaml {
  return (loaded ??= createRequire(import.meta.url)('yaml') as typeof Yaml);
}
