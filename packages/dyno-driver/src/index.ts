export { main, appSource, defaultDynoSocketPath } from './cli.js';
export { Driver, WEB_TYPE, type DriverConfig } from './driver.js';
export { parseDynoArgs, dynoHelpText, DYNO_OPTIONS, type DynoOptions, type DynoOptionSpec } from './options.js';
export { parseProcfile, procfileArgs, TYPE_NAME, type ProcfileEntry, type Parsed } from './procfile.js';
export { parseDotenv } from './dotenv.js';
export { parseFormation, parseScale, FormationError, MAX_QUANTITY } from './formation.js';
export { validateRelease, parseRelease, ReleaseError, ControlDirWatcher, NEW_FILE, LOADED_FILE, REJECTED_FILE, LAST_ERROR_FILE, processArgv } from './control-dir.js';
export {
  diffReleases,
  describeChanges,
  releaseFromProcfile,
  isNewRelease,
  RELEASE_TYPE,
  sameEnv,
  type Release,
  type PreparedRelease,
  type ProcessDef,
  type TypeChange,
} from './release.js';
export { prepareSlug, SlugError, type SlugPlace, type SlugRequest } from './slug.js';
export { runOneOff, runContext, RunError } from './run.js';
export { AppError, UsageError } from './errors.js';
export { VERSION } from './version.js';
