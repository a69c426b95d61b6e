export * from './worker.js';
export { ControlClient, ClientError, type Reply } from './client.js';
export { ctlMain, parseCtlArgs, ctlHelpText, CTL_OPTIONS, failed } from './cli.js';
export { splitCommands } from './words.js';
