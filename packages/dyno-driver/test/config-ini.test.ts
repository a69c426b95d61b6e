import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commentStart } from '../src/config/ini.js';
import { componentRegExp } from '../src/config/glob.js';
import { errorOf, parse, proc, read, warningsOf, withFiles } from './config-fixture.js';

test('ini: comments as configparser with inline prefixes ; and #: only after whitespace', () => {
  assert.equal(commentStart('; whole line'), 0);
  assert.equal(commentStart('   # indented'), 0);
  assert.equal(commentStart('a=b ;c'), 4);
  assert.equal(commentStart('a=b\t#c'), 4);
  assert.equal(commentStart('a=b;c#d'), null);
  assert.equal(commentStart('a=http://x/#frag ;x'), 17);
  const m = parse('[program:a]\ncommand=/bin/echo a;b#c ; the comment\nstopsignal=INT\t# a comment\n');
  assert.equal(proc(m, 'a').command, '/bin/echo a;b#c');
  assert.equal(proc(m, 'a').stopsignal, 'INT');
  assert.equal(errorOf('[program:a]\ncommand=x\nstopsignal=INT#nope\n'), 'main.conf:3: stopsignal: value "INT#nope" is not a valid signal name');
});

test('ini: continuation lines join with newlines; blank lines inside kept, comment lines skipped, trailing dropped', () => {
  const m = parse('[program:a]\ncommand = /bin/sh -c\n  "echo one;\n\n  ; a comment line\n   echo two"\n\n\nautostart=false\n');
  assert.equal(proc(m, 'a').command, '/bin/sh -c\n"echo one;\n\necho two"');
  assert.deepEqual(proc(m, 'a').argv, ['/bin/sh', '-c', 'echo one;\n\necho two']);
  assert.equal(proc(m, 'a').autostart, false);
  // a line indented no deeper than its key's line is a new key
  const n = parse('[program:a]\n  command=/bin/a\n  autostart=false\n');
  assert.equal(proc(n, 'a').command, '/bin/a');
  assert.equal(proc(n, 'a').autostart, false);
});

test('ini: keys are case-insensitive, split at the first = or :, section names case-sensitive', () => {
  const m = parse('[program:A]\nCOMMAND : /bin/x --opt=1\nAutoStart= false\n');
  assert.equal(proc(m, 'A').command, '/bin/x --opt=1');
  assert.equal(proc(m, 'A').autostart, false);
  assert.match(errorOf('[Program:a]\ncommand=x\n'), /^main\.conf:1: unknown section type \[Program:a\]/);
  // [header] takes everything up to the last ] and ignores what follows
  assert.equal(parse('[program:b] trailing\ncommand=/bin/b\n').programs[0]?.name, 'b');
});

test('ini: syntax errors name the file and line', () => {
  assert.equal(errorOf('command=x\n'), 'main.conf:1: a key before any [section] header: "command=x"');
  assert.equal(errorOf('[program:a]\ncommand=x\njunk line\n'), `main.conf:3: not a section header, a 'key = value' line or a continuation: "junk line"`);
  assert.equal(errorOf('[program:a]\n= value\n'), `main.conf:2: not a section header, a 'key = value' line or a continuation: "= value"`);
  assert.equal(errorOf('[program:a]\ncommand=x\n[program:a]\ncommand=y\n'), 'main.conf:3: duplicate section [program:a] (first at main.conf:1)');
  assert.equal(errorOf('[frobnicate]\n'), 'main.conf:1: unknown section type [frobnicate] (known: program:NAME, group:NAME, include, supervisord)');
});

test('ini: [DEFAULT] keys apply to every program; a key set twice keeps the last, with a warning', () => {
  const m = parse('[DEFAULT]\nstartsecs=5\nbogus=1\n[program:a]\ncommand=/bin/a\n[program:b]\ncommand=/bin/b\nstartsecs=7\nstartsecs=8\n');
  assert.equal(proc(m, 'a').startsecs, 5);
  assert.equal(proc(m, 'b').startsecs, 8);
  assert.deepEqual(warningsOf(m), [
    'main.conf:9: startsecs is set twice in [program:b]; the last one is used (as supervisord)',
    'main.conf:3: [DEFAULT] bogus is not a [program:x] key; ignored',
  ]);
});

test('ini: CRLF files read as LF', () => {
  const m = parse('[program:a]\r\ncommand=/bin/a\r\n  --x\r\n');
  assert.equal(proc(m, 'a').command, '/bin/a\n--x');
});

