export * from './types.js';
export { Supervisor, DEFAULT_CONFIG, type SerializedCore } from './supervisor.js';
export { backoffDelay } from './backoff.js';
