export * from './types.js';
export { Supervisor, DEFAULT_CONFIG, type SerializedCore } from './supervisor.js';
export { backoffDelay } from './backoff.js';
export { Fleet, type FleetEffect, type FleetEvent, type FleetGroupView, type FleetOptions, type GroupEffect, type GroupRequest, type GroupSpec, type SerializedFleet, type Targets } from './fleet.js';
export { finalReply, resultLines, type Finish, type GroupResult } from './fanout.js';
export {
  ProcessMachine,
  RUNNING_STATES,
  STOPPED_STATES,
  SIGNALLABLE_STATES,
  type ProcessStateName,
  type ProcessEvent,
  type ProcessEffect,
  type CommandResult,
  type ProcessStateSnapshot,
} from './process-state.js';
export { DEFAULT_PROCESS_STATE_CONFIG, type ProcessStateConfig } from './process-state-config.js';