test('include: globs relative to the including file, sorted, %(here)s is each file\'s own directory', () => {
  withFiles(
    {
      'etc/main.conf': '[include]\nfiles = conf.d/*.conf other/x.ini\n[program:main]\ncommand=%(here)s/run\n',
      'etc/conf.d/b.conf': '[program:b]\ncommand=%(here)s/b\n',
      'etc/conf.d/a.conf': '[program:a]\ncommand=/bin/a\ndirectory=%(here)s\n[include]\nfiles=../nested/*.conf\n',
      'etc/conf.d/.hidden.conf': '[program:hidden]\ncommand=x\n',
      'etc/nested/n.conf': '[program:n]\ncommand=%(here)s/n\n',
      'etc/other/x.ini': '[program:x]\ncommand=/bin/x\n',
    },
    (dir) => {
      const m = read(dir, 'etc/main.conf');
      assert.deepEqual(m.files, ['etc/main.conf', 'etc/conf.d/a.conf', 'etc/nested/n.conf', 'etc/conf.d/b.conf', 'etc/other/x.ini']);
      assert.equal(proc(m, 'main').command, `${dir}/etc/run`);
      assert.equal(proc(m, 'b').command, `${dir}/etc/conf.d/b`);
      assert.equal(proc(m, 'a').directory, `${dir}/etc/conf.d`);
      assert.equal(proc(m, 'n').command, `${dir}/etc/nested/n`);
      assert.deepEqual(m.programs.map((p) => p.name).sort(), ['a', 'b', 'main', 'n', 'x']);
    },
  );
});

test('include: no match is a warning; no files= is an error; an unreadable file is an error at the include line', () => {
  const m = parse('[include]\nfiles=none/*.conf\n[program:a]\ncommand=x\n');
  assert.deepEqual(warningsOf(m), ['main.conf:2: no file matches include "none/*.conf"']);
  assert.equal(errorOf('[include]\nfoo=1\n'), 'main.conf:1: [include] section has no files= setting');
  assert.equal(errorOf('[include]\nfiles=dir\n', { 'dir/x': '' }), 'main.conf:2: cannot read included file dir: is a directory');
  assert.equal(errorOf('[include]\nfiles=%(ENV_NOPE)s\n').split('Available')[0], `main.conf:2: files: format string "%(ENV_NOPE)s" for 'include.files' contains names ('ENV_NOPE') which cannot be expanded. `);
});

test('include: a cycle is an error naming the chain; a file reached twice is read once', () => {
  assert.equal(
    errorOf('[include]\nfiles=a.conf\n', { 'a.conf': '[include]\nfiles=b.conf\n', 'b.conf': '[include]\nfiles=a.conf\n' }),
    'b.conf:2: include cycle: a.conf -> b.conf -> a.conf',
  );
  assert.equal(errorOf('[include]\nfiles=main.conf\n'), 'main.conf:2: include cycle: main.conf -> main.conf');
  const m = parse('[include]\nfiles=a.conf b.conf\n', {
    'a.conf': '[include]\nfiles=c.conf\n',
    'b.conf': '[include]\nfiles=c.conf\n',
    'c.conf': '[program:c]\ncommand=x\n',
  });
  assert.deepEqual(m.programs.map((p) => p.name), ['c']);
  assert.deepEqual(warningsOf(m), ['b.conf:2: c.conf is already included; not read twice']);
  assert.equal(
    errorOf('[include]\nfiles=a.conf\n[program:x]\ncommand=1\n', { 'a.conf': '\n[program:x]\ncommand=2\n' }),
    'a.conf:2: duplicate section [program:x] (first at main.conf:3)',
  );
});

test('include: a missing main file and a binary file are one-line errors', () => {
  withFiles({ 'bin.conf': 'a\0b' }, (dir) => {
    assert.throws(() => read(dir, 'nope.conf'), { message: 'nope.conf: cannot read the config file: no such file' });
    assert.throws(() => read(dir, 'bin.conf'), { message: 'bin.conf: not a text file (contains NUL)' });
    writeFileSync(join(dir, 'ok.conf'), '');
    assert.deepEqual(read(dir, 'ok.conf').programs, []);
  });
});

test('glob: fnmatch classes and negation', () => {
  assert.ok(componentRegExp('[ab]*.conf').test('a1.conf'));
  assert.ok(!componentRegExp('[!ab]*.conf').test('a1.conf'));
  assert.ok(componentRegExp('?.c[').test('x.c['));
  assert.ok(!componentRegExp('*.conf').test('x.conf.bak'));
  assert.ok(componentRegExp('a+b(c).conf').test('a+b(c).conf'));
});
