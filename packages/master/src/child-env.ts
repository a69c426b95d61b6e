export interface PassedSocket {
  /** fd number in the child (3, 4, ...). */
  childFd: number;
  family: 'AF_INET' | 'AF_INET6' | 'AF_UNIX';
}

export interface ChildEnvInput {
  base: NodeJS.ProcessEnv;
  drop: readonly string[];
  masterPid: number;
  sockPath: string;
  sockets: readonly PassedSocket[];
  slot: number;
}

/**
 * The environment of a child: the master's, less --drop-env-var names and
 * any EINHORN_ variable inherited from outside, plus einhorn's variables.
 */
export function childEnv(input: ChildEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  const drop = new Set(input.drop);
  for (const [k, v] of Object.entries(input.base)) {
    if (v === undefined || drop.has(k) || k.startsWith('EINHORN_')) continue;
    env[k] = v;
  }
  env.EINHORN_MASTER_PID = String(input.masterPid);
  env.EINHORN_SOCK_PATH = input.sockPath;
  env.EINHORN_FD_COUNT = String(input.sockets.length);
  input.sockets.forEach((s, n) => {
    env[`EINHORN_FD_${n}`] = String(s.childFd);
    env[`EINHORN_FD_FAMILY_${n}`] = s.family;
  });
  env.EINHORN_FDS = input.sockets.map((s) => s.childFd).join(' ');
  env.EINHORN_CHILD_INDEX = String(input.slot);
  return env;
}

/**
 * What a child's environment changes from the one it started from, for the spawn's debug
 * line: "sets A, B; drops C" ("sets nothing" when it adds nothing). A function of its own:
 * a closure over the environment inside the spawn would keep it alive for the worker's life.
 */
export function envChanges(base: NodeJS.ProcessEnv, env: Readonly<Record<string, string>>): string {
  const set = Object.keys(env).filter((k) => base[k] !== env[k]);
  const dropped = Object.keys(base).filter((k) => !(k in env));
  return `sets ${set.join(', ') || 'nothing'}${dropped.length ? `; drops ${dropped.join(', ')}` : ''}`;
}
