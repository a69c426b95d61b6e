/** A start-up failure: printed as one line, exit status 1, everything created so far undone. */
export class StartupError extends Error {
  override name = 'StartupError';
}
