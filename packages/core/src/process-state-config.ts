/**
 * The settings the supervisord process-state machine reads: the same names
 * and units as in a [program:x] section (and as the config reader's
 * ProcessConfig has them, so one can be passed as the other).
 */
export interface ProcessStateConfig {
  autostart: boolean;
  /** 'unexpected': restart only when the exit status is not in exitcodes. */
  autorestart: 'true' | 'false' | 'unexpected';
  exitcodes: readonly number[];
  /** Seconds a process must stay up to be RUNNING; an exit sooner is a failed start. */
  startsecs: number;
  /** Failed starts retried (after 1, 2, 3, ... s) before FATAL. */
  startretries: number;
  /** Without SIG, e.g. TERM. */
  stopsignal: string;
  /** Seconds after the stop signal before SIGKILL. */
  stopwaitsecs: number;
  stopasgroup: boolean;
  killasgroup: boolean;
}

export const DEFAULT_PROCESS_STATE_CONFIG: ProcessStateConfig = {
  autostart: true,
  autorestart: 'unexpected',
  exitcodes: [0],
  startsecs: 1,
  startretries: 3,
  stopsignal: 'TERM',
  stopwaitsecs: 10,
  stopasgroup: false,
  killasgroup: false,
};

export interface ProcessStateConfigMs {
  autostart: boolean;
  autorestart: 'true' | 'false' | 'unexpected';
  exitcodes: readonly number[];
  startsecsMs: number;
  startretries: number;
  stopsignal: string;
  stopwaitMs: number;
  stopasgroup: boolean;
  killasgroup: boolean;
}

export function processConfigMs(c: ProcessStateConfig): ProcessStateConfigMs {
  for (const [k, v] of [['startsecs', c.startsecs], ['startretries', c.startretries], ['stopwaitsecs', c.stopwaitsecs]] as const) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${k} must be a number >= 0, got ${v}`);
  }
  return {
    autostart: c.autostart,
    autorestart: c.autorestart,
    exitcodes: [...c.exitcodes],
    startsecsMs: c.startsecs * 1000,
    startretries: c.startretries,
    stopsignal: c.stopsignal,
    stopwaitMs: c.stopwaitsecs * 1000,
    stopasgroup: c.stopasgroup,
    killasgroup: c.killasgroup || c.stopasgroup,
  };
}
