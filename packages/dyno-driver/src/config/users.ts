/**
 * The user database as supervisord's `name_to_uid` sees it (getpwnam /
 * getpwuid): through `getent passwd`, so NSS sources (LDAP, sssd, systemd's
 * dynamic users) answer as they do for Python; /etc/passwd when getent is
 * missing. An interface so that tests and the pure reader can use a table.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface UserEntry {
  name: string;
  uid: number;
  /** The primary group, what the process runs as after setgid (supervisord's drop_privileges). */
  gid: number;
  home: string;
}

export interface UserDb {
  /** By name or by numeric id (as text); null when there is no such user. */
  user(nameOrId: string): UserEntry | null;
}

function parsePasswdLine(line: string): UserEntry | null {
  const f = line.split(':');
  if (f.length < 7) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) return null;
  return { name: f[0] as string, uid, gid, home: f[5] as string };
}

function fromPasswdFile(key: string): UserEntry | null {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return null;
  }
  const numeric = /^\d+$/.test(key);
  for (const line of text.split('\n')) {
    const e = parsePasswdLine(line);
    if (e && (numeric ? e.uid === Number(key) : e.name === key)) return e;
  }
  return null;
}

/** The system's users, each answer cached for the life of the object (one config read). */
export function systemUsers(): UserDb {
  const cache = new Map<string, UserEntry | null>();
  return {
    user(key: string): UserEntry | null {
      if (key === '' || key.includes('\0') || key.startsWith('-')) return null;
      const hit = cache.get(key);
      if (hit !== undefined) return hit;
      const r = spawnSync('getent', ['passwd', key], { encoding: 'utf8', timeout: 10_000 });
      let entry: UserEntry | null;
      if (r.error) entry = fromPasswdFile(key);
      else entry = r.status === 0 ? parsePasswdLine(r.stdout.split('\n')[0] ?? '') : null;
      cache.set(key, entry);
      return entry;
    },
  };
}

/** A fixed table (tests; a config read where the user database must not be consulted). */
export function tableUsers(entries: readonly UserEntry[]): UserDb {
  return {
    user(key: string): UserEntry | null {
      const numeric = /^\d+$/.test(key);
      return entries.find((e) => (numeric ? e.uid === Number(key) : e.name === key)) ?? null;
    },
  };
}
