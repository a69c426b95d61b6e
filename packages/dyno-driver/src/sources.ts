/** The release source of the driver's command line (releases.ts, control-dir-source.ts). */
import type { Logger } from '@einhyrningsins/master';
import { ConfigSource } from './config-source.js';
import { ControlDirSource } from './control-dir-source.js';
import { ProcfileSource, type ReleaseSource, type SourceConfig } from './releases.js';

export function releaseSource(cfg: SourceConfig, log: Logger, env: NodeJS.ProcessEnv): ReleaseSource {
  const src = cfg.source;
  if (src.kind === 'config') return new ConfigSource(src.file, cfg.cwd, env, log);
  return src.kind === 'procfile' ? new ProcfileSource(cfg) : new ControlDirSource(cfg, log);
}
