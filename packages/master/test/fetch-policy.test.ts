import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FetchPolicy, MAX_REFUSED } from '../src/fetch-policy.js';
import { executableProblem } from '../src/executable.js';

test('FetchPolicy: a key seen before is not downloaded again; no key means download and compare', () => {
  const p = new FetchPolicy(1000);
  assert.equal(p.afterProbe('e1'), 'download');
  assert.equal(p.afterDownload('e1', 'h1', 'h1'), 'same');
  assert.equal(p.afterProbe('e1'), 'unchanged');
  assert.equal(p.afterProbe(null), 'download');
  assert.equal(p.afterProbe('e2'), 'download');
  assert.equal(p.afterDownload('e2', 'h2', 'h1'), 'install');
  // Not recorded until handled to the end: an interrupted install is tried again.
  assert.equal(p.afterProbe('e2'), 'download');
  p.installed('e2');
  assert.equal(p.afterProbe('e2'), 'unchanged');
});

test('FetchPolicy: a release that failed is not tried again, under its key or another', () => {
  const p = new FetchPolicy(1000);
  assert.equal(p.afterDownload('e2', 'bad', 'h1'), 'install');
  p.refuse('e2', 'bad');
  assert.equal(p.afterProbe('e2'), 'unchanged');
  // Touched (new ETag), same bytes: still refused.
  assert.equal(p.afterProbe('e3'), 'download');
  assert.equal(p.afterDownload('e3', 'bad', 'h1'), 'refused-before');
  assert.equal(p.afterProbe('e3'), 'unchanged');
  // Something else: installed.
  assert.equal(p.afterDownload('e4', 'good', 'h1'), 'install');
  assert.equal(p.isRefused('bad'), true);
});

test('FetchPolicy: failures back off, doubling, capped; one success resets', () => {
  const p = new FetchPolicy(1000, 5000);
  assert.equal(p.nextDelay(), 1000);
  assert.equal(p.failed(), 2000);
  assert.equal(p.failed(), 4000);
  assert.equal(p.failed(), 5000);
  assert.equal(p.failed(), 5000);
  p.succeeded();
  assert.equal(p.nextDelay(), 1000);
  // The cap is never below the interval.
  const slow = new FetchPolicy(900_000, 600_000);
  assert.equal(slow.failed(), 900_000);
});

test('FetchPolicy: a repeated warning is news once', () => {
  const p = new FetchPolicy(1000);
  assert.equal(p.warnOnce('HTTP 500'), true);
  assert.equal(p.warnOnce('HTTP 500'), false);
  assert.equal(p.warnOnce('HTTP 404'), true);
  p.succeeded();
  assert.equal(p.warnOnce('HTTP 404'), true);
});

function elf(cls: number, data: number, type: number, machine: number): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = cls;
  b[5] = data;
  b[6] = 1;
  if (data === 1) {
    b.writeUInt16LE(type, 16);
    b.writeUInt16LE(machine, 18);
  } else {
    b.writeUInt16BE(type, 16);
    b.writeUInt16BE(machine, 18);
  }
  return b;
}

test('executableProblem: ELF files of this machine and #! scripts pass', () => {
  assert.equal(executableProblem(elf(2, 1, 2, 62), 'x64', 'LE'), null);
  assert.equal(executableProblem(elf(2, 1, 3, 62), 'x64', 'LE'), null, 'a PIE (ET_DYN)');
  assert.equal(executableProblem(elf(2, 1, 2, 183), 'arm64', 'LE'), null);
  assert.equal(executableProblem(elf(2, 2, 2, 22), 's390x', 'BE'), null);
  assert.equal(executableProblem(Buffer.from('#!/bin/sh\necho hi\n'), 'x64', 'LE'), null);
  assert.equal(executableProblem(Buffer.from('#! /usr/bin/env node\n'), 'arm64', 'LE'), null);
});

test('executableProblem: everything else, with the reason', () => {
  assert.match(executableProblem(elf(2, 1, 2, 183), 'x64', 'LE')!, /an ELF executable for AArch64 183; this machine is x64 \(x86-64 62\)/);
  assert.match(executableProblem(elf(1, 1, 2, 62), 'x64', 'LE')!, /a 32-bit ELF file; this machine runs 64-bit ones/);
  assert.match(executableProblem(elf(2, 2, 2, 62), 'x64', 'LE')!, /big-endian ELF file on a little-endian machine/);
  assert.match(executableProblem(elf(2, 1, 1, 62), 'x64', 'LE')!, /not an executable \(e_type 1\)/);
  assert.match(executableProblem(Buffer.from('<html>404</html>'), 'x64', 'LE')!, /neither an ELF executable nor a #! script/);
  assert.match(executableProblem(Buffer.alloc(0), 'x64', 'LE')!, /an empty file/);
  assert.match(executableProblem(Buffer.from('#!\n'), 'x64', 'LE')!, /without an interpreter/);
  assert.match(executableProblem(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2]), 'x64', 'LE')!, /neither/);
});

test('executableProblem: the node binary running this test is an executable for this machine', async () => {
  const { openSync, readSync, closeSync } = await import('node:fs');
  const { endianness } = await import('node:os');
  const fd = openSync(process.execPath, 'r');
  const b = Buffer.alloc(256);
  readSync(fd, b, 0, 256, 0);
  closeSync(fd);
  assert.equal(executableProblem(b, process.arch, endianness()), null);
});

test('FetchPolicy: the memory a reload carries: refused releases whatever the source, the key last seen only from the same URL', () => {
  const a = new FetchPolicy(1000);
  assert.equal(a.afterDownload('k1', 'h-bad', 'h-cur'), 'install');
  a.refuse('k1', 'h-bad');
  const m = a.memory('http://x/app');
  assert.deepEqual(m, { url: 'http://x/app', seenKey: 'k1', refused: ['h-bad'] });
  const same = new FetchPolicy(1000);
  same.remember(JSON.parse(JSON.stringify(m)), 'http://x/app');
  assert.equal(same.afterProbe('k1'), 'unchanged', 'the same content is not downloaded again');
  assert.equal(same.afterDownload('k2', 'h-bad', 'h-cur'), 'refused-before');
  const other = new FetchPolicy(1000);
  other.remember(m, 'http://y/app');
  assert.equal(other.afterProbe('k1'), 'download', 'another URL: its key means nothing here');
  assert.equal(other.afterDownload('k1', 'h-bad', 'h-cur'), 'refused-before');
});

test('FetchPolicy: at most MAX_REFUSED releases remembered, the oldest forgotten', () => {
  const p = new FetchPolicy(1000);
  for (let i = 0; i <= MAX_REFUSED; i++) p.refuse(null, `h${i}`);
  assert.equal(p.isRefused('h0'), false);
  assert.equal(p.isRefused(`h${MAX_REFUSED}`), true);
  assert.equal(p.memory('u').refused.length, MAX_REFUSED);
});
