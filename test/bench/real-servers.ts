/**
 * The README's "Running real servers" table: every recipe of test/servers.ts,
 * N=2, 5 upgrades under fresh-connection load and 5 under keep-alive load.
 *
 *   npm run build:ts && npm run build:bundle && node test/dist/bench/real-servers.js [NAME...]
 */
import { cleanupAll } from '../harness.js';
import { RECIPES, exercise } from '../servers.js';

const only = process.argv.slice(2);
const rows: string[] = ['| server | fresh: failed / requests | keep-alive: failed / requests | stop | left running |', '|---|---|---|---|---|'];
for (const recipe of RECIPES) {
  if (only.length && !only.some((o) => recipe.name.toLowerCase().includes(o.toLowerCase()))) continue;
  const why = recipe.missing();
  if (why) {
    rows.push(`| ${recipe.name} | ${why} | | | |`);
    continue;
  }
  try {
    const r = await exercise(recipe, { fresh: 5, keepAlive: 5 });
    const kinds = (p: { errors: string[] }) => [...new Set(p.errors)].join(', ');
    rows.push(
      `| ${recipe.name} | ${r.fresh.failed} / ${r.fresh.ok + r.fresh.failed}${r.fresh.failed ? ` (${kinds(r.fresh)})` : ''} | ` +
        `${r.keepAlive.failed} / ${r.keepAlive.ok + r.keepAlive.failed}${r.keepAlive.failed ? ` (${kinds(r.keepAlive)})` : ''} | ${r.stopMs} ms | ${r.left.length} |`,
    );
  } catch (err) {
    rows.push(`| ${recipe.name} | error: ${(err as Error).message.split('\n')[0]} | | | |`);
  }
  const left = await cleanupAll();
  if (left.length) rows.push(`| (left behind) | ${left.join('; ')} | | | |`);
  process.stderr.write(`${rows.at(-1)}\n`);
}
process.stdout.write(`${rows.join('\n')}\n`);
