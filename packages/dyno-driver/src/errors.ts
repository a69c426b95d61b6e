/** Bad command line (exit status 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The app cannot be run as given: missing or invalid Procfile, .env, control directory (exit status 1). */
export class AppError extends Error {
  override name = 'AppError';
}
