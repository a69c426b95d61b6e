/**
 * The package as its users get it: `npm pack` at the repository root, installed
 * with a PATH that holds node and npm and nothing else (no compiler, no make, no
 * python), then the installed programs run: --version, man pages, the README's
 * server.js in an app that depends on the tarball, started by the installed master
 * and upgraded under a load loop with zero failed requests. Also: no prebuilt
 * binary for the platform, and a Node older than `engines`.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SupervisorProc, alive, childrenOf, cleanupAll, ctl, load, tempDir, track, until } from './harness.js';

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
      30_000,
      50,
    );
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
