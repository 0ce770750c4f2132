// Bundle the CLI into one CommonJS file (dist/lbuild.cjs) that bin/lbuild.js compiles with V8's
// code cache (dist/lbuild.cjs.cache, made here): resolving and compiling hundreds of small modules
// was a third of lbuild's start-up, compiling the one bundle another sixth (bench/RESULTS.md).
// CommonJS because Node 20 can give a code cache to vm.Script but not to an ES module; each
// command's module is imported dynamically, which esbuild turns into code evaluated on first use.
// tsc still checks the types and emits dist/src and dist/test for the tests.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

const lazyWidth = new URL('./string-width-lazy.cjs', import.meta.url).pathname;
const stringWidthPlugin = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, () => ({ path: lazyWidth }));
    b.onResolve({ filter: /^lbuild-real-string-width$/ }, () => ({ path: createRequire(import.meta.url).resolve('string-width') }));
  },
};

await build({
  plugins: [stringWidthPlugin],
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: 'dist/lbuild.cjs',
  logLevel: 'warning',
  // smaller to read and hash at every start; names are kept for --debug's stack traces
  minifyWhitespace: true,
  minifySyntax: true,
  // the ES-module dependencies (yargs, execa) ask import.meta.url where they are
  define: { LBUILD_VERSION: JSON.stringify(version), 'import.meta.url': '__lbuildUrl' },
  banner: { js: "const __lbuildUrl = require('node:url').pathToFileURL(__filename).href;" },
});

// Node 20 runs a vm.Script's import() only with --experimental-vm-modules: an import() esbuild left
// in the bundle (a built-in or an external module) would fail at run time, so it fails the build
const bundled = readFileSync(new URL('../dist/lbuild.cjs', import.meta.url), 'utf8');
const left = /(^|[^\w$.])import\(/m.exec(bundled);
if (left) throw new Error(`dist/lbuild.cjs: a dynamic import() is left at offset ${left.index} (${bundled.slice(left.index, left.index + 60)}): import it statically`);

// the code cache: written by a run that compiles the start-up path (a later Node rewrites it)
const cache = new URL('../dist/lbuild.cjs.cache', import.meta.url);
rmSync(cache, { force: true });
execFileSync(process.execPath, [new URL('../bin/lbuild.js', import.meta.url).pathname, 'images', '--help'], { stdio: 'ignore' });
