import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProcfile, procfileArgs } from '../src/procfile.js';
import { parseDotenv } from '../src/dotenv.js';
import { parseFormation, parseScale } from '../src/formation.js';
import { parseRelease, validateRelease } from '../src/control-dir.js';
import { describeChanges, diffReleases, releaseFromProcfile, type PreparedRelease } from '../src/release.js';

test('Procfile: types and commands; comments and blank lines ignored', () => {
  const { value: entries, warnings } = parseProcfile('# app\n\nweb: node server.js --port $PORT\nworker:  ./work  \r\nclock_2-x:sleep 1\n');
  assert.deepEqual(warnings, []);
  assert.deepEqual(entries, [
    { type: 'web', command: 'node server.js --port $PORT' },
    { type: 'worker', command: './work' },
    { type: 'clock_2-x', command: 'sleep 1' },
  ]);
  assert.deepEqual(procfileArgs('node a.js'), ['/bin/sh', '-c', 'exec node a.js']);
  assert.deepEqual(procfileArgs('echo "a;b" > x'), ['/bin/sh', '-c', 'exec echo "a;b" > x']);
  assert.deepEqual(procfileArgs("echo hi; exec sleep 1"), ['/bin/sh', '-c', 'echo hi; exec sleep 1']);
  assert.deepEqual(procfileArgs('a && b'), ['/bin/sh', '-c', 'a && b']);
  assert.deepEqual(procfileArgs("trap 'x' TERM"), ['/bin/sh', '-c', "trap 'x' TERM"]);
  assert.deepEqual(procfileArgs('FOO=1 ./web'), ['/bin/sh', '-c', 'FOO=1 ./web']);
});

test('Procfile: what foreman skips is skipped with a warning naming the file and line', () => {
  const p = parseProcfile('web node x\n\nweb.x: node\nweb:\nworker: a\nworker: b\n', 'P');
  assert.deepEqual(p.value, [{ type: 'worker', command: 'b' }]);
  assert.equal(p.warnings.length, 4);
  assert.match(p.warnings[0]!, /^P:1: skipped: expected 'type: command'/);
  assert.match(p.warnings[1]!, /^P:3: skipped: invalid process type "web.x"/);
  assert.match(p.warnings[2]!, /^P:4: skipped: process type 'web' has no command/);
  assert.match(p.warnings[3]!, /^P:6: process type 'worker' is defined again; this definition replaces the one of line 5/);
  const none = parseProcfile('# nothing\n', 'P');
  assert.deepEqual(none.value, []);
  assert.match(none.warnings[0]!, /^P: no process types defined/);
});

test('.env: export, quotes, escapes, comments, multi-line values', () => {
  const env = parseDotenv(
    [
      '# comment',
      'A=1',
      'export B = two words # trailing comment',
      "C='single $HOME # not a comment'",
      'D="line\\nnext \\"q\\" \\\\"',
      'E=',
      'F="multi',
      'line" # c',
      'G=a#b',
    ].join('\n'),
  ).value;
  assert.deepEqual(env, {
    A: '1',
    B: 'two words',
    C: 'single $HOME # not a comment',
    D: 'line\nnext "q" \\',
    E: '',
    F: 'multi\nline',
    G: 'a#b',
  });
});

test('.env: what foreman skips is skipped with a warning; an unterminated quote is taken literally', () => {
  const d = parseDotenv(['JUST_A_WORD', '1X=2', 'MY-K=1', 'X="open', 'Y=after', "Z='a' b"].join('\n'), 'E');
  assert.deepEqual(d.value, { '1X': '2', X: '"open', Y: 'after' });
  assert.equal(d.warnings.length, 4);
  assert.match(d.warnings[0]!, /^E:1: skipped: expected KEY=VALUE/);
  assert.match(d.warnings[1]!, /^E:3: skipped: invalid variable name "MY-K"/);
  assert.match(d.warnings[2]!, /^E:4: unterminated double quote in X; taken literally/);
  assert.match(d.warnings[3]!, /^E:6: skipped: unexpected text after the closing quote of Z/);
});

test('formation and scale words', () => {
  assert.deepEqual([...parseFormation('web=2,worker=0')], [['web', 2], ['worker', 0]]);
  assert.deepEqual([...parseFormation('web=1 clock=3')], [['web', 1], ['clock', 3]]);
  assert.deepEqual(parseScale('web=4'), { type: 'web', quantity: 4 });
  assert.throws(() => parseFormation('web'), /expected TYPE=N/);
  assert.throws(() => parseFormation('web=-1'), /quantity must be an integer from 0 to 10000/);
  assert.throws(() => parseFormation('web=1,web=2'), /web given more than once/);
  assert.throws(() => parseFormation(''), /empty formation/);
  assert.throws(() => parseScale('web=99999'), /quantity must be an integer/);
});

