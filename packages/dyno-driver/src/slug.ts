/**
 * Slugs: a release's code. A local .tgz/.tar.gz is unpacked with the system
 * `tar` into STATE/releases/VERSION/ and the release runs there; a local
 * directory is used as it is. Remote slugs (URLs) are not fetched.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

export class SlugError extends Error {
  override name = 'SlugError';
}

export interface SlugPlace {
  /** Where the release's processes run. */
  cwd: string;
  /** Identity of the slug's content; null: no slug. */
  key: string | null;
}

export interface SlugRequest {
  slug: string;
  version: number;
  /** Relative slug paths are relative to this (the control directory). */
  baseDir: string;
  /** Unpacked slugs go to STATE/releases/VERSION. */
  stateDir: string;
  /** The cwd of a release without a slug. */
  defaultCwd: string;
  /** The running release's slug: reused when the content is the same. */
  current?: SlugPlace | null;
  /** Give tar this long (default 5 minutes). */
  timeoutMs?: number;
}

const ARCHIVE = /\.(tgz|tar\.gz)$/i;

function runTar(args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile('tar', args, { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
      if (!err) return resolvePromise();
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      const why =
        e.code === 'ENOENT'
          ? 'the tar command was not found'
          : e.killed
            ? `tar took longer than ${timeoutMs / 1000}s`
            : String(stderr).trim().split('\n').filter(Boolean)[0] ?? e.message;
      reject(new SlugError(why));
    });
  });
}

/** Heroku slugs hold ./app/...: when `app` is all there is, the release runs in it. */
function appRoot(dir: string): string {
  const entries = readdirSync(dir, { withFileTypes: true });
  const only = entries.length === 1 ? entries[0] : undefined;
  return only && only.isDirectory() && only.name === 'app' ? join(dir, 'app') : dir;
}

/** Unpack (or find) the slug of a release; throws a SlugError saying why it cannot be used. */
export async function prepareSlug(req: SlugRequest): Promise<SlugPlace> {
  if (req.slug === '') return { cwd: req.defaultCwd, key: null };
  let path = req.slug;
  if (/^file:\/\//i.test(path)) path = decodeURIComponent(path.replace(/^file:\/\//i, ''));
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    throw new SlugError(`Slug ${path}: remote slugs are not supported (give a local .tgz path or directory)`);
  }
  const abs = isAbsolute(path) ? path : resolve(req.baseDir, path);
  let st;
  try {
    st = statSync(abs);
  } catch {
    throw new SlugError(`Slug ${req.slug}: not found (${abs})`);
  }
  if (st.isDirectory()) return { cwd: abs, key: `dir:${abs}` };
  if (!st.isFile() || !ARCHIVE.test(abs)) {
    throw new SlugError(`Slug ${req.slug}: must be a .tgz or .tar.gz archive or a directory`);
  }
  const key = `tgz:${abs}:${st.size}:${st.mtimeMs}`;
  if (req.current && req.current.key === key && existsSync(req.current.cwd)) return req.current;

  const releases = join(req.stateDir, 'releases');
  const target = join(releases, String(req.version));
  const marker = `${target}.slug`;
  if (existsSync(target) && existsSync(marker) && readFileSync(marker, 'utf8') === key) {
    return { cwd: appRoot(target), key };
  }
  try {
    mkdirSync(releases, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new SlugError(`cannot create ${releases}: ${(err as Error).message}`);
  }
  const tmp = join(releases, `.unpack-${req.version}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { mode: 0o755 });
  try {
    await runTar(['-xzf', abs, '-C', tmp, '--no-same-owner'], req.timeoutMs ?? 300_000);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new SlugError(`Slug ${req.slug}: cannot unpack: ${(err as Error).message}`);
  }
  try {
    // Same version, other content: keep the old tree (processes may still run in it) under another name.
    if (existsSync(target)) renameSync(target, join(releases, `.replaced-${req.version}-${Date.now()}`));
    renameSync(tmp, target);
    writeFileSync(marker, key);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new SlugError(`Slug ${req.slug}: cannot install into ${target}: ${(err as Error).message}`);
  }
  return { cwd: appRoot(target), key };
}
