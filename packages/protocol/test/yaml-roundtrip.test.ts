/**
 * Property test of the YAML emitter against real YAML 1.1 parsers, the ones einhorn's
 * clients use: Ruby's psych and Python's PyYAML (and the yaml package, YAML 1.2). Random
 * strings, from a seeded generator biased towards what YAML treats specially, must read
 * back exactly in every position the master writes them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseDocumentText } from '../src/document.js';
import { yamlDocument, yamlFlow, yamlNumber, yamlScalar } from '../src/yaml-emit.js';
import { prng } from './prng.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/', import.meta.url));

const WORDS = [
  '', '-', '--', '---', '...', '*a', '&a', '!t', '!!str', '@x', '`t', "'q", '"q', '%x', '|', '>', '?', ':', '::', ':a', '#',
  '~', '=', '<<', 'y', 'Y', 'n', 'yes', 'Yes', 'YES', 'yEs', 'no', 'NO', 'on', 'ON', 'off', 'Off', 'true', 'True', 'FALSE',
  'null', 'Null', 'NULL', 'nil', '.inf', '-.Inf', '.NaN', '0x1F', '0o17', '017', '0b101', '1_000', '1:20', '190:20:30.15',
  '2001-12-14', '2001-12-14t21:59:43.10-05:00', '12e3', '1e-7', '+1', '-0', '1,000', '.5', '1.', '[a]', '{a: b}', 'a: b',
  'a:b', 'a #b', 'a#b', 'worker:ack', 'http://x:1/y', ' lead', 'trail ', '\t', '\n', '\r\n', 'a\nb', 'a\n', 'a\n\n', '\na',
  '  x\n y', 'x\n  \ny', '\u0085', '\u2028', '\u2029', '\ufeff', '\u00a0', 'é', '日本', '😀', '\u0000', '\u0007', '\u001b', '\u007f',
  '\u009f', '\ufffe', '\uffff', '\\', '\\n', 'ünïcödé text', 'Up to 1 / 2 manual ACKs', 'C:\\path',
];
const CHARS = 'aZ09 _-./:#@&*!|>?%\'"`~=<,[]{}\\\t\n\u0085é😀\u2028';


function randomStrings(n: number, seed = 11): string[] {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const out = [...WORDS];
  while (out.length < n) {
    let s = '';
    const parts = 1 + Math.floor(r() * 4);
    for (let i = 0; i < parts; i++) {
      if (r() < 0.4) s += pick(WORDS);
      else {
        const len = Math.floor(r() * 8);
        for (let j = 0; j < len; j++) s += pick([...CHARS]);
      }
    }
    out.push(s);
  }
  return out;
}

/** Every position the master writes a string in: a top-level value, a flow value, a sequence item. */
function documentFor(s: string): string {
  return `${yamlDocument({ message: s, request_id: s, state: { k: s, list: [s, 12, 0.25, true, null] } })}seq:\n- ${yamlScalar(s)}\n`;
}

function expected(s: string) {
  return { message: s, request_id: s, state: { k: s, list: [s, 12, 0.25, true, null] }, seq: [s] };
}

function available(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function loadAll(cmd: string, args: string[], docs: string[]): Array<{ ok?: unknown; error?: string }> {
  const r = spawnSync(cmd, args, { input: docs.map((doc) => JSON.stringify({ doc })).join('\n') + '\n', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${cmd} failed: ${r.stderr}`);
  return r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
}

const STRINGS = randomStrings(3000);

function check(name: string, results: Array<{ ok?: unknown; error?: string }>): void {
  const bad: string[] = [];
  STRINGS.forEach((s, i) => {
    const r = results[i]!;
    try {
      assert.deepEqual(r.ok, expected(s));
    } catch {
      if (bad.length < 5) bad.push(`${JSON.stringify(s)}:\n${documentFor(s)}-> ${JSON.stringify(r)}`);
      else bad.push('');
    }
  });
  assert.equal(bad.length, 0, `${name}: ${bad.length} of ${STRINGS.length} strings do not round-trip, e.g.\n${bad.slice(0, 5).join('\n')}`);
}

test('emitted strings round-trip in the yaml package (YAML 1.2)', () => {
  check('yaml', STRINGS.map((s) => {
    const r = parseDocumentText(documentFor(s));
    return r.ok ? { ok: r.value } : { error: r.error };
  }));
});

test('emitted strings round-trip in psych (Ruby, einhorn\'s own clients)', { skip: !available('ruby', ['-e', 'require "yaml"']) && 'ruby not installed' }, () => {
  check('psych', loadAll('ruby', [`${FIXTURES}yaml-load.rb`], STRINGS.map(documentFor)));
});

test('emitted strings round-trip in PyYAML (Python clients)', { skip: !available('python3', ['-c', 'import yaml']) && 'python3 with PyYAML (python3-yaml) not installed' }, () => {
  check('PyYAML', loadAll('python3', [`${FIXTURES}yaml-load.py`], STRINGS.map(documentFor)));
});

test('numbers are written so that YAML 1.1 reads numbers', () => {
  assert.equal(yamlNumber(1e-7), '1.0e-07');
  assert.equal(yamlNumber(1.5e21), '1.5e+21');
  assert.equal(yamlNumber(42), '42');
  assert.equal(yamlNumber(0.25), '0.25');
  assert.equal(yamlFlow({ a: [1e-7] }), '{"a": [1.0e-07]}');
});
