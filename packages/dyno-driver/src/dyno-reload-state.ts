/** What the driver's reload snapshot holds (dyno-reload.ts writes and reads it, dyno-state-check.ts checks it). */
import type { SerializedFleet } from '@einhyrningsins/core';
import type { ConnectionSnapshot, FetchMemory, SlotRecord } from '@einhyrningsins/master';
import type { ConfigControlSnapshot } from './config-control.js';
import type { OutputPipes } from './dyno-output.js';
import type { PhaseResult } from './release-phase.js';
import type { PreparedRelease, ProcessDef } from './release.js';
import type { Listener } from './web-socket.js';

export const DYNO_STATE_FORMAT = 'dyno-1';

export interface DynoReloadState {
  format: typeof DYNO_STATE_FORMAT;
  version: string;
  /** Date.now() and CLOCK_MONOTONIC (ms) when the snapshot was taken: the exec's duration is added to every age (execGapMs). */
  wall: number;
  monotonic: number;
  reloads: number;
  control: { fd: number; path: string; ino: number };
  connections: ConnectionSnapshot[];
  listener: Listener | null;
  release: PreparedRelease | null;
  rejected: { file: string; reason: string; at: string } | null;
  releasePhase: PhaseResult | null;
  verbosity: number;
  fleet: SerializedFleet;
  /** Per group (by gid): what it runs, and its slots' history. */
  groups: Record<string, { process: ProcessDef; releaseVersion: number; slots: Record<string, SlotRecord> }>;
  output: OutputPipes[];
  /** --config: the running config, its programs' sockets and pipes (absent from older images: none). */
  config?: ConfigControlSnapshot | null;
  /** Per program with fetch=: what its fetcher knew (refused releases); absent from older images. */
  fetch?: Record<string, FetchMemory>;
  /** The --http listener (absent from an older image's snapshot). */
  http?: { fd: number } | null;
}
