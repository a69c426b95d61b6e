/**
 * Servers from Debian's packages (python3-gunicorn, python3-uvicorn,
 * python3-hypercorn, puma, unicorn, nginx-light, golang-go) under the master,
 * each with its README recipe: N=2, upgrades under fresh-connection load fail
 * nothing, keep-alive load is measured (see README for why some servers drop
 * a few), the stop is prompt (the right --stop-signal: no --signal-timeout
 * wait) and leaves no process. A server that is not installed is skipped with
 * the package to install.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll } from './harness.js';
import { RECIPES, exercise } from './servers.js';

afterEach(async () => {
  assert.deepEqual(await cleanupAll(), []);
});

for (const recipe of RECIPES.filter((r) => r.debian || r.tested)) {
  test(`${recipe.name}: N=2, upgrades under load fail no fresh request, a prompt stop leaves nothing`, { timeout: 240_000 }, async (t) => {
    const why = recipe.missing();
    if (why) {
      t.skip(`${recipe.name} ${why}`);
      return;
    }
    const run = await exercise(recipe, { fresh: 2, keepAlive: 1 });
    t.diagnostic(`${recipe.name}: fresh ${run.fresh.failed}/${run.fresh.ok + run.fresh.failed} failed; keep-alive ${run.keepAlive.failed}/${run.keepAlive.ok + run.keepAlive.failed} failed; stop ${run.stopMs} ms`);
    assert.ok(run.fresh.failed <= (recipe.freshRace ?? 0), `fresh connections: ${run.fresh.failed} failed: ${run.fresh.errors.join('; ')}`);
    assert.ok(run.keepAlive.ok > 0);
    assert.deepEqual(run.exit, { code: 0, signal: null });
    // The right stop signal: the master never waited out -t 20 to SIGKILL.
    assert.doesNotMatch(run.stderr, /SIGKILL/);
    assert.ok(run.stopMs < 15_000, `stop took ${run.stopMs} ms`);
    assert.deepEqual(run.left, [], 'no server process left');
    assert.doesNotMatch(run.stderr, /WARN: .*--stop-signal/, 'the recipe gives the stop signal the server needs');
  });
}
