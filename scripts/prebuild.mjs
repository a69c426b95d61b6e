// prepack: put the native binaries built here into prebuilds/<platform-tag>/, which
// the published package carries so that installing it needs no compiler. The tag
// and the file names are the loader's own (packages/native-reuseport), so what is
// packed is exactly what the programs will look for.
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { ARTIFACTS, buildDir, platformTag } = await import(join(root, 'packages/native-reuseport/dist/src/index.js'));
const out = join(root, 'prebuilds', platformTag);
rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const name of ARTIFACTS) {
  const from = join(buildDir, name);
  if (!existsSync(from)) {
    console.error(`prebuild: ${relative(root, from)} is missing: run npm run build first`);
    process.exit(1);
  }
  const to = join(out, name);
  copyFileSync(from, to);
  // Debug symbols are of no use to users and most of the size.
  const s = spawnSync('strip', ['--strip-unneeded', to], { stdio: 'inherit' });
  if (s.error) console.error(`prebuild: strip not found, ${name} left unstripped`);
  chmodSync(to, name.endsWith('.node') ? 0o644 : 0o755);
  console.error(`prebuild: ${relative(root, to)} (${statSync(to).size} bytes)`);
}
