// Loads a bundled program (dist/NAME.cjs) as require() would, but with the V8 code
// cache that scripts/bundle.mjs writes beside it (dist/NAME.cjs.ARCH-VERSION-SIZE.cache,
// see cacheName): V8 then skips
// compiling what the start-up runs (measured: the master's CPU from spawn to its
// children acked, 6 ms less of about 80). Node 20 has no module.enableCompileCache.
// A cache V8 rejects (another Node version, other V8 flags, a bundle rebuilt without
// it) only costs its read: the code is compiled as usual. Without a cache file, or
// without the bundle, this returns null and the caller require()s as before.
'use strict';
var fs = require('fs');
var path = require('path');
var Module = require('module');

module.exports = loadWithCodeCache;

/**
 * The cache's name for the Node running: V8 checks its own version and flags, not the
 * architecture or the build of the node binary (an x64 cache handed to an arm64 Node under
 * qemu crashed it), so the name carries the architecture, the version and the size of the
 * node binary (official builds of one version for one architecture and libc are the same size).
 */
function cacheName(file) {
  return file + '.' + process.arch + '-' + process.version + '-' + fs.statSync(process.execPath).size + '.cache';
}
module.exports.cacheName = cacheName;

function loadWithCodeCache(file) {
  var cache, source;
  try {
    cache = fs.readFileSync(cacheName(file));
    source = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return null;
  }
  var vm = require('vm');
  var script = new vm.Script(Module.wrap(source), { filename: file, cachedData: cache });
  var mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  mod.loaded = true;
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  return mod.exports;
}
