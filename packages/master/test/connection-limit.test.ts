import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVICT_MIN_IDLE_MS, MAX_CONNECTIONS, trim } from '../src/connection-limit.js';

const conn = (lastActive: number, idle = true) => ({ lastActive, idle });

test('trim: at or under the limit, nothing is closed and nothing is scheduled', () => {
  const conns = Array.from({ length: MAX_CONNECTIONS }, (_, i) => conn(i));
  assert.deepEqual(trim(conns, conns.length, 10_000), { evict: [], againInMs: null });
});

test('trim: over the limit, the ones idle longest go first, only as many as are over', () => {
  const now = 100_000;
  const conns = [conn(now - 5000), conn(now - 9000), conn(now - 7000), conn(now - 2000)];
  const t = trim(conns, conns.length, now, 2);
  assert.deepEqual(t.evict, [conns[1], conns[2]]);
  assert.equal(t.againInMs, null);
});

test('trim: a burst of fresh connections is never closed unread; it is looked at again when the oldest has been idle long enough', () => {
  const now = 50_000;
  // 1,000 accepted in the last 300 ms (the ACKs of 1,000 workers), nothing read yet.
  const conns = Array.from({ length: 1000 }, (_, i) => conn(now - 300 + (i * 300) / 1000));
  const t = trim(conns, conns.length, now);
  assert.deepEqual(t.evict, []);
  assert.equal(t.againInMs, EVICT_MIN_IDLE_MS - 300);
  // A second later those still idle (their clients silent) go, idlest first, down to the limit.
  const later = trim(conns, conns.length, now + EVICT_MIN_IDLE_MS);
  assert.equal(later.evict.length, 1000 - MAX_CONNECTIONS);
  assert.deepEqual(later.evict, conns.slice(0, 1000 - MAX_CONNECTIONS));
  assert.equal(later.againInMs, null);
});

test('trim: connections owed a reply are never closed; with none idle it looks again in a second', () => {
  const conns = Array.from({ length: 600 }, () => conn(0, false));
  const t = trim(conns, conns.length, 10_000);
  assert.deepEqual(t.evict, []);
  assert.equal(t.againInMs, EVICT_MIN_IDLE_MS);
});

test('trim: ripe ones are closed now and the rest looked at when the next ripens (at least 50 ms on)', () => {
  const now = 10_000;
  const conns = [conn(now - 2000), conn(now - 990), conn(now - 10)];
  const t = trim(conns, conns.length, now, 1);
  assert.deepEqual(t.evict, [conns[0]]);
  assert.equal(t.againInMs, 50);
});
