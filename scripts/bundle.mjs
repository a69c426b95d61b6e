// Bundle the three programs and the worker library into dist/ at the package root.
//
// Input is tsc's output (packages/*/dist), so the bundle is exactly what the tests
// compiled. Each program is ONE CommonJS file: Node's CommonJS loader starts faster
// than its ESM loader (measured: `--version` 1.12x the CPU of `node -e 0` this way,
// 1.20x as split ESM chunks), and a single file is one read. What start-up does not
// need (the supervisor, syslog) is still evaluated late: esbuild turns each
// `await import()` into a lazily run module initialiser inside the same file.
// The worker library is built alone, as ESM and CommonJS, with nothing but node:
// imports, so an application loads it without the rest.
//
// Usage: node scripts/bundle.mjs [--metafile]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

const programs = await build({
  ...common,
  entryPoints: {
    einhyrningsins: 'packages/master/dist/src/main.js',
    einhyrningsinsctl: 'packages/ctl/dist/src/cli.js',
    'einhyrningsins-dyno': 'packages/dyno-driver/dist/src/cli.js',
  },
  outdir: dist,
  outExtension: { '.js': '.cjs' },
  // Less source to read, parse and keep in memory (start-up CPU, the master's RSS);
  // identifiers stay, so stack traces still name the functions.
  minifyWhitespace: true,
  minifySyntax: true,
  format: 'cjs',
  define: { 'import.meta.url': '__einh_import_meta_url' },
  banner: { js: metaUrl },
  metafile: wantMeta,
});

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
if (wantMeta) writeFileSync(join(dist, 'meta.json'), JSON.stringify(programs.metafile));
// The master's V8 code cache (bin/code-cache.js): what its start-up compiles, made by running
// one small master (scripts/code-cache.cjs).
execFileSync(process.execPath, [join(root, 'scripts', 'code-cache.cjs'), join(dist, 'einhyrningsins.cjs')], { stdio: ['ignore', 'inherit', 'ignore'] });
