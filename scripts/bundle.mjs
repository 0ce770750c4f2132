// Bundle the CLI into one ES module (dist/lbuild.mjs): resolving and compiling hundreds of small
// modules was about a third of lbuild's start-up (see bench/RESULTS-cache.md). tsc still checks
// the types and emits dist/src and dist/test for the tests.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: 'dist/lbuild.mjs',
  logLevel: 'warning',
  define: { LBUILD_VERSION: JSON.stringify(version) },
  // CommonJS dependencies (dockerfile-ast, tar-stream) call require() for Node built-ins
  banner: { js: "import { createRequire as __lbuildRequire } from 'node:module'; const require = __lbuildRequire(import.meta.url);" },
});
