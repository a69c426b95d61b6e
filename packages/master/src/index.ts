export { main } from './main.js';
export { Master, defaultSocketPath } from './master.js';
export { parseArgs, helpText, OPTION_SPECS, optionLabel, UsageError, type Options } from './options.js';
export { parseBindSpec, resolveBind, BindError } from './bind-spec.js';
export { childEnv } from './child-env.js';
export { resolveProgram, ProgramError } from './program.js';
export { normalizeSignal } from './signals.js';
export { VERSION } from './version.js';
