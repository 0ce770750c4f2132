#!/bin/sh
// 2>/dev/null; exec env LBUILD_DEFERRED_CA_CERTS="${NODE_EXTRA_CA_CERTS-}" NODE_EXTRA_CA_CERTS= node "$0" "$@"
// Runs the bundled CLI (npm run build makes dist/lbuild.cjs) with V8's code cache beside it: one
// file compiled from a cache starts much faster than the module tree.
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';

// V8 lets the heap grow to several times what is live before collecting; a walk of 200,000
// files makes that 500+ MB of mostly garbage over ~70 MB live. Growing by a quarter keeps a
// cold 200k-file build near 225 MB at no cost in time (bench/RESULTS.md). Set before the
// bundle is compiled: the code cache is made under the same flags.
setFlagsFromString('--heap-growing-percent=25');

// The first two lines are sh's (to Node, a hashbang and a comment; `env -S` would do it in one
// line, but BusyBox's env has no -S). Started by them, Node did not load NODE_EXTRA_CA_CERTS
// (its parse is ~95 ms of every start on some machines): the variable goes back for child
// processes, and the file is loaded when a request needs TLS (src/util/fetch.ts).
const deferredCa = process.env.LBUILD_DEFERRED_CA_CERTS;
if (deferredCa !== undefined) {
  delete process.env.LBUILD_DEFERRED_CA_CERTS;
  if (deferredCa === '') delete process.env.NODE_EXTRA_CA_CERTS;
  else {
    process.env.NODE_EXTRA_CA_CERTS = deferredCa;
    globalThis[Symbol.for('lbuild.deferredCaCerts')] = deferredCa;
  }
}

const file = fileURLToPath(new URL('../dist/lbuild.cjs', import.meta.url));
const cacheFile = `${file}.cache`;
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  // no cache yet: compiled from source, and the cache written at exit
}
const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
if (cachedData === undefined || script.cachedDataRejected) {
  // another Node version (or none yet): write one for the next run, atomically; a store owned by
  // someone else or a read-only install keeps working without it
  process.once('exit', () => {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      try { unlinkSync(tmp); } catch { /* not written */ }
    }
  });
}
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
