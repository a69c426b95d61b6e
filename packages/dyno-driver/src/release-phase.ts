/**
 * The release phase (a `release` process type): run once per new release, to its end,
 * before anything rolls; its output labelled `release.1 | `. A stop while it runs stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { isoTime, pipeLines, type Logger } from '@einhyrningsins/master';
import { isNewRelease, type PreparedRelease } from './release.js';

export interface PhaseResult {
  version: number;
  ok: boolean;
  status: string;
  at: string;
}

export class ReleasePhase {
  /** The release phase running now (stopped on shutdown). */
  child: ChildProcess | null = null;
  last: PhaseResult | null = null;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    /** Releases carry their own Version (a control directory). */
    private readonly versioned: boolean,
    private readonly log: Logger,
  ) {}

  /** Stop a running release phase (its process group): the stop signal, SIGKILL when asked again. */
  stop(signal: string): void {
    if (this.child?.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal as NodeJS.Signals);
    } catch {
      /* gone */
    }
  }

  /**
   * The release phase of `next`, when it is a new release: true when there is none or it
   * exited 0. `progress`: told when it starts (an upgrade's requester).
   */
  async run(current: PreparedRelease | null, next: PreparedRelease, stopping: () => boolean, progress?: (m: string) => void): Promise<boolean> {
    if (!next.releaseArgs) return true;
    if (!isNewRelease(current, next, this.versioned)) return true;
    if (stopping()) return false;
    const [program, ...args] = next.releaseArgs as [string, ...string[]];
    const name = 'release.1';
    this.log.info(`Release ${next.version}: running the release phase: ${next.releaseArgs.join(' ')}`);
    progress?.(`Release ${next.version}: running the release phase`);
    const env = { ...this.env, ...next.env, DYNO: name };
    const result = await new Promise<{ ok: boolean; status: string }>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(program, args, { cwd: next.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      } catch (err) {
        resolve({ ok: false, status: (err as Error).message });
        return;
      }
      this.child = child;
      const label = `${name} | `;
      pipeLines(child, () => label);
      child.once('error', (err) => resolve({ ok: false, status: err.message }));
      child.once('exit', (code, signal) => {
        if (signal) resolve({ ok: false, status: `killed by ${signal}` });
        else resolve({ ok: code === 0, status: `exit status ${code}` });
      });
    });
    this.child = null;
    this.last = { version: next.version, ...result, at: isoTime() };
    if (result.ok) this.log.info(`Release ${next.version}: the release phase succeeded`);
    else this.log.error(`Release ${next.version}: the release phase failed (${result.status})`);
    return result.ok;
  }
}
