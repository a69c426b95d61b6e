/**
 * Where the app comes from (the kind of source and its paths, as the command line gives
 * them) and where its state goes: decided without reading anything, so that the command
 * line's module (cli.ts) needs none of the readers (app-source.ts) to start.
 */
import { dirname, join, resolve } from 'node:path';

export type AppSource =
  | {
      kind: 'procfile';
      /** Absolute path of the Procfile. */
      procfile: string;
      /** The .env to read: explicit (must exist) or the default (read when it exists). */
      envFile: string;
      envExplicit: boolean;
      formation: ReadonlyMap<string, number>;
    }
  | {
      kind: 'control-dir';
      dir: string;
      /** Only when --env was given. */
      envFile: string | null;
    }
  | {
      /** --config: a supervisord-style config file (config-source.ts). */
      kind: 'config';
      file: string;
    };

export function defaultStateDir(src: AppSource, cwd: string): string {
  return src.kind === 'control-dir' ? join(src.dir, '.state') : src.kind === 'config' ? join(dirname(src.file), '.einhyrningsins-dyno') : resolve(cwd, '.einhyrningsins-dyno');
}
