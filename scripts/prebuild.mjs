// prepack: build the native files for every Linux that runs Node 20 into
// prebuilds/<tag>/, which the published package carries so that installing it
// needs no compiler:
//
//   linux-x64-glibc    gcc                        glibc >= 2.28 (Node 20's own floor)
//   linux-arm64-glibc  aarch64-linux-gnu-gcc      glibc >= 2.28
//   linux-x64-musl     musl-gcc                   Alpine and other musl systems
//   linux-arm64-musl   aarch64-linux-musl-gcc     (Debian: musl-dev:arm64)
//
// All four are built on one x64 Debian machine with Debian's cross compilers and
// musl packages (see README, "Platforms"); the tag and the file names are the
// loader's own (packages/native-reuseport), so what is packed is exactly what
// the programs look for. Per tag:
//
//   native_reuseport.node        the Node-API addon, a shared object against that libc
//   einhyrningsins-launch        the launcher, STATIC against musl: it runs on any libc
//                                of its architecture (both tags of an arch get the same file)
//   einhyrningsins-bind-shim.so  the LD_PRELOAD shim, a shared object against that libc
//
// glibc floor: a file linked against this machine's glibc may ask for symbol
// versions newer than the oldest glibc we support. The launcher is static (no
// __libc_start_main@GLIBC_2.34), the shim binds dlsym to its first version (see
// bind_shim.c), and the addon needs nothing newer than GLIBC_2.28 (fcntl64); every
// glibc file is checked here after the build and refused above 2.28.
//
// A tag whose compiler is missing here is skipped with a line saying what to install,
// and the files already in prebuilds/<tag>/ (built elsewhere) are left alone: this
// script never deletes another tag. `--require-all` makes a missing tag an error
// (for releases); `--only TAG[,TAG]` builds only those.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareVersions, elfInfo, glibcFloor } from '../packages/native-reuseport/dist/src/elf.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'packages', 'native-reuseport', 'native');
const GLIBC_MAX = '2.28';

/** Every tag: the compiler for the shared objects, the static musl compiler for the launcher. */
export const TARGETS = [
  { tag: 'linux-x64-glibc', libc: 'glibc', cc: 'x86_64-linux-gnu-gcc', ccAlt: 'gcc', launchCc: 'musl-gcc', strip: 'strip', machine: 'x86-64', apt: 'gcc musl-tools' },
  { tag: 'linux-arm64-glibc', libc: 'glibc', cc: 'aarch64-linux-gnu-gcc', launchCc: 'aarch64-linux-musl-gcc', strip: 'aarch64-linux-gnu-strip', machine: 'aarch64', apt: 'gcc-aarch64-linux-gnu musl-dev:arm64 (dpkg --add-architecture arm64)' },
  { tag: 'linux-x64-musl', libc: 'musl', cc: 'musl-gcc', launchCc: 'musl-gcc', strip: 'strip', machine: 'x86-64', apt: 'musl-tools' },
  { tag: 'linux-arm64-musl', libc: 'musl', cc: 'aarch64-linux-musl-gcc', launchCc: 'aarch64-linux-musl-gcc', strip: 'aarch64-linux-gnu-strip', machine: 'aarch64', apt: 'gcc-aarch64-linux-gnu musl:arm64 musl-dev:arm64 (dpkg --add-architecture arm64)' },
];

/** musl's libc.so for linking shared objects (Debian keeps arm64's in /lib, x64's in /usr/lib). */
const MUSL_LIBDIRS = {
  'x86-64': ['/usr/lib/x86_64-linux-musl', '/lib/x86_64-linux-musl'],
  aarch64: ['/lib/aarch64-linux-musl', '/usr/lib/aarch64-linux-musl'],
};

const COMMON = ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-D_GNU_SOURCE', `-ffile-prefix-map=${root}=.`];

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      /* not here */
    }
  }
  return null;
}

