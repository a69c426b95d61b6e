/** The source tree's shape (test/structure.ts): small modules, no import cycle. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './harness.js';
import { MAX_LINES, importCycles, longFiles, sourceFiles } from './structure.js';

test(`no source file of a package is over ${MAX_LINES} lines`, () => {
  const files = sourceFiles(ROOT);
  assert.ok(files.length > 50, `found only ${files.length} source files`);
  assert.deepEqual(longFiles(files, ROOT), []);
});

test('no import cycle between the modules of the packages', () => {
  assert.deepEqual(importCycles(sourceFiles(ROOT), ROOT), []);
});

test('the checks find what they are for: a cycle through a package import, a long file', () => {
  const root = mkdtempSync(join(tmpdir(), 'structure-'));
  try {
    mkdirSync(join(root, 'packages', 'core', 'src'), { recursive: true });
    mkdirSync(join(root, 'packages', 'master', 'src', 'host'), { recursive: true });
    writeFileSync(join(root, 'packages', 'core', 'src', 'index.ts'), "export { a } from './a.js';\n");
    writeFileSync(join(root, 'packages', 'core', 'src', 'a.ts'), "import type { B } from '@einhyrningsins/master';\nexport const a = 1;\n");
    writeFileSync(join(root, 'packages', 'master', 'src', 'index.ts'), "export * from './host/b.js';\n");
    writeFileSync(join(root, 'packages', 'master', 'src', 'host', 'b.ts'), "import { a } from '@einhyrningsins/core';\nexport type B = typeof a;\n" + '//\n'.repeat(MAX_LINES));
    const files = sourceFiles(root);
    const cycles = importCycles(files, root);
    assert.equal(cycles.length, 1);
    assert.deepEqual(cycles[0]!.sort(), [
      'packages/core/src/a.ts',
      'packages/core/src/a.ts',
      'packages/core/src/index.ts',
      'packages/master/src/host/b.ts',
      'packages/master/src/index.ts',
    ]);
    assert.deepEqual(longFiles(files, root), [{ file: 'packages/master/src/host/b.ts', lines: MAX_LINES + 2 }]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
