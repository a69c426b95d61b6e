export * from './types.js';
export { Supervisor, DEFAULT_CONFIG } from './supervisor.js';
export { backoffDelay } from './backoff.js';
