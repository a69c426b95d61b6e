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
  /**
   * Its supplementary groups, set with setgroups() before setgid/setuid as supervisord's
   * drop_privileges does (every group listing the user as a member) and initgroups() (NSS's
   * getgrouplist): `id -G NAME`, /etc/group's members when `id` is missing. Absent: none.
   */
  groups?: number[];
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

/** The user's groups other than its primary one: getgrouplist through `id -G`, else /etc/group's member lists. */
function supplementaryGroups(e: UserEntry): number[] {
  let all: number[] | null = null;
  const r = spawnSync('id', ['-G', '--', e.name], { encoding: 'utf8', timeout: 10_000 });
  if (!r.error && r.status === 0) {
    const ids = r.stdout.trim().split(/\s+/).map(Number);
    if (ids.every((n) => Number.isSafeInteger(n) && n >= 0)) all = ids;
  }
  if (all === null) {
    all = [];
    try {
      for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
        const f = line.split(':');
        const gid = Number(f[2]);
        if (f.length >= 4 && Number.isSafeInteger(gid) && (f[3] as string).split(',').includes(e.name)) all.push(gid);
      }
    } catch {
      /* no group file: no supplementary groups */
    }
  }
  return [...new Set(all)].filter((g) => g !== e.gid).sort((a, b) => a - b);
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
      if (entry) entry.groups = supplementaryGroups(entry);
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
