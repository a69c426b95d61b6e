export * from './types.js';
export { Supervisor, DEFAULT_CONFIG, type SerializedCore } from './supervisor.js';
export { backoffDelay } from './backoff.js';
export { Fleet, type FleetEffect, type FleetEvent, type FleetGroupView, type FleetOptions, type GroupEffect, type GroupRequest, type GroupSpec, type SerializedFleet, type Targets } from './fleet.js';
export { finalReply, resultLines, type Finish, type GroupResult } from './fanout.js';
