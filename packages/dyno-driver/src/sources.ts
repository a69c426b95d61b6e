/** The release source of the driver's command line (releases.ts, control-dir-source.ts). */
import type { Logger } from '@einhyrningsins/master';
import type { ConfigKit } from './config-kit.js';
import { ControlDirSource } from './control-dir-source.js';
import { ProcfileSource, type ReleaseSource, type SourceConfig } from './releases.js';

/** `kit`: the config file's modules (config-kit.ts), loaded by the command line with --config only. */
export function releaseSource(cfg: SourceConfig, log: Logger, env: NodeJS.ProcessEnv, kit: ConfigKit | null): ReleaseSource {
  const src = cfg.source;
  if (src.kind === 'config') {
    if (!kit) throw new Error('a --config source needs the config modules (config-kit.ts)');
    return new kit.ConfigSource(src.file, cfg.cwd, env, log);
  }
  return src.kind === 'procfile' ? new ProcfileSource(cfg) : new ControlDirSource(cfg, log);
}
