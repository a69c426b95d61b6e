/**
 * Real servers nobody here wrote, under the master: one recipe each (the
 * command line README's "Running real servers" shows), and one routine that
 * runs a recipe with N=2 through upgrades under load, on fresh connections and
 * then on keep-alive ones, and stops it. Used by test/real-servers.test.ts
 * (a few upgrades) and test/bench/real-servers.ts (the README's table).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, fixture, freePort, httpGet, load, startMaster, tempDir, until, type LoadResult, type MasterProc } from './harness.js';

const SERVERS = fixture('servers');

export interface Recipe {
  name: string;
  /** Why it cannot run here (not installed), or null. */
  missing(): string | null;
  /** The master's options and the program, for a socket on `port` in `dir` (the master's cwd). */
  command(dir: string, port: number): string[];
  /** Its config names the port: bind a known one (found free) instead of 0. */
  needsPort?: boolean;
  /** Anything to build or write first (in `dir`). */
  prepare?(dir: string, port: number): void;
  /** In the Debian packages the issue names: run by `npm test`. */
  debian: boolean;
  /**
   * Fresh-connection failures the server's own stop causes (default 0): it closes a
   * connection it accepted before reading its request (see README, "Running real servers").
   */
  freshRace?: number;
  /** Not in the Debian packages but run by `npm test` too. */
  tested?: boolean;
}

function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
  return r.status === 0;
}

/** Debian's python3 (the one python3-* packages install into), when it has `module`. */
function debianPython(module: string): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) if (has(py, ['-c', `import ${module}`])) return py;
  return null;
}

const need = (ok: boolean, pkg: string): string | null => (ok ? null : `not installed (apt-get install ${pkg})`);

export const RECIPES: readonly Recipe[] = [
  {
    name: 'gunicorn',
    debian: true,
    missing: () => need(debianPython('gunicorn') !== null, 'python3-gunicorn'),
    command: () => ['--handoff', 'systemd', '--stop-signal', 'TERM', '--', debianPython('gunicorn') as string, '-m', 'gunicorn', '-w', '2', '--chdir', SERVERS, 'app:wsgi'],
  },
  {
    name: 'uvicorn',
    debian: true,
    // Its shutdown() closes every connection without a request in progress, one just accepted too.
    freshRace: 10,
    missing: () => need(debianPython('uvicorn') !== null, 'python3-uvicorn'),
    command: () => ['--stop-signal', 'TERM', '--', debianPython('uvicorn') as string, '-m', 'uvicorn', '--fd', '3', '--app-dir', SERVERS, 'app:asgi'],
  },
  {
    name: 'hypercorn',
    debian: true,
    // hypercorn 0.13 (Debian 12, Python 3.11) closes some connections it accepted just before
    // its SIGTERM without answering them (socket hang up, read ECONNRESET), as uvicorn and puma
    // do: measured with no master (hypercorn alone on a listening socket, 300 fresh requests,
    // SIGTERM after the 150th, the queue then served by a fresh hypercorn): 1 to 153 of 1,500
    // reset in three runs of 5 rounds. Not the client (no timeouts) and not the master's socket.
    freshRace: 10,
    missing: () => need(has('hypercorn', ['--help']), 'python3-hypercorn'),
    prepare: (dir) => copyFileSync(join(SERVERS, 'app.py'), join(dir, 'app.py')),
    command: () => ['--stop-signal', 'TERM', '--', 'hypercorn', '--bind', 'fd://3', 'app:asgi'],
  },
  {
    name: 'puma',
    debian: true,
    // Its stop closes the connections its reactor accepted but has not read a request from.
    freshRace: 10,
    missing: () => need(has('puma', ['--version']), 'puma'),
    command: () => ['--handoff', 'systemd,port', '--stop-signal', 'TERM', '--', 'sh', '-c', `exec puma -b tcp://127.0.0.1:$PORT ${join(SERVERS, 'config.ru')}`],
  },
  {
    name: 'unicorn',
    debian: true,
    missing: () => need(has('unicorn', ['--version']), 'unicorn'),
    command: () => ['--handoff', 'systemd', '--stop-signal', 'QUIT', '--', 'unicorn', join(SERVERS, 'config.ru')],
  },
  {
    name: 'nginx',
    debian: true,
    needsPort: true,
    missing: () => need(has('nginx', ['-v']), 'nginx-light'),
    prepare: (dir, port) => {
      mkdirSync(join(dir, 'tmp'));
      const conf = readFileSync(join(SERVERS, 'nginx.conf'), 'utf8').replaceAll('@DIR@', dir).replaceAll('@PORT@', String(port));
      writeFileSync(join(dir, 'nginx.conf'), conf);
    },
    command: (dir) => ['--handoff', 'port', '--stop-signal', 'QUIT', '--', 'sh', '-c', `exec nginx -p ${dir} -c ${dir}/nginx.conf -g "pid ${dir}/nginx.$$.pid;"`],
  },
  {
    name: 'Go net.FileListener',
    debian: true,
    missing: () => need(has('go', ['version']), 'golang-go'),
    prepare: (dir) => {
      const r = spawnSync('go', ['build', '-o', join(dir, 'goserver'), join(SERVERS, 'fileserver.go')], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, GO111MODULE: 'off' } });
      if (r.status !== 0) throw new Error(`go build: ${r.stderr || r.error?.message}`);
    },
    command: (dir) => ['--stop-signal', 'TERM', '--', join(dir, 'goserver')],
  },
  {
    name: 'Node, worker library',
    debian: false,
    missing: () => null,
    command: () => ['-m', 'manual', '--', process.execPath, fixture('drain-child.mjs')],
  },
  {
    name: 'Node, EINHORN_FD_0 by hand',
    debian: false,
    missing: () => null,
    command: () => ['--', process.execPath, fixture('node-http-child.mjs')],
  },
  {
    name: 'stock $PORT app (Node)',
    debian: false,
    missing: () => null,
    command: () => ['--handoff', 'port', '--stop-signal', 'TERM', '--', process.execPath, fixture('dyno/stock-web.mjs')],
  },
  {
    name: 'Node, a stop that waits for clients to hang up',
    debian: false,
    tested: true,
    missing: () => null,
    command: () => ['--stop-signal', 'TERM', '--', process.execPath, fixture('linger-child.mjs')],
  },
  {
    name: 'python3 -m http.server',
    debian: false,
    missing: () => null,
    prepare: (dir) => writeFileSync(join(dir, 'index.html'), 'http.server\n'),
    command: () => ['--handoff', 'port', '--stop-signal', 'TERM', '--', 'sh', '-c', 'exec python3 -m http.server --bind 127.0.0.1 $PORT'],
  },
];

