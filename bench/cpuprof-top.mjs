// cpuprof-top.mjs PROFILE [N] -- the top self-time functions and files of a `node --cpu-prof`
// profile (how bench/RESULTS.md's "where time goes" tables were made). "(idle)" is time the
// process waited: on child processes (runc, mount) or on I/O done off the main thread.
import { readFileSync } from 'node:fs';

const [file, top = '20'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/cpuprof-top.mjs PROFILE [N]');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
let total = 0;
prof.samples.forEach((id, i) => {
  const dt = prof.timeDeltas[i] ?? 0;
  self.set(id, (self.get(id) ?? 0) + dt);
  total += dt;
});
const byFunction = new Map();
const byFile = new Map();
for (const [id, t] of self) {
  const { functionName, url, lineNumber } = nodes.get(id).callFrame;
  const where = url.split('/').slice(-2).join('/');
  const fn = `${functionName || '(anonymous)'}${where ? ` ${where}:${lineNumber + 1}` : ''}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + t);
  byFile.set(where || functionName, (byFile.get(where || functionName) ?? 0) + t);
}
const show = (title, m) => {
  console.log(`| ${title} | ms | % |\n| --- | ---: | ---: |`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
    console.log(`| ${k} | ${(t / 1000).toFixed(0)} | ${((100 * t) / total).toFixed(1)} |`);
  }
};
console.log(`total ${(total / 1000).toFixed(0)} ms\n`);
show('function (self time)', byFunction);
console.log();
show('file', byFile);
