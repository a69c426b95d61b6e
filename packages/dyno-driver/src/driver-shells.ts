/**
 * How each of the driver's groups is run (its GroupShell's options): a process type
 * of a Procfile or control-dir release (the web type with its socket and the bind
 * shim, output labelled `type.N`), or a config file's program (config-control.ts).
 */
import type { GroupSpec } from '@einhyrningsins/core';
import { bindShimProblem, installLastResort, startMemoryKeeper, startReaper, type Cleanup, type GroupShellOptions, type Logger, type Reaper, type Runtime, type WorkerProcess } from '@einhyrningsins/master';
import type { ConfigControl } from './config-control.js';
import type { DriverConfig } from './driver-config.js';
import type { DynoOutput } from './dyno-output.js';
import type { TypeLaunch } from './release-applier.js';
import type { WebSocketBinding } from './web-socket.js';

export interface ShellDeps {
  cfg: DriverConfig;
  web: WebSocketBinding;
  control: ConfigControl | null;
  output: DynoOutput;
  log: Logger;
  /** A process exited (the memory keeper looks again). */
  poke: () => void;
}

/** The web type's hand-off: einhorn's, and the bind shim for apps that bind $PORT (unless the shim is unusable: said once). */
let webShim: boolean | null = null;

function shimUsable(log: Logger): boolean {
  if (webShim === null) {
    const problem = bindShimProblem();
    webShim = problem === null;
    if (problem) log.warn(`${problem}: web processes that bind $PORT themselves will fail with EADDRINUSE; only EINHORN_FD_0 (fd 3) works`);
  }
  return webShim;
}

export function groupShellOptions(spec: GroupSpec<TypeLaunch>, d: ShellDeps): GroupShellOptions {
  const { cfg, web: binding, output, log } = d;
  const program = spec.launch.process.program;
  if (program && d.control) {
    return d.control.shell(spec, program, {
      socketPath: cfg.socketPath,
      killChildrenOnExit: cfg.killChildrenOnExit,
      log,
      shimVerbose: cfg.verbosity === 0,
      output: (name: string, child: WorkerProcess) => output.track(name, child),
      onWorkerExit: d.poke,
    });
  }
  const web = spec.launch.web;
  return {
    name: spec.name,
    core: spec.config,
    launch: spec.launch.launch,
    listeners: binding.listenersFor(spec.name),
    ...(web && binding.listener && shimUsable(log)
      ? { handoff: { names: ['einhorn', 'port'] as const, ctx: { inheritedPreload: spec.launch.launch.env.LD_PRELOAD, shimVerbose: cfg.verbosity === 0 } } }
      : {}),
    socketPath: cfg.socketPath,
    killChildrenOnExit: cfg.killChildrenOnExit,
    stopGroup: true,
    log,
    output: (child, slot) => {
      const name = `${spec.name}.${slot + cfg.startNumber}`;
      output.track(name, child);
      if (web) binding.watchSpawned(name, child);
    },
    onWorkerExit: d.poke,
  };
}

/** What every image of the driver does once it runs: output errors ignored, the last resort, PID 1 reaping, the memory keeper. */
export function processWideDuties(
  runtime: Runtime<TypeLaunch>,
  cleanup: Cleanup,
  log: Logger,
  signalTimeoutSec: number,
  unlinkSocket: () => void,
): { memory: { poke(): void; output(bytes: number): void }; reaper: Reaper | null } {
  // A log reader that goes away must not take the driver down (EPIPE on stdout/stderr).
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  const memory = startMemoryKeeper(cleanup);
  installLastResort(log, () => {
    runtime.stopTimers();
    unlinkSocket();
    cleanup.run();
  });
  // As PID 1 (a container's entrypoint) every orphan is ours: reap them.
  const reaper = startReaper(
    {
      subreaper: false,
      isWorker: (pid) => runtime.hasPid(pid),
      workers: () => runtime.pids(),
      signalTimeoutMs: signalTimeoutSec > 0 ? signalTimeoutSec * 1000 : null,
      log,
    },
    cleanup,
  );
  return { memory, reaper };
}
