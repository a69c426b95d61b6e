import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime, monotonicMs } from '../src/clock.js';

test('isoTime writes what Date.prototype.toISOString writes', () => {
  const fixed = [
    0, // 1970-01-01
    -1, // 1969-12-31T23:59:59.999Z
    951_782_400_000, // 2000-02-29 (leap day of a century leap year)
    4_107_542_399_999, // 2100-02-28T23:59:59.999Z (2100 is not a leap year)
    1_798_761_599_999, // 2026-12-31T23:59:59.999Z
    -62_167_219_200_000, // 0000-01-01
    253_402_300_799_999, // 9999-12-31T23:59:59.999Z
  ];
  for (const ms of fixed) assert.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
  // A deterministic spread over years 0..9999 (no Math.random: a failure must repeat).
  let x = 0x2545f491;
  for (let i = 0; i < 20_000; i++) {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    const ms = -62_167_219_200_000 + Math.floor((x / 2 ** 31) * (253_402_300_799_999 + 62_167_219_200_000));
    assert.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
  }
});

test('isoTime defaults to now, and leaves years beyond 0..9999 and invalid dates to toISOString', () => {
  const before = Date.now();
  const now = Date.parse(isoTime());
  assert.ok(now >= before && now <= Date.now());
  assert.equal(isoTime(253_402_300_800_000), '+010000-01-01T00:00:00.000Z');
  assert.equal(isoTime(-62_167_219_200_001), '-000001-12-31T23:59:59.999Z');
  assert.throws(() => isoTime(Number.NaN), RangeError);
});

test('monotonicMs does not go backwards', () => {
  let last = monotonicMs();
  for (let i = 0; i < 1000; i++) {
    const t = monotonicMs();
    assert.ok(t >= last);
    last = t;
  }
});
