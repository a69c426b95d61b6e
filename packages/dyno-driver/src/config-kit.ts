/**
 * What only `--config` needs (the supervisord-style config reader, supervisorctl's
 * commands, the programs' log files), loaded by the command line only with --config, so
 * that a Procfile or control-dir start neither reads nor runs any of it (with the driver's
 * bundle split into chunks, scripts/bundle.mjs, none of it is even read from disk).
 */
import { ConfigSource } from './config-source.js';
import { ConfigControl } from './config-control.js';

export { ConfigSource, ConfigControl };

export interface ConfigKit {
  ConfigSource: typeof ConfigSource;
  ConfigControl: typeof ConfigControl;
}

/** This module, as the driver is given it. */
export const configKit: ConfigKit = { ConfigSource, ConfigControl };
