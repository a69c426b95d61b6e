/**
 * The source tree's shape, checked: no source file of a package over 500 lines, and no
 * import cycle between modules (type-only imports included: a cycle of types is a
 * cycle of concerns). `node test/dist/structure.js` prints the import graph.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export const MAX_LINES = 500;

/** Every .ts file under packages/NAME/src (not .d.ts). */
export function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const src = join(root, 'packages', pkg, 'src');
    try {
      if (statSync(src).isDirectory()) walk(src);
    } catch {
      /* no src */
    }
  }
  return out.sort();
}

const PACKAGES: Readonly<Record<string, string>> = {
  '@einhyrningsins/core': 'packages/core/src/index.ts',
  '@einhyrningsins/protocol': 'packages/protocol/src/index.ts',
  '@einhyrningsins/master': 'packages/master/src/index.ts',
  '@einhyrningsins/ctl': 'packages/ctl/src/index.ts',
  '@einhyrningsins/dyno-driver': 'packages/dyno-driver/src/index.ts',
  'native-reuseport': 'packages/native-reuseport/src/index.ts',
};

/** What a module imports (static, dynamic and re-exports), as files of the tree. */
export function importsOf(file: string, root: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out = new Set<string>();
  const re = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;
  for (const m of text.matchAll(re)) {
    const spec = (m[1] ?? m[2] ?? m[3]) as string;
    if (spec.startsWith('.')) out.add(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    else if (Object.hasOwn(PACKAGES, spec)) out.add(join(root, PACKAGES[spec] as string));
  }
  return [...out];
}

/** The import cycles (each as the files around it), none when the graph is a DAG. */
export function importCycles(files: readonly string[], root: string): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f, root)]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (!graph.has(g)) continue;
      const s = state.get(g);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(g)), g].map((x) => relative(root, x)));
      else if (s === undefined) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return cycles;
}

export function longFiles(files: readonly string[], root: string): Array<{ file: string; lines: number }> {
  return files
    .map((f) => ({ file: relative(root, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
    .filter((x) => x.lines > MAX_LINES);
}

if (process.argv[1]?.endsWith('structure.js')) {
  const root = resolve(dirname(process.argv[1]), '..', '..');
  const files = sourceFiles(root);
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n').length - 1;
    const deps = importsOf(f, root).map((d) => relative(root, d));
    process.stdout.write(`${String(lines).padStart(4)} ${relative(root, f)}${deps.length ? ` -> ${deps.join(', ')}` : ''}\n`);
  }
}
