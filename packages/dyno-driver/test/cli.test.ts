import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DYNO_OPTIONS, dynoHelpText, parseDynoArgs } from '../src/options.js';
import { prepareSlug } from '../src/slug.js';
import { VERSION } from '../src/version.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

test('start: types, options anywhere before --; run: the command starts at the first word', () => {
  const o = parseDynoArgs(['start', 'web', '-f', 'P', '--formation=web=2', 'worker', '-vk'], {});
  assert.equal(o.command, 'start');
  assert.deepEqual(o.types, ['web', 'worker']);
  assert.equal(o.procfile, 'P');
  assert.deepEqual([...(o.formation ?? [])], [['web', 2]]);
  assert.equal(o.verbosity, 0);
  assert.equal(o.killChildrenOnExit, true);
  const r = parseDynoArgs(['run', '--env', 'x.env', 'sh', '-c', 'echo -f'], {});
  assert.deepEqual(r.argv, ['sh', '-c', 'echo -f']);
  assert.equal(r.envFile, 'x.env');
  assert.deepEqual(parseDynoArgs(['run', '--', '-weird', 'a'], {}).argv, ['-weird', 'a']);
  assert.equal(parseDynoArgs(['start'], { HSUP_CONTROL_DIR: '/x' }).controlDir, '/x');
  assert.equal(parseDynoArgs(['start', '-f', 'P'], { HSUP_CONTROL_DIR: '/x' }).controlDir, null);
  assert.deepEqual(parseDynoArgs(['start', '-m', 'manual'], {}).ackMode, { kind: 'manual' });
  assert.deepEqual(parseDynoArgs(['start', '-m2.5'], {}).ackMode, { kind: 'timer', seconds: 2.5 });
});

test("hsup's command line: --oneshot, --start-number, --dynodriver simple, start TYPE=N; --stop-signal", () => {
  const o = parseDynoArgs(['--dynodriver', 'simple', '--oneshot', '--start-number', '2', 'start', 'web=3', 'worker'], {});
  assert.equal(o.oneshot, true);
  assert.equal(o.startNumber, 2);
  assert.deepEqual(o.types, ['web', 'worker']);
  assert.deepEqual([...(o.formation ?? [])], [['web', 3]]);
  assert.equal(parseDynoArgs(['start'], {}).stopSignal, 'SIGTERM');
  assert.equal(parseDynoArgs(['start', '--stop-signal', 'usr2'], {}).stopSignal, 'SIGUSR2');
  assert.deepEqual(parseDynoArgs(['run', '-f', 'P', 'web'], {}).argv, ['web']);
  const c = parseDynoArgs(['start', '-c', 'd', 'web=2', 'worker'], {});
  assert.deepEqual([[...c.quantities], c.types, c.formation], [[['web', 2]], ['web', 'worker'], null]);
});

