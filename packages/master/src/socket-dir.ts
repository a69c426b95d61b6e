import { readFileSync } from 'node:fs';
import { StartupError } from './errors.js';

function groupName(gid: number): string {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (id !== undefined && Number(id) === gid && name) return `group ${name} (gid ${gid})`;
    }
  } catch {
    /* no /etc/group */
  }
  return `gid ${gid}`;
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

/**
 * Who else can write to the control socket's directory, and so replace the socket.
 * World-writable without the sticky bit (as /tmp has): refused. Group-writable (umask 002,
 * a deploy group): accepted with a warning naming the group, since its members are trusted
 * with the deploy anyway.
 */
export function checkSocketDir(
  dir: string,
  st: { mode: number; gid: number },
  warn: (message: string) => void,
  what = 'control socket directory',
): void {
  if ((st.mode & 0o1000) !== 0) return;
  const hint = what === 'control socket directory' ? 'pass -d to use another path, or chmod o-w or +t it' : 'use another directory, or chmod o-w or +t it';
  if ((st.mode & 0o002) !== 0) {
    throw new StartupError(
      `${what} ${dir} is writable by every user (mode ${octal(st.mode)}) and not sticky, so anyone could replace the socket; refusing (${hint})`,
    );
  }
  if ((st.mode & 0o020) !== 0) {
    warn(`${what} ${dir} is writable by its group (mode ${octal(st.mode)}, ${groupName(st.gid)}): its members can replace the ${what === 'control socket directory' ? 'control socket' : 'socket'}`);
  }
}
