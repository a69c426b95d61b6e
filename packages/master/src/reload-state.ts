/** What the master's reload snapshot holds (reload.ts writes and reads it, reload-state-check.ts checks it). */
import type { SerializedCore, SerializedFleet } from '@einhyrningsins/core';
import type { SlotRecord } from './slot-history.js';
import type { FetchMemory } from './fetch-policy.js';

/** A listening socket the children get: from -b (TCP or unix:) or from systemd; it crosses a reload as is. */
/** An open control connection across the exec; `requester`: the one that asked for the reload. */
export interface ConnectionSnapshot {
  fd: number;
  boundPid: number | null;
  /** Bytes of a request line not finished yet (base64), read again first by the new image. */
  unparsed?: string;
  requester: boolean;
  requestId: string | number | null;
  streaming: boolean;
}

export interface BoundSocket {
  fd: number;
  family: 4 | 6 | 'unix';
  /** As given: the -b text, or systemd:NAME. */
  text: string;
  /** Numeric address, or the socket path. */
  address: string;
  port: number;
  flags: string[];
  /** A unix socket this master created (removed at exit if still the same inode). */
  unixFile: { path: string; ino: number } | null;
}

export interface ReloadState {
  format: 1;
  version: string;
  /** Date.now() when the snapshot was taken (for images before `monotonic`). */
  wall: number;
  /**
   * CLOCK_MONOTONIC (ms) when the snapshot was taken: the exec's duration, added to every
   * age, is measured on it (the clock continues across the exec, and a wall-clock step
   * during it is not an age).
   */
  monotonic?: number;
  /** The old image's own argv (without --with-state-fd), re-used by the next reload. */
  argv: string[];
  /** Wall-clock start of the first image (uptime survives reloads). */
  startedAtWall: number;
  reloads: number;
  sockets: BoundSocket[];
  control: { fd: number; path: string; ino: number };
  /**
   * Open control connections; `requestId` set on the one that asked for the reload;
   * `unparsed`: bytes of a request line not finished yet (base64), read again first.
   */
  connections: ConnectionSnapshot[];
  lockfile: { fd: number; path: string } | null;
  pidfile: string | null;
  verbosity: number;
  /** The engine: one group's (what every image so far writes for the master) or a fleet's. */
  core: SerializedCore | SerializedFleet;
  /** Per-slot restarts and last exits (absent from older images). */
  slots?: Record<string, SlotRecord>;
  /** --fetch: what the fetcher knew (refused releases, the content last seen); absent from older images and without --fetch. */
  fetch?: FetchMemory;
  /** What the new image does next for the requester: 'upgrade' (einhorn's upgrade with --reexec-as). */
  then?: 'upgrade';
}

