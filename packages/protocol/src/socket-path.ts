import { join } from 'node:path';

/** Where einhorn puts its files: $TMPDIR when it is an absolute path, else /tmp. */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TMPDIR && env.TMPDIR.startsWith('/') ? env.TMPDIR : '/tmp';
}

/**
 * The default control socket, on which the master listens and the clients
 * call: einhorn.sock, or einhorn-NAME.sock with -c NAME, in runtimeDir().
 */
export function defaultSocketPath(commandName: string | null, env: NodeJS.ProcessEnv = process.env): string {
  return join(runtimeDir(env), commandName ? `einhorn-${commandName}.sock` : 'einhorn.sock');
}

/** The dyno driver's default control socket: einhyrningsins-dyno.sock in runtimeDir(). */
export function defaultDynoSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(runtimeDir(env), 'einhyrningsins-dyno.sock');
}
