export { LogWriter, realLogFs, DEFAULT_MAX_QUEUE_BYTES, type LogFs, type LogHandle, type LogWriterOptions, type LogWriterStats } from './log-writer.js';
export { LineSource, DEFAULT_MAX_LINE_BYTES } from './line-source.js';
export { planAppend, rotationRenames, type FileShape, type Step } from './rotation.js';
export { tailBytes, tailLines, follow, DEFAULT_TAIL_BYTES, type TailResult, type Follower } from './tail.js';
