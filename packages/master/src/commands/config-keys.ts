/** What the master's `config` command may change at run time (einhorn merges any key; we check them). */
import type { ConfigChanges } from '@einhyrningsins/core';
import { describeValue, isPlainMapping, parseDocumentText, stripSymbolKeys } from '@einhyrningsins/protocol';

interface ConfigKey {
  what: string;
  min: number;
  integer: boolean;
  apply: (c: ConfigChanges, n: number) => void;
}

const CONFIG_KEYS: Readonly<Record<string, ConfigKey>> = {
  seconds: { what: 'seconds > 0', min: 0.001, integer: false, apply: (c, n) => (c.respawnDelayMs = n * 1000) },
  signal_timeout: {
    what: 'seconds, 0: never',
    min: 0,
    integer: false,
    apply: (c, n) => (c.signalTimeoutMs = n > 0 ? n * 1000 : null),
  },
  max_unacked: { what: 'an integer >= 1', min: 1, integer: true, apply: (c, n) => (c.maxUnacked = n) },
  max_upgrade_additional: { what: 'an integer >= 1', min: 1, integer: true, apply: (c, n) => (c.maxUpgradeAdditional = n) },
  retries: { what: 'an integer >= 0', min: 0, integer: true, apply: (c, n) => ((c.retries = n), (c.upgradeRetries = n)) },
  verbosity: { what: 'an integer 0-3', min: 0, integer: true, apply: () => undefined },
};

export const CONFIG_KEY_NAMES: readonly string[] = Object.keys(CONFIG_KEYS);

/** `config` text to the engine's changes (and a verbosity), or the one-line reason it is refused. */
export function configChanges(text: string): { changes: ConfigChanges; verbosity: number | null } | { error: string } {
  if (text.trim() === '') return { error: 'Must pass in a YAML-encoded hash' };
  const parsed = parseDocumentText(text);
  if (!parsed.ok) return { error: 'Could not parse argument. Must be a YAML-encoded hash' };
  const hash = stripSymbolKeys(parsed.value);
  if (!isPlainMapping(hash)) return { error: `Parsed argument is not a hash: ${text}` };
  const changes: ConfigChanges = {};
  let verbosity: number | null = null;
  for (const [key, value] of Object.entries(hash)) {
    const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
    if (!spec) return { error: `Unknown config key '${key}' (known: ${CONFIG_KEY_NAMES.join(', ')})` };
    const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
    const tooBig = key === 'verbosity' && n > 3;
    if (!Number.isFinite(n) || n < spec.min || tooBig || (spec.integer && !Number.isInteger(n))) {
      return { error: `Invalid value for ${key}: ${describeValue(value)} (${spec.what})` };
    }
    if (key === 'verbosity') verbosity = n;
    else spec.apply(changes, n);
  }
  return { changes, verbosity };
}
