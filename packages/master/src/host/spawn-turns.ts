/**
 * The shell's spawns in turns: at most SPAWN_BATCH per turn of the event loop
 * (setImmediate between turns), and a burst paced by the machine's runnable threads
 * (spawn-pace.ts): a batch over the burst's limit waits on a short timer.
 */
import { availableParallelism } from 'node:os';
import { probe, probeStart } from '../loop-probe.js';
import { DEFAULT_SPAWN_PACE, SpawnPace, type SpawnPaceConfig } from '../spawn-pace.js';

/**
 * Spawns are started in turns of at most this many, the event loop turning in between
 * (setImmediate): what each costs on this thread (the program resolved, the environment
 * built, the job handed to the spawner's threads) is small, but 1,000 in one go would
 * still hold ACKs and operator commands. The spawn itself runs off the event loop
 * (spawner.ts); the pid comes back in a later turn.
 */
export const SPAWN_BATCH = 8;

/**
 * The default pacing of bursts of spawns: by this process's CPUs; EINHYRNINGSINS_SPAWN_PACE=0
 * turns it off (to compare), EINHYRNINGSINS_SPAWN_PACE=K allows K runnable threads per CPU.
 */
export function defaultSpawnPace(env: NodeJS.ProcessEnv = process.env): SpawnPaceConfig | null {
  const v = env.EINHYRNINGSINS_SPAWN_PACE;
  const perCpu = v === undefined || v === '' ? DEFAULT_SPAWN_PACE.perCpu : Number(v);
  if (!Number.isFinite(perCpu) || perCpu <= 0) return null;
  return { ...DEFAULT_SPAWN_PACE, perCpu, cpus: availableParallelism() };
}

export interface SpawnTurnsOptions<Q> {
  /** Start this spawn now. */
  start(q: Q): void;
  /** Spawns started whose pid has not come back yet (a burst begins when there are none). */
  inFlight(): number;
  pace: SpawnPaceConfig | null;
  /** The machine's runnable threads. */
  runnable(): number;
  now(): number;
  /** A line for the debug log, when it is on (null: off). */
  debug(): ((message: string) => void) | null;
}

export class SpawnTurns<Q> {
  /** Spawns asked for beyond this turn's batch, in order. */
  private readonly queue: Q[] = [];
  /** Where the queue's head is (shift() of a long array is O(n)). */
  private head = 0;
  private thisTurn = 0;
  private turn: NodeJS.Immediate | null = null;
  /** A batch waiting for the machine's runnable threads to come down. */
  private hold: NodeJS.Timeout | null = null;
  private readonly pace: SpawnPace | null;

  constructor(private readonly opts: SpawnTurnsOptions<Q>) {
    this.pace = opts.pace ? new SpawnPace(opts.pace) : null;
  }

  /** Spawn now if this turn's batch has room (and nothing is waiting before it), else in a later turn. */
  push(q: Q): void {
    const empty = this.head === this.queue.length && !this.hold;
    // A burst begins: nothing queued, held or in flight. The machine's runnable threads now are its base.
    if (this.pace && empty && this.thisTurn === 0 && this.opts.inFlight() === 0) this.pace.begin(this.opts.runnable());
    if (empty && this.thisTurn < SPAWN_BATCH) {
      this.thisTurn++;
      this.nextTurn();
      this.opts.start(q);
      return;
    }
    this.queue.push(q);
    this.nextTurn();
  }

  /** The next spawn waiting, taken off the queue (a reload's flush starts them all now). */
  next(): Q | undefined {
    const q = this.queue[this.head];
    if (q === undefined) return undefined;
    this.head++;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return q;
  }

  /** Drop every spawn waiting and every timer (at exit). */
  clear(): void {
    this.queue.length = 0;
    this.head = 0;
    if (this.turn) clearImmediate(this.turn);
    this.turn = null;
    if (this.hold) clearTimeout(this.hold);
    this.hold = null;
  }

  private nextTurn(): void {
    if (this.hold) return; // the held batch's timer takes the next turn
    this.turn ??= setImmediate(() => {
      const t0 = probeStart();
      this.turn = null;
      this.thisTurn = 0;
      if (this.head < this.queue.length && !this.paced()) {
        probe?.task('spawn-turn', t0);
        return;
      }
      let q: Q | undefined;
      while (this.thisTurn < SPAWN_BATCH && (q = this.next()) !== undefined) {
        this.thisTurn++;
        this.opts.start(q);
      }
      if (this.head < this.queue.length || this.thisTurn > 0) this.nextTurn();
      probe?.task('spawn-turn', t0);
    });
  }

  /**
   * Whether the next batch may go now (spawn-pace.ts): over the burst's limit of runnable
   * threads it waits, and this is called again from a timer.
   */
  private paced(): boolean {
    if (!this.pace) return true;
    const runnable = this.opts.runnable();
    const d = this.pace.decide(this.opts.now(), runnable);
    if (d.go) return true;
    if (this.pace.held === 1) {
      this.opts.debug()?.(`Pacing spawns: ${runnable} threads runnable on the machine (limit ${this.pace.limit} for this burst); ${this.queue.length - this.head} waiting`);
    }
    this.hold = setTimeout(() => {
      this.hold = null;
      this.nextTurn();
    }, d.retryMs);
    return false;
  }
}
