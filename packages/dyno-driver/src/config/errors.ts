/** A place in a config file: the file as shown to the user and a 1-based line. */
export interface Loc {
  file: string;
  line: number;
}

/** `FILE:LINE`, or `FILE` alone for a problem with the whole file (line 0). */
export const where = (loc: Loc): string => (loc.line > 0 ? `${loc.file}:${loc.line}` : loc.file);

/** A config the reader refuses: its message is the whole one-line `FILE:LINE: problem`. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly loc: Loc,
    readonly problem: string,
  ) {
    // one line whatever the file held: control characters (a continuation line's newline) escaped
    super(`${where(loc)}: ${problem.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1))}`);
  }
}

/** A value that is wrong wherever it is written; the caller adds FILE:LINE and the key. */
export class ValueError extends Error {
  override name = 'ValueError';
}

export type Warn = (loc: Loc, message: string) => void;
