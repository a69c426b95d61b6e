/**
 * einhorn's own wire format from Ruby (test/fixtures/einhorn_client.rb does
 * what Einhorn::Client and Einhorn::Worker do): state and a streamed upgrade
 * from a Ruby client, and ACKs from Ruby workers in manual mode.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { alive, cleanupAll, fixture, readLine, startMaster, until } from './harness.js';

afterEach(async () => {
  const problems = await cleanupAll();
  assert.deepEqual(problems, [], 'nothing may be left behind');
});

const hasRuby = spawnSync('ruby', ['-e', 'require "yaml"; require "json"; require "socket"']).status === 0;
const skip = hasRuby ? false : 'ruby is not installed (apt-get install ruby; .ci/run installs it)';

interface RubyReply {
  message: string;
  wait: boolean;
  request_id: unknown;
}

/** Run the Ruby client against a socket (bounded); returns the worker count and the upgrade replies. */
async function rubyClient(sockPath: string): Promise<{ code: number | null; workers: number; replies: RubyReply[]; stderr: string }> {
  const p = spawn('ruby', [fixture('einhorn_client.rb'), 'client', sockPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  let closed: { code: number | null } | null = null;
  p.once('close', (code) => (closed = { code }));
  try {
    await until(`the Ruby client to finish (stdout ${stdout}, stderr ${stderr})`, () => closed, 30_000);
  } finally {
    if (!closed) p.kill('SIGKILL');
  }
  const [first, ...rest] = stdout.trimEnd().split('\n');
  const m = /^workers (\d+)$/.exec(first ?? '');
  assert.ok(m, `first line: ${first}; stderr: ${stderr}`);
  return {
    code: (closed as { code: number | null } | null)?.code ?? null,
    workers: Number(m[1]),
    replies: rest.map((l) => JSON.parse(l) as RubyReply),
    stderr,
  };
}

function checkUpgrade(replies: RubyReply[]): void {
  assert.ok(replies.length >= 3, JSON.stringify(replies));
  assert.equal(replies[0]!.message, 'Upgrading smoothly, as commanded');
  assert.ok(replies.slice(0, -1).every((r) => r.wait), 'every reply but the last has wait');
  assert.equal(replies.at(-1)!.wait, false);
  assert.equal(replies.at(-1)!.message, 'Upgrade done');
  assert.ok(replies.every((r) => r.request_id === 2), 'request_id echoed');
}

test('a Ruby client (Einhorn::Client framing) reads state and follows an upgrade to the end', { skip, timeout: 60_000 }, async () => {
  const m = startMaster(['-n', '2', '-m', '0', '--', 'sleep', '1000']);
  const old = await m.ready(2);
  const r = await rubyClient(m.sockPath);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.workers, 2);
  checkUpgrade(r.replies);
  const fresh = await m.ready(2);
  assert.ok(fresh.every((w) => w.generation === 1));
  for (const w of old) await until(`old worker ${w.pid} gone`, () => !alive(w.pid));
  await m.stop();
});

test('Ruby workers ACK in einhorn\'s exact form under -m manual, serve, and are upgraded', { skip, timeout: 60_000 }, async () => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', '--ack-timeout', '30', '--', 'ruby', fixture('einhorn_client.rb'), 'worker']);
  const port = await m.port();
  const ws = await m.ready(2, 30_000);
  assert.ok(ws.every((w) => w.acked));
  const [st] = await m.ctl('state');
  assert.equal((st!.message.match(/:acked: true/g) ?? []).length, 2);
  const line = await readLine(port);
  const pid = Number(/^ruby pid=(\d+) index=[01]\n$/.exec(line)?.[1]);
  assert.ok(ws.some((w) => w.pid === pid), `answered by a worker: ${line}`);

  const r = await rubyClient(m.sockPath);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.workers, 2);
  checkUpgrade(r.replies);
  const fresh = await m.ready(2, 30_000);
  assert.ok(fresh.every((w) => w.generation === 1 && w.acked && !ws.some((o) => o.pid === w.pid)));
  for (const w of ws) await until(`old worker ${w.pid} gone`, () => !alive(w.pid));
  assert.match(await readLine(port), /^ruby pid=\d+ /);
  assert.doesNotMatch(m.stderr, /Could not parse|ignoring ACK/);
  await m.stop();
});
