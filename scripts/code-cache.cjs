// Writes the master's V8 code cache: node scripts/code-cache.cjs BUNDLE
// Loads BUNDLE (dist/einhyrningsins.cjs) as bin/code-cache.js does and runs one real, small
// master in a temporary directory (no -b socket; one child that ACKs by the control socket),
// then writes what V8 compiled by then (options, the master's modules, control socket, spawn,
// ACK) to BUNDLE.ARCH-VERSION-SIZE.cache (bin/code-cache.js names it) and stops the master. bin/code-cache.js hands the cache to V8 at every
// start. Made with the Node that builds; another Node version rejects it and compiles as usual.
// Any failure only means no cache (a warning, exit 0): the program works the same without.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const vm = require('vm');
const Module = require('module');
const { cacheName } = require('../bin/code-cache.js');

const file = path.resolve(process.argv[2]);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ein-code-cache-'));
// Removed however this ends (a throw before the master runs left it behind).
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const acked = path.join(dir, 'acked');
// The child ACKs and then says so in a file: asking the master (status) would compile, and so
// cache, code that start-up does not run (more code deserialized at every start: RSS).
const child =
  "const c=require('net').connect(process.env.EINHORN_SOCK_PATH);c.on('close',()=>require('fs').writeFileSync(process.env.ACKED,''));" +
  "c.end(JSON.stringify({command:'worker:ack',pid:process.pid})+'\\n');" +
  'setInterval(()=>{},1e9)';
const args = ['-q', '-n', '1', '-m', 'manual', '-d', path.join(dir, 'c.sock'), '--', process.execPath, '-e', child];

function giveUp(why) {
  process.stdout.write(`code-cache: no code cache for ${file}: ${why}\n`);
  try {
    fs.rmSync(cacheName(file), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    /* best effort */
  }
  process.exit(0);
}

setTimeout(() => giveUp('the master did not get its child acked within 10 s'), 10000).unref();
const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file });
const mod = new Module(file, module);
mod.filename = file;
mod.paths = Module._nodeModulePaths(path.dirname(file));
script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
process.env.ACKED = acked;
mod.exports.main(args).then(() => {
  const wait = () => {
    if (!fs.existsSync(acked)) return setTimeout(wait, 20);
    // The master has handled the ACK by the time the child saw its connection closed.
    setTimeout(() => {
      fs.writeFileSync(cacheName(file), script.createCachedData());
      process.kill(process.pid, 'SIGTERM'); // the master stops its child and exits
    }, 50);
  };
  wait();
}, (err) => giveUp(err.stack || String(err)));
