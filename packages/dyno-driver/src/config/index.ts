export { readConfig, type ReadOptions } from './read-config.js';
export { diff, programChanges, type ConfigDiff, type DiffLists } from './diff.js';
export { ConfigError, where, type Loc } from './errors.js';
export { systemUsers, tableUsers, type UserDb, type UserEntry } from './users.js';
export { parseSocket, parseHandoff, parseAck, HANDOFFS } from './project-keys.js';
export type * from './model.js';
