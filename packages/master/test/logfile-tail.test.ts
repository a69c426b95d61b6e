import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { follow, tailBytes, tailLines } from '../src/logfile/tail.js';
import { LogWriter } from '../src/logfile/log-writer.js';

async function inDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'einh-tail-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Wait (bounded) until `cond` holds; the bound is a hang guard, not a timing assertion. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('tailBytes: the last N bytes (1600 by default), the offset to follow from, whether there was more', async () => {
  await inDir(async (dir) => {
    const p = join(dir, 'a.log');
    const text = Array.from({ length: 300 }, (_, i) => `line ${i}\n`).join('');
    writeFileSync(p, text);
    const t = await tailBytes(p);
    assert.equal(t.data.toString(), text.slice(-1600));
    assert.equal(t.offset, text.length);
    assert.equal(t.truncated, true);
    const all = await tailBytes(p, 1e9);
    assert.equal(all.data.toString(), text);
    assert.equal(all.truncated, false);
    assert.equal((await tailBytes(p, 0)).data.length, 0);
    await assert.rejects(tailBytes(join(dir, 'none.log')), { code: 'ENOENT' });
  });
});

test('tailLines: the last N lines, with or without a final newline, fewer when the file has fewer, across read blocks', async () => {
  await inDir(async (dir) => {
    const p = join(dir, 'b.log');
    writeFileSync(p, 'one\ntwo\nthree\n');
    assert.equal((await tailLines(p, 2)).data.toString(), 'two\nthree\n');
    assert.equal((await tailLines(p, 2)).truncated, true);
    assert.equal((await tailLines(p, 10)).data.toString(), 'one\ntwo\nthree\n');
    assert.equal((await tailLines(p, 10)).truncated, false);
    assert.equal((await tailLines(p, 0)).data.toString(), '');
    writeFileSync(p, 'one\ntwo\nthr');
    assert.equal((await tailLines(p, 1)).data.toString(), 'thr');
    assert.equal((await tailLines(p, 2)).data.toString(), 'two\nthr');
    const big = Array.from({ length: 20_000 }, (_, i) => `${i} ${'y'.repeat(i % 13)}\n`);
    writeFileSync(p, big.join(''));
    assert.equal((await tailLines(p, 5000)).data.toString(), big.slice(-5000).join(''));
    writeFileSync(p, '');
    assert.equal((await tailLines(p, 3)).data.toString(), '');
  });
});

test('follow: appended data arrives; rotation and logrotate renames lose nothing; truncation restarts at 0', async () => {
  await inDir(async (dir) => {
    const p = join(dir, 'f.log');
    writeFileSync(p, 'old\n');
    const start = await tailBytes(p);
    let got = '';
    const errors: Error[] = [];
    const f = follow(p, start.offset, (d) => (got += d.toString()), { intervalMs: 5, onError: (e) => errors.push(e) });
    try {
      appendFileSync(p, 'a1\n');
      await until(() => got === 'a1\n', 'a1');
      // rotation by the writer: lines written before and after the rename all arrive, in order
      const w = new LogWriter({ path: p, maxBytes: 40, backups: 5 });
      const lines = Array.from({ length: 30 }, (_, i) => `w${String(i).padStart(2, '0')}\n`);
      for (const l of lines) {
        w.write(l);
        await w.flush();
        // one rotation at most between two polls (a follower cannot see a file rotated in and out unseen)
        await until(() => got.endsWith(l), l);
      }
      await w.close();
      await until(() => got.endsWith('w29\n'), 'w29');
      assert.equal(got, `a1\n${lines.join('')}`);
      // logrotate: rename, then a new file appears later
      renameSync(p, `${p}.moved`);
      appendFileSync(`${p}.moved`, 'late old\n');
      writeFileSync(p, 'fresh\n');
      await until(() => got.endsWith('fresh\n'), 'fresh');
      assert.ok(got.endsWith('w29\nlate old\nfresh\n'), JSON.stringify(got.slice(-40)));
      // truncated in place (copytruncate) and refilled with less than was read: read again from 0
      truncateSync(p, 0);
      appendFileSync(p, 'tr\n');
      await until(() => got.endsWith('fresh\ntr\n'), 'tr');
      assert.deepEqual(errors, []);
    } finally {
      await f.stop();
    }
  });
});