/** node_api.h: beside this node (a tarball or distro install), npm's nodedir, or node-gyp's cache. */
function nodeInclude() {
  const candidates = [
    join(dirname(dirname(process.execPath)), 'include', 'node'),
    process.env.npm_config_nodedir ? join(process.env.npm_config_nodedir, 'include', 'node') : '',
    join(homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ];
  return candidates.find((d) => d && existsSync(join(d, 'node_api.h'))) ?? null;
}

function compile(cc, args) {
  const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cc} ${args.join(' ')} failed (${r.error ? r.error.message : `exit ${r.status}`})`);
}

function build(t, include, out) {
  const cc = which(t.cc) ? t.cc : t.ccAlt;
  const shared = ['-fPIC', '-shared', '-Wl,-z,noexecstack'];
  let libs = [];
  if (t.libc === 'musl') {
    const dir = MUSL_LIBDIRS[t.machine].find((d) => existsSync(join(d, 'libc.so')));
    if (!dir) throw new Error(`musl's libc.so for ${t.machine} not found (apt-get install ${t.apt})`);
    libs = [`-L${dir}`];
  }
  compile(cc, [...COMMON, ...shared, '-DNAPI_VERSION=8', '-DBUILDING_NODE_EXTENSION', '-I', include,
    join(src, 'native_reuseport.c'), '-o', join(out, 'native_reuseport.node'), ...libs]);
  // glibc: libdl.so.2 is where dlsym@GLIBC_2.2.5/2.17 lives before glibc 2.34 (a stub after).
  const dl = t.libc === 'glibc' ? ['-Wl,--no-as-needed', '-l:libdl.so.2'] : libs;
  compile(cc, [...COMMON, ...shared, join(src, 'bind_shim.c'), '-o', join(out, 'einhyrningsins-bind-shim.so'), ...dl]);
  // Static against musl (about 50 KB); where that compiler is missing, a glibc tag's
  // launcher is static against glibc instead (about 700 KB, no symbol versions either).
  let launchCc = t.launchCc;
  if (!which(launchCc)) {
    launchCc = cc;
    console.error(`prebuild: ${t.tag}: ${t.launchCc} not found, the launcher is static against glibc (apt-get install ${t.apt} for a smaller one)`);
  }
  compile(launchCc, [...COMMON, '-static', join(src, 'launch.c'), '-o', join(out, 'einhyrningsins-launch')]);
  for (const name of ['native_reuseport.node', 'einhyrningsins-bind-shim.so', 'einhyrningsins-launch']) {
    const f = join(out, name);
    const s = spawnSync(t.strip, ['--strip-unneeded', f], { stdio: 'inherit' });
    if (s.status !== 0) throw new Error(`${t.strip} ${name} failed`);
    chmodSync(f, name.endsWith('.node') ? 0o644 : 0o755);
    const info = elfInfo(f);
    if (info.machine !== t.machine) throw new Error(`${name} is for ${info.machine}, not ${t.machine}`);
    const floor = glibcFloor(info);
    if (t.libc === 'musl' && (floor !== null || info.needed.some((n) => /^(libc\.so\.6|ld-linux)/.test(n)))) {
      throw new Error(`${name} for ${t.tag} needs glibc (${floor ?? info.needed.join(' ')})`);
    }
    if (floor !== null && compareVersions(floor, GLIBC_MAX) > 0) {
      throw new Error(`${name} for ${t.tag} needs GLIBC_${floor} (${info.versions.filter((v) => compareVersions(v.replace('GLIBC_', ''), GLIBC_MAX) > 0).join(', ')}); at most ${GLIBC_MAX}`);
    }
  }
}

function main(argv) {
  const requireAll = argv.includes('--require-all');
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : null;
  const include = nodeInclude();
  if (include === null) {
    console.error('prebuild: node_api.h not found (beside node, in $npm_config_nodedir or node-gyp\'s cache): run `npx node-gyp install` once');
    process.exit(1);
  }
  const skipped = [];
  for (const t of TARGETS) {
    if (only && !only.includes(t.tag)) continue;
    // A glibc tag can do without the musl compiler (its launcher is then static against glibc).
    const needed = t.libc === 'glibc' ? [t.cc, t.strip] : [t.cc, t.launchCc, t.strip];
    const absent = needed.filter((c, i) => !(which(c) || (i === 0 && t.ccAlt && which(t.ccAlt))));
    const dest = join(root, 'prebuilds', t.tag);
    if (absent.length > 0) {
      const kept = existsSync(dest) ? `; keeping the files already in ${relative(root, dest)}` : '';
      console.error(`prebuild: ${t.tag} skipped: ${[...new Set(absent)].join(', ')} not found (apt-get install ${t.apt})${kept}`);
      skipped.push(t.tag);
      continue;
    }
    mkdirSync(join(root, 'prebuilds'), { recursive: true });
    const tmp = mkdtempSync(join(tmpdir(), `prebuild-${t.tag}-`));
    try {
      build(t, include, tmp);
      rmSync(dest, { recursive: true, force: true });
      mkdirSync(dest);
      for (const name of ['native_reuseport.node', 'einhyrningsins-launch', 'einhyrningsins-bind-shim.so']) {
        // rename fails across file systems; copy through the shell-free way instead.
        const from = join(tmp, name);
        const to = join(dest, name);
        try {
          renameSync(from, to);
        } catch {
          spawnSync('cp', ['-p', from, to], { stdio: 'inherit' });
        }
        const info = elfInfo(to);
        const floor = glibcFloor(info);
        console.error(`prebuild: ${relative(root, to)} (${statSync(to).size} bytes, ${info.interp ? `interpreter ${info.interp}` : info.needed.length > 0 ? `needs ${info.needed.join(' ')}` : 'static'}, ${floor ? `GLIBC_${floor}` : 'no glibc'})`);
      }
    } catch (err) {
      console.error(`prebuild: ${t.tag} failed: ${err.message}`);
      process.exit(1);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  if (requireAll && skipped.length > 0) {
    console.error(`prebuild: --require-all: ${skipped.join(', ')} not built`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
