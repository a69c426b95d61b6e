// Bundle the three programs and the worker library into dist/ at the package root.
//
// Input is tsc's output (packages/*/dist), so the bundle is exactly what the tests
// compiled. Programs are CommonJS: Node's CommonJS loader starts faster than its ESM
// loader (measured: `--version` 1.12x the CPU of `node -e 0` this way, 1.20x as split
// ESM chunks). The master and the ctl are ONE file each (one read); what their start-up
// does not need (the supervisor, syslog) is still evaluated late: esbuild turns each
// `await import()` into a lazily run module initialiser inside the same file, but the
// whole file is read and parsed.
//
// The dyno driver is split at its `await import()`s into CommonJS chunks
// (einhyrningsins-dyno.cjs and einhyrningsins-dyno-HASH.cjs), so that what a start-up
// does not need is not even read: `--version` reads the command line's chunk (about
// 16 KB instead of 270 KB; 1.09x instead of 1.19x node -e 0, measured), a Procfile
// start not the config-file reader, the log files, the fetcher or hsup's HTTP API.
// esbuild splits only ESM, so it is built as ESM chunks first and each chunk is then
// turned into CommonJS (its imports become require() of the sibling chunk, its
// `await import()`s a require() at that point).
// The worker library is built alone, as ESM and CommonJS, with nothing but node:
// imports, so an application loads it without the rest.
//
// Usage: node scripts/bundle.mjs [--metafile]
import { build, transform } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

// The sources are ESM and locate files with import.meta.url, which CommonJS lacks.
const metaUrl = "const __einh_import_meta_url = require('node:url').pathToFileURL(__filename).href;";

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
  // yaml stays a dependency: it is required lazily and synchronously, on the first
  // YAML control line.
  external: ['yaml'],
};

rmSync(dist, { recursive: true, force: true });
const wantMeta = process.argv.includes('--metafile');

// Less source to read, parse and keep in memory (start-up CPU, the master's RSS);
// identifiers stay, so stack traces still name the functions.
const minify = { minifyWhitespace: true, minifySyntax: true };

const programs = await build({
  ...common,
  ...minify,
  entryPoints: {
    einhyrningsins: 'packages/master/dist/src/main.js',
    einhyrningsinsctl: 'packages/ctl/dist/src/cli.js',
  },
  outdir: dist,
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  // import() of a Node module (node:https for --fetch, ...) as require(): the master's bundle is
  // run through vm.Script for its code cache (bin/code-cache.js), where a real import() needs a
  // flag (--experimental-vm-modules) or an experimental loader constant that warns.
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__einh_import_meta_url' },
  banner: { js: metaUrl },
  metafile: wantMeta,
});

/** One program as CommonJS chunks in dist/: ESM chunks first (esbuild splits only those), each then turned into CommonJS. */
async function splitProgram(name, entry) {
  const tmp = mkdtempSync(join(tmpdir(), 'einhyrningsins-bundle-'));
  try {
    const esm = await build({
      ...common,
      ...minify,
      entryPoints: { [name]: entry },
      outdir: tmp,
      splitting: true,
      format: 'esm',
      chunkNames: `${name}-[hash]`,
      define: { 'import.meta.url': '__einh_import_meta_url' },
      metafile: true,
    });
    const files = Object.keys(esm.metafile.outputs).filter((f) => f.endsWith('.js')).map((f) => basename(f, '.js'));
    const rename = new Map(files.map((f) => [`./${f}.js`, `./${f}.cjs`]));
    for (const f of files) {
      // The chunks' own specifiers, quoted as esbuild writes them: "./NAME-HASH.js".
      const code = readFileSync(join(tmp, `${f}.js`), 'utf8').replace(/(["'])(\.\/[\w-]+\.js)\1/g, (m, q, spec) => (rename.has(spec) ? q + rename.get(spec) + q : m));
      const cjs = await transform(code, {
        ...minify,
        format: 'cjs',
        platform: 'node',
        target: 'node20',
        // `await import('./chunk')` becomes a require() where it stands: still run only when reached.
        supported: { 'dynamic-import': false },
        banner: code.includes('__einh_import_meta_url') ? metaUrl : '',
      });
      writeFileSync(join(dist, `${f}.cjs`), cjs.code);
    }
    return esm.metafile;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const dynoMeta = await splitProgram('einhyrningsins-dyno', 'packages/dyno-driver/dist/src/cli.js');

for (const format of ['esm', 'cjs']) {
  await build({
    ...common,
    entryPoints: ['packages/ctl/dist/src/worker.js'],
    outfile: join(dist, format === 'esm' ? 'worker.js' : 'worker.cjs'),
    format,
  });
}
// Types: tsc's declaration of the worker module needs nothing but @types/node.
mkdirSync(dist, { recursive: true });
const dts = readFileSync(join(root, 'packages/ctl/dist/src/worker.d.ts'), 'utf8').replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
writeFileSync(join(dist, 'worker.d.ts'), dts);
writeFileSync(join(dist, 'worker.d.cts'), dts);
writeFileSync(join(dist, 'VERSION'), `${pkg.version}\n`);
if (wantMeta) writeFileSync(join(dist, 'meta.json'), JSON.stringify({ inputs: { ...programs.metafile.inputs, ...dynoMeta.inputs }, outputs: { ...programs.metafile.outputs, ...dynoMeta.outputs } }));
// The master's V8 code cache (bin/code-cache.js): what its start-up compiles, made by running
// one small master (scripts/code-cache.cjs).
execFileSync(process.execPath, [join(root, 'scripts', 'code-cache.cjs'), join(dist, 'einhyrningsins.cjs')], { stdio: ['ignore', 'inherit', 'ignore'] });
