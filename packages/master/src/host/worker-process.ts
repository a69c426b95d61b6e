/** A worker whose output is piped: what the readers of its output use of a ChildProcess. */
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';

/**
 * A worker whose output is piped (GroupShellOptions.output): what its readers use of a
 * ChildProcess. 'exit' (code, signal name) is emitted when it is reaped.
 */
export interface WorkerProcess extends EventEmitter {
  readonly pid: number;
  readonly stdout: Socket | null;
  readonly stderr: Socket | null;
}

export class PipedWorker extends EventEmitter implements WorkerProcess {
  constructor(
    readonly pid: number,
    readonly stdout: Socket | null,
    readonly stderr: Socket | null,
  ) {
    super();
  }
}

/** A read end of a worker's output (a socketpair's end, as libuv makes for 'pipe') as a stream. */
export function readEnd(fd: number): Socket {
  return new Socket({ fd, readable: true, writable: false });
}
