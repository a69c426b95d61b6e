import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';

import { bindShimPath, close, getsockname, listenTcp } from '../src/index.js';

/** A child that binds $PORT itself (Node, IPv6 any address by default) and a second port it picked. */
const APP = `
const net = require('node:net');
const a = net.createServer((c) => c.end('shared ' + process.pid + '\\n'));
a.listen(Number(process.env.PORT), () => {
  const b = net.createServer(() => undefined);
  b.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ a: a.address(), b: b.address().port }) + '\\n');
  });
});
`;

test('the bind shim turns a bind() of the inherited port into that socket; other binds are real', { timeout: 20_000 }, async () => {
  assert.ok(fs.existsSync(bindShimPath), `${bindShimPath} is built`);
  const fd = listenTcp({ host: '127.0.0.1', port: 0, family: 4, reuseAddr: true, reusePort: false, nonBlock: false, v6Only: null, backlog: 16 });
  const { port } = getsockname(fd) as { port: number };
  const child = spawn(process.execPath, ['-e', APP], {
    stdio: ['ignore', 'pipe', 'pipe', fd],
    env: { ...process.env, PORT: String(port), LD_PRELOAD: bindShimPath, EINHYRNINGSINS_BIND_FDS: '3', EINHYRNINGSINS_BIND_VERBOSE: '1' },
  });
  try {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    while (!out.includes('\n')) {
      if (child.exitCode !== null) assert.fail(`the child exited: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const info = JSON.parse(out) as { a: { port: number; family: string }; b: number };
    // The app's socket is the inherited one: its address is the driver's (127.0.0.1, IPv4).
    assert.equal(info.a.port, port);
    assert.equal(info.a.family, 'IPv4');
    assert.notEqual(info.b, port);
    assert.match(err, new RegExp(`einhyrningsins-bind-shim: bind\\(fd \\d+, port ${port}\\): using the shared listening socket \\(fd 3\\)`));
    assert.equal(err.match(/einhyrningsins-bind-shim/g)?.length, 1, 'only the bind of $PORT was substituted');
    // Connections to the inherited socket reach the child.
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      let b = '';
      c.on('data', (d) => (b += d));
      c.on('end', () => resolve(b));
      c.on('error', reject);
    });
    assert.equal(reply, `shared ${child.pid}\n`);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    close(fd);
  }
});