const good = {
  Version: 3,
  Env: { NAME: 'value' },
  Slug: 'app.tgz',
  Stack: 'cedar-14',
  Processes: [
    { Args: ['./web', 'arg'], Quantity: 2, Type: 'web' },
    { Args: ['./worker'], Quantity: 0, Type: 'worker' },
  ],
  Unknown: 'ignored',
};

test('control file: a valid release (hsup example shape)', () => {
  const r = validateRelease(good);
  assert.equal(r.version, 3);
  assert.deepEqual(r.env, { NAME: 'value' });
  assert.equal(r.slug, 'app.tgz');
  assert.equal(r.stack, 'cedar-14');
  assert.deepEqual(r.processes, [
    { type: 'web', args: ['./web', 'arg'], quantity: 2 },
    { type: 'worker', args: ['bash', '-c', './worker'], quantity: 0 },
  ]);
  const minimal = validateRelease({ Version: 0, Processes: [] });
  assert.deepEqual(minimal, { version: 0, releaseArgs: null, env: {}, slug: '', stack: '', processes: [] });
});

test('control file: parsed as hsup (Go encoding/json) parses it', () => {
  // Keys in any case; missing Version, Env, Processes and Quantity are zero values.
  assert.deepEqual(validateRelease({}), { version: 0, releaseArgs: null, env: {}, slug: '', stack: '', processes: [] });
  const r = validateRelease({
    version: 4,
    ENV: { A: 'b' },
    processes: [
      { type: 'web', args: ['node server.js --port $PORT'], quantity: 2 },
      { TYPE: 'worker', ARGS: ['./w', '-x'] },
      { Type: 'release', Args: ['./migrate'] },
    ],
  });
  assert.equal(r.version, 4);
  assert.deepEqual(r.env, { A: 'b' });
  // One Args element: a shell command line (hsup's simple driver runs bash -c).
  assert.deepEqual(r.processes, [
    { type: 'web', args: ['bash', '-c', 'node server.js --port $PORT'], quantity: 2 },
    { type: 'worker', args: ['./w', '-x'], quantity: 0 },
  ]);
  // The release type is the release phase, never in the formation.
  assert.deepEqual(r.releaseArgs, ['bash', '-c', './migrate']);
});

test('control file: every kind of invalid input is refused with the reason', () => {
  const proc = (p: Record<string, unknown>) => ({ ...good, Processes: [{ Args: ['x'], Quantity: 1, Type: 'web', ...p }] });
  const cases: Array<[unknown, RegExp]> = [
    [[], /must be a JSON object/],
    [{ ...good, Version: -1 }, /Version must be an integer >= 0, got -1/],
    [{ ...good, Version: '3' }, /Version must be an integer/],
    [{ ...good, Env: ['A=1'] }, /Env must be an object of strings/],
    [{ ...good, Env: { A: 1 } }, /Env\.A must be a string, got 1/],
    [{ ...good, Env: { 'A=B': 'x' } }, /Env has an invalid variable name/],
    [{ ...good, Slug: 5 }, /Slug must be a string/],
    [{ ...good, Processes: {} }, /Processes must be an array/],
    [{ ...good, Processes: [5] }, /Processes\[0\] must be an object/],
    [proc({ Args: undefined }), /Processes\[0\]\.Args \(web\) must be a non-empty array of strings, got nothing/],
    [proc({ Args: [] }), /Args \(web\) must be a non-empty array of strings/],
    [proc({ Args: ['a', 2] }), /Args \(web\) must be a non-empty array of strings/],
    [proc({ Args: [''] }), /must start with a program/],
    [proc({ Quantity: -1 }), /Quantity \(web\) must be an integer from 0 to 10000, got -1/],
    [proc({ Quantity: 1.5 }), /Quantity \(web\) must be an integer/],
    [proc({ Type: 'we b' }), /Type must be a name/],
    [{ ...good, Processes: [good.Processes[0], good.Processes[0]] }, /Processes\[1\]\.Type 'web' appears more than once/],
  ];
  for (const [value, re] of cases) assert.throws(() => validateRelease(value), re, JSON.stringify(value));
  assert.throws(() => parseRelease('{"Version": 1,'), /^ReleaseError: invalid JSON/);
});

