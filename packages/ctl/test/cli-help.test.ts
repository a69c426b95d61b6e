import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CTL_OPTIONS, VERSION, ctlHelpText, parseCtlArgs } from '../src/cli.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

test('einhyrningsinsctl: --help, the man page and the option table agree', () => {
  const man = readFileSync(`${root}/man/einhyrningsinsctl.1`, 'utf8');
  const start = man.indexOf('.SH OPTIONS');
  const section = man.slice(start, man.indexOf('.SH', start + 4)).replace(/\\-/g, '-');
  const manOptions = new Set(
    [...section.matchAll(/^\.TP\n(.+)$/gm)].flatMap((m) =>
      [...m[1]!.matchAll(/(?:^|[ "])--([a-z0-9-]+)|(?:^|[ "])-([a-z0-9])(?=[ ",]|$)/g)].map((x) => x[1] ?? x[2]),
    ),
  );
  const help = ctlHelpText();
  const known = new Set<string>();
  for (const o of CTL_OPTIONS) {
    known.add(o.long);
    assert.ok(help.includes(`--${o.long}`), `--help lists --${o.long}`);
    assert.ok(manOptions.has(o.long), `man page documents --${o.long}`);
    if (o.short) {
      known.add(o.short);
      assert.ok(manOptions.has(o.short), `man page documents -${o.short}`);
    }
  }
  for (const o of manOptions) assert.ok(known.has(o as string), `man page option ${o} exists`);
  assert.match(man, new RegExp(`einhyrningsinsctl ${VERSION.replace(/\./g, '\\.')}`));
});

test('einhyrningsinsctl options: -d, -e, --json; a command after the options', () => {
  const o = parseCtlArgs(['-d', '/x.sock', '--json', 'set_workers', '3']);
  assert.equal(o.socketPath, '/x.sock');
  assert.equal(o.json, true);
  assert.deepEqual(o.command, ['set_workers', '3']);
  assert.equal(parseCtlArgs(['--socket-path=/y', '-e', 'inc; state']).execute, 'inc; state');
  assert.throws(() => parseCtlArgs(['--bogus']), /unknown option '--bogus'/);
  assert.throws(() => parseCtlArgs(['-e', 'inc', 'state']), /either -e COMMANDS or a COMMAND/);
  assert.throws(() => parseCtlArgs(['--timeout', 'x']), /--timeout expects a number/);
});
