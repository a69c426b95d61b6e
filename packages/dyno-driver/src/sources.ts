/** The release source of the driver's command line (releases.ts, control-dir-source.ts). */
import type { Logger } from '@einhyrningsins/master';
import { ControlDirSource } from './control-dir-source.js';
import { ProcfileSource, type ReleaseSource, type SourceConfig } from './releases.js';

export function releaseSource(cfg: SourceConfig, log: Logger): ReleaseSource {
  return cfg.source.kind === 'procfile' ? new ProcfileSource(cfg) : new ControlDirSource(cfg, log);
}