const prep = (over: Partial<PreparedRelease> = {}): PreparedRelease => ({
  version: 1,
  releaseArgs: null,
  env: { A: '1' },
  slug: '',
  stack: '',
  processes: [
    { type: 'web', args: ['web'], quantity: 2 },
    { type: 'worker', args: ['work'], quantity: 1 },
  ],
  cwd: '/app',
  slugKey: null,
  ...over,
});

test('release diff: add, remove, relaunch on command/env/slug, scale on quantity', () => {
  assert.deepEqual(
    diffReleases(null, prep()).map((c) => [c.kind, c.type]),
    [
      ['add', 'web'],
      ['add', 'worker'],
    ],
  );
  const same = diffReleases(prep(), prep({ version: 2 }));
  assert.deepEqual(same.map((c) => c.kind === 'update' && [c.relaunch, c.quantity]), [
    [[], null],
    [[], null],
  ]);
  const env = diffReleases(prep(), prep({ env: { A: '2' } }));
  assert.ok(env.every((c) => c.kind === 'update' && c.relaunch.join() === 'environment'));
  const slug = diffReleases(prep(), prep({ slug: 'b.tgz', cwd: '/b', slugKey: 'k' }));
  assert.ok(slug.every((c) => c.kind === 'update' && c.relaunch.join() === 'slug'));
  const next = prep({
    processes: [
      { type: 'web', args: ['web', '--new'], quantity: 3 },
      { type: 'clock', args: ['tick'], quantity: 1 },
    ],
  });
  const d = diffReleases(prep(), next);
  assert.deepEqual(
    d.map((c) => [c.kind, c.type]),
    [
      ['update', 'web'],
      ['add', 'clock'],
      ['remove', 'worker'],
    ],
  );
  const web = d[0];
  assert.ok(web && web.kind === 'update');
  assert.deepEqual(web.relaunch, ['command']);
  assert.equal(web.quantity, 3);
  assert.equal(describeChanges(d), 'web: command changed, quantity 3; clock: new (1); worker: removed');
  // start web: only the selected types.
  assert.deepEqual(
    diffReleases(prep(), next, (t) => t === 'web').map((c) => c.type),
    ['web'],
  );
});

test('a Procfile app as a release: sh -c exec, formation quantities, default 1', () => {
  const r = releaseFromProcfile(1, parseProcfile('web: a\nworker: b\nrelease: m').value, { X: 'y' }, new Map([['worker', 3]]));
  assert.deepEqual(r.releaseArgs, ['/bin/sh', '-c', 'exec m']);
  assert.deepEqual(r.processes, [
    { type: 'web', args: ['/bin/sh', '-c', 'exec a'], quantity: 1 },
    { type: 'worker', args: ['/bin/sh', '-c', 'exec b'], quantity: 3 },
  ]);
  assert.deepEqual(r.env, { X: 'y' });
});

test('control dir rejection: last_error holds the new reason before rejected appears (a deploy script waits for rejected, then reads last_error)', async () => {
  const { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, statSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { rejectRelease, writeLastError, setAside } = await import('../src/control-dir.js');
  const dir = mkdtempSync(join(tmpdir(), 'ehs-reject-'));
  try {
    writeLastError(join(dir, 'last_error'), 'the reason of an older rejection');
    writeFileSync(join(dir, 'new'), '{}');
    const seen: string[] = [];
    const r = rejectRelease(dir, join(dir, 'new'), 'release phase failed (exit status 1)', {
      writeLastError: (p, reason) => {
        seen.push(`write:${existsSync(join(dir, 'rejected'))}`);
        writeLastError(p, reason);
      },
      setAside: (f, to) => {
        seen.push(`move:${readFileSync(join(dir, 'last_error'), 'utf8').trim()}`);
        setAside(f, to);
      },
    });
    assert.deepEqual(seen, ['write:false', 'move:release phase failed (exit status 1)']);
    assert.deepEqual(r, { where: 'moved to rejected, reason in last_error', stuck: false });
    assert.equal(statSync(join(dir, 'last_error')).mode & 0o777, 0o400);
    assert.equal(existsSync(join(dir, 'new')), false);
    // new cannot be moved (gone): stuck, the reason still written, no temporary file left
    const s = rejectRelease(dir, join(dir, 'new'), 'second');
    assert.equal(s.stuck, true);
    assert.match(s.where, /^could not be moved to rejected: ENOENT/);
    assert.equal(readFileSync(join(dir, 'last_error'), 'utf8'), 'second\n');
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
