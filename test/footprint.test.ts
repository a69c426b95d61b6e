/**
 * What the master's start-up costs in memory, checked by what it calls and loads
 * (deterministic; the RSS itself is measured by `npm run bench`, against idle Node,
 * in one run). Each item below was found costing the master's RSS and taken off the
 * start-up path; this keeps it off.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Script } from 'node:vm';
import Module from 'node:module';
import { join } from 'node:path';
import { ROOT, cleanupAll, fixture, startMaster, tempDir } from './harness.js';

/** bin/code-cache.js (CommonJS): the cache is named for the Node that may use it (architecture, version, binary). */
const codeCache = Module.createRequire(import.meta.url)(join(ROOT, 'bin', 'code-cache.js')) as { cacheName(file: string): string };

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

/** Node modules the master must not load to start, serve ACKs and the everyday commands, and stop. */
const NOT_AT_START: Record<string, string> = {
  perf_hooks: 'performance.now(): about 1 MB (clock.ts has monotonicMs)',
  crypto: 'the pidfile and socket names need no randomness from it',
  v8: 'the memory keeper loads it when a limit is set',
  // vm is not listed: bin/code-cache.js loads it to hand the bundle's V8 code cache to V8
  // (measured: +64 KB of RSS, 7 ms less start-up CPU). What cost ~2 MB was the memory
  // keeper's context (vm.runInNewContext), and the keeper loads v8 before it: listed above.
  dns: 'numeric hosts need no resolver; names load it lazily',
  inspector: 'nothing of the master uses it',
  http: 'the control socket speaks lines, not HTTP, unless asked',
  readline: 'the control protocol splits its own lines',
  tls: 'nothing of the master uses it',
  zlib: 'nothing of the master uses it',
  worker_threads: 'nothing of the master uses it',
};

/** The bundle's modules (packages/master/dist/src/) a master started without these options (or not by a reload) must not initialise. */
const NOT_INITIALISED: Record<string, string> = {
  'releases.js': '--watch / --fetch',
  'watch.js': '--watch',
  'upgrade-tracker.js': '--watch / --fetch',
  'fetcher.js': '--fetch',
  'fetch-source.js': '--fetch',
  'exit-with-child.js': '--exit-with-child',
  'output-prefix.js': '--prefix-output',
  'syslog.js': '--syslog',
  'loop-trace.js': 'EINHYRNINGSINS_LOOP_TRACE (a diagnostic: node:perf_hooks and a 5 ms timer)',
  'reload-state-check.js': 'the snapshot checks: only in the image a reload starts',
  'shape-check.js': 'the snapshot checks: only in the image a reload starts',
};

test('start-up, ACKs, help / state / status and shutdown call nothing that loads ICU date or locale code, and load no heavy module', async () => {
  const dir = tempDir();
  const out = join(dir, 'footprint.json');
  const m = startMaster(['-n', '2', '-m', 'manual', '-b', '127.0.0.1:0', '--', process.execPath, fixture('node-http-child.mjs')], {
    dir,
    env: { FIXTURE_ACK: '1', FOOTPRINT_OUT: out },
    bin: fixture('footprint-master.cjs'),
  });
  await m.waitLog(/Up to 2 \/ 2 manual ACKs/);
  // What operators run all day must not bring ICU in either.
  for (const command of ['help', 'state', 'status']) {
    const [reply] = await m.ctl(command);
    assert.ok(reply && reply.message.length > 0, command);
  }
  m.snapshotChildren();
  assert.deepEqual(await m.stop(), { code: 0, signal: null });
  const seen = JSON.parse(readFileSync(out, 'utf8')) as { calls: string[]; modules: string[]; initialised: string[] };
  assert.deepEqual(seen.calls, [], 'calls that bring in ICU (see isoTime in packages/master/src/clock.ts)');
  const loaded = new Set(seen.modules.filter((s) => s.startsWith('NativeModule ')).map((s) => s.slice('NativeModule '.length)));
  const heavy = Object.keys(NOT_AT_START).filter((mod) => loaded.has(mod));
  assert.deepEqual(heavy.map((mod) => `${mod}: ${NOT_AT_START[mod]}`), []);
  // The probe is live: the master did log timestamps, and did load what it needs.
  assert.match(m.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[MASTER \d+\] INFO: Master \d+ up/m);
  assert.ok(loaded.has('child_process') && loaded.has('net'), [...loaded].join(' '));
  // The bundle's modules of options not given are not even initialised (their code and
  // objects cost start-up RSS; measured with the bench's RSS row).
  const initialised = new Set(seen.initialised.map((f) => f.replace(/^packages\/master\/dist\/src\//, '')));
  assert.ok(initialised.has('master.js') && initialised.has('control-server.js'), [...initialised].join(' '));
  const notAsked = Object.keys(NOT_INITIALISED).filter((f) => initialised.has(f));
  assert.deepEqual(notAsked.map((f) => `${f}: ${NOT_INITIALISED[f]}`), []);
});

test('the master\'s bundle comes with a V8 code cache that this Node accepts (bin/code-cache.js hands it over)', () => {
  const file = join(ROOT, 'dist', 'einhyrningsins.cjs');
  const cache = readFileSync(codeCache.cacheName(file));
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData: cache });
  assert.equal(script.cachedDataRejected, false);
  // vm.Script runs no import() without a flag (--fetch failed with ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING):
  // the bundle has import() of Node's modules as require() (scripts/bundle.mjs).
  assert.doesNotMatch(readFileSync(file, 'utf8'), /[^\w.$]import\(/);
  // A cache V8 rejects only costs its read: the same script compiles without it.
  const stale = new Script(Module.wrap(`${readFileSync(file, 'utf8')}\n// changed`), { filename: file, cachedData: cache });
  assert.equal(stale.cachedDataRejected, true);
});