export { freePort };

export interface Phase {
  ok: number;
  failed: number;
  errors: string[];
}

export interface Run {
  fresh: Phase;
  keepAlive: Phase;
  /** How long the stop took (ms), and its exit. */
  stopMs: number;
  exit: { code: number | null; signal: string | null };
  /** Processes that answered a request and were still alive after the stop. */
  left: number[];
  stderr: string;
}

const pidsIn = (r: LoadResult): number[] => [...r.bodies].map((b) => Number(/(\d+)\s*$/.exec(b)?.[1])).filter((n) => n > 0);

/** Wait until `n` workers of the newest generation are up (older ones may be draining). */
async function newGeneration(m: MasterProc, n: number): Promise<void> {
  await until(
    `${n} workers of the new generation up`,
    async () => {
      const ws = await m.workers();
      const gen = Math.max(...ws.map((w) => w.generation));
      return ws.filter((w) => w.generation === gen && w.state === 'up').length === n;
    },
    60_000,
    50,
  );
}

async function phase(m: MasterProc, port: number, fresh: boolean, upgrades: number, seen: Set<number>): Promise<Phase> {
  const l = load(port, 4, { fresh, maxMs: 120_000 });
  await until('the load loop answered', () => l.result.ok > 10, 30_000);
  for (let i = 0; i < upgrades; i++) {
    const replies = await m.ctl('upgrade', [], { timeoutMs: 60_000 });
    if (replies.at(-1)?.message !== 'Upgrade done') throw new Error(`upgrade ${i + 1}: ${JSON.stringify(replies)}`);
    // The new generation up; the old one may still be draining: a server that waits for its
    // keep-alive clients to hang up (linger-child.mjs, uvicorn's just-accepted connection)
    // is held by this very load until it stops, so its exit is awaited after the load.
    await newGeneration(m, 2);
  }
  // A moment of traffic on the last generation too.
  const n = l.result.ok;
  await until('traffic after the last upgrade', () => l.result.ok > n + 10, 30_000);
  const r = await l.stop();
  await m.ready(2, 30_000);
  for (const p of pidsIn(r)) seen.add(p);
  return { ok: r.ok, failed: r.failed, errors: r.errors.slice(0, 5) };
}

/** N=2, `upgrades` upgrades under fresh-connection load, then as many under keep-alive load, then a stop. */
export async function exercise(recipe: Recipe, upgrades: { fresh: number; keepAlive: number }): Promise<Run> {
  const dir = tempDir('ein-srv-');
  const port = recipe.needsPort ? await freePort() : 0;
  recipe.prepare?.(dir, port);
  // -m 2: a timer ACK long enough for a Python or Ruby server to have started listening.
  const m = startMaster(['-n', '2', '-m', '2', '-t', '20', '-b', `127.0.0.1:${port},r`, ...recipe.command(dir, port)], { dir });
  const bound = await m.port();
  await m.ready(2, 60_000);
  await until(`${recipe.name} answers`, async () => (await httpGet(bound)).length > 0, 30_000);
  const seen = new Set<number>();
  const fresh = await phase(m, bound, true, upgrades.fresh, seen);
  const keepAlive = await phase(m, bound, false, upgrades.keepAlive, seen);
  const t0 = Date.now();
  const exit = await m.stop(30_000);
  const stopMs = Date.now() - t0;
  // Whatever the workers forked (gunicorn's, puma's, nginx's workers) goes with them.
  await until('every server process gone', () => [...seen].every((p) => !alive(p)), 10_000).catch(() => undefined);
  return { fresh, keepAlive, stopMs, exit, left: [...seen].filter(alive), stderr: m.stderr };
}