test('usage errors', () => {
  const bad: Array<[string[], RegExp]> = [
    [[], /missing command/],
    [['stop'], /unknown command 'stop'/],
    [['start', '--frob'], /unknown option '--frob'/],
    [['start', '-Z'], /unknown option '-Z'/],
    [['start', '--formation', 'web'], /--formation: expected TYPE=N/],
    [['start', '--formation', 'web=x'], /quantity must be an integer/],
    [['start', '-b', 'nowhere'], /expected ADDR:PORT/],
    [['start', '-b', '127.0.0.1:1', '-b', '127.0.0.1:2'], /-b given more than once/],
    [['start', '-c', 'd', '-f', 'P'], /-f and -c cannot be used together/],
    [['start', '-c', 'd', '--formation', 'web=1'], /--formation is for Procfile apps/],
    [['start', 'we.b'], /invalid process type 'we.b'/],
    [['run'], /run: missing command/],
    [['run', '--formation', 'web=1', '--', 'x'], /--formation does not apply to run/],
    [['start', '-m', 'soon'], /-m expects a number of seconds/],
    [['start', '--help=yes'], /does not take a value/],
    [['start', '-d'], /-d expects a value/],
    [['-d', 'simple', 'start'], /: -d is the control socket path; to choose hsup's dyno driver use --dynodriver simple$/],
    [['start', '--dynodriver', 'docker'], /--dynodriver docker: not supported/],
    [['start', '--dynodriver', 'libcontainer'], /--dynodriver libcontainer: not supported/],
    [['start', '--dynodriver', 'frob'], /unknown dyno driver 'frob'/],
    [['start', '--stop-signal', 'KILL'], /--stop-signal expects a signal name that can be caught/],
    [['start', '--stop-signal', 'NOPE'], /--stop-signal expects a signal name/],
    [['start', '--start-number', '-1'], /--start-number expects an integer/],
    [['start', 'web=x'], /quantity must be an integer/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseDynoArgs(argv, {}), re, argv.join(' '));
});

test('--help, the man page and the option table agree; VERSION matches package.json', () => {
  const man = readFileSync(join(root, 'man', 'einhyrningsins-dyno.1'), 'utf8');
  const help = dynoHelpText();
  const section = man.slice(man.indexOf('.SH OPTIONS'), man.indexOf('.SH', man.indexOf('.SH OPTIONS') + 4));
  const manOptions = new Set(
    [...section.matchAll(/^\.TP\n(.+)$/gm)].flatMap((m) =>
      [...m[1]!.replace(/\\-/g, '-').matchAll(/(?:^|[ "])--([a-z0-9-]+)|(?:^|[ "])-([a-z0-9])(?=[ ",]|$)/g)].map((x) => x[1] ?? x[2]),
    ),
  );
  for (const s of DYNO_OPTIONS) {
    if (s.short) assert.ok(help.includes(`-${s.short}, --${s.long}`), `--help pairs -${s.short} with --${s.long}`);
    else assert.ok(help.includes(`--${s.long}`), `--help lists --${s.long}`);
    assert.ok(manOptions.has(s.long), `man page documents --${s.long}`);
    if (s.short) assert.ok(manOptions.has(s.short), `man page documents -${s.short}`);
  }
  const known = new Set(DYNO_OPTIONS.flatMap((s) => [s.long, s.short].filter(Boolean)));
  for (const o of manOptions) assert.ok(known.has(o as string), `man page option ${o} exists in the program`);
  assert.match(man, new RegExp(`einhyrningsins-dyno ${VERSION.replace(/\./g, '\\.')}`));
  const pkg = JSON.parse(readFileSync(join(root, 'packages', 'dyno-driver', 'package.json'), 'utf8')) as { version: string };
  assert.equal(pkg.version, VERSION);
});

test('slugs: unpacked once per content into releases/VERSION; app/ used when alone; bad archives refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dyno-slug-'));
  try {
    const src = join(dir, 'src', 'app');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'hello.txt'), 'hi\n');
    execFileSync('tar', ['czf', join(dir, 'slug.tgz'), '-C', join(dir, 'src'), 'app']);
    const state = join(dir, 'state');
    const req = { slug: 'slug.tgz', version: 7, baseDir: dir, stateDir: state, defaultCwd: '/nowhere' };
    const a = await prepareSlug(req);
    assert.equal(a.cwd, join(state, 'releases', '7', 'app'));
    assert.equal(readFileSync(join(a.cwd, 'hello.txt'), 'utf8'), 'hi\n');
    // Same content: the same place, not unpacked again.
    writeFileSync(join(a.cwd, 'touched'), '');
    const b = await prepareSlug({ ...req, current: a });
    assert.deepEqual(b, a);
    assert.deepEqual(await prepareSlug(req), a);
    // New content under the same version: unpacked again, the old tree set aside.
    writeFileSync(join(src, 'hello.txt'), 'hello again\n');
    execFileSync('tar', ['czf', join(dir, 'slug.tgz'), '-C', join(dir, 'src'), 'app']);
    utimesSync(join(dir, 'slug.tgz'), new Date(), new Date(Date.now() + 5000));
    const c = await prepareSlug({ ...req, current: a });
    assert.notEqual(c.key, a.key);
    assert.equal(readFileSync(join(c.cwd, 'hello.txt'), 'utf8'), 'hello again\n');
    // No slug, a directory, bad ones.
    assert.deepEqual(await prepareSlug({ ...req, slug: '' }), { cwd: '/nowhere', key: null });
    assert.equal((await prepareSlug({ ...req, slug: src })).cwd, src);
    writeFileSync(join(dir, 'bad.tgz'), 'not gzip');
    await assert.rejects(prepareSlug({ ...req, slug: 'bad.tgz', version: 8 }), /Slug bad\.tgz: cannot unpack/);
    await assert.rejects(prepareSlug({ ...req, slug: 'missing.tgz' }), /Slug missing\.tgz: not found/);
    await assert.rejects(prepareSlug({ ...req, slug: 'https://example.com/s.tgz' }), /remote slugs are not supported/);
    writeFileSync(join(dir, 'x.zip'), '');
    await assert.rejects(prepareSlug({ ...req, slug: 'x.zip' }), /must be a \.tgz or \.tar\.gz archive or a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
