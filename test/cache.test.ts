import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { StatCache, sourcesDigest } from '../src/context/checksum.js';
import { importBusybox } from './helpers/busybox.js';
import { lbuild, lbuildOk, removeDir, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

interface ReportStep {
  stage: string;
  index: number;
  line: number;
  instruction: string;
  cache: 'hit' | 'miss';
  reason?: string;
  key: string;
  durationMs: number;
  layer: { diffId: string; size: number } | null;
}
interface Report {
  version: number;
  image: { id: string; tags: string[] };
  durationMs: number;
  steps: ReportStep[];
  summary: { steps: number; hits: number; misses: number; hitRatio: number; savedMs: number };
}

let dir: string;
let root: string;
let ctx: string;
let n = 0;

const DOCKERFILE = [
  'FROM busybox', //             1
  'RUN echo base > /base', //    2  (step 2)
  'COPY deps.txt /app/', //      3  (step 3)
  'RUN cat /app/deps.txt > /installed', // 4 (step 4)
  'COPY src/ /app/src/', //      5  (step 5)
  'ARG V=1', //                  6
  'RUN echo $V > /v', //         7  (step 6)
  'RUN echo done > /done', //    8  (step 7)
].join('\n');

async function build(args: string[] = [], env?: Record<string, string>): Promise<Report & { stderr: string }> {
  const report = path.join(dir, `report-${++n}.json`);
  const r = await lbuild(root, ['build', '--progress', 'plain', '--report', report, '-t', 'cached:1', ...args, ctx], env ? { env } : {});
  assert.equal(r.exitCode, 0, r.stderr);
  return { ...(JSON.parse(await fsp.readFile(report, 'utf8')) as Report), stderr: r.stderr };
}
const results = (r: Report): string[] => r.steps.map((s) => `${s.line}:${s.cache}${s.reason ? `:${s.reason}` : ''}`);

before(async () => {
  dir = tempDir();
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  ctx = await writeContext(path.join(dir, 'ctx'), {
    Dockerfile: DOCKERFILE,
    'deps.txt': 'dep-a\n',
    'src/app.ts': 'console.log(1)\n',
    'src/lib/util.ts': 'export {}\n',
    'notes.md': 'ignored\n',
    '.dockerignore': '*.md\nsrc/**/*.tmp\n',
  });
  await sleep(1100); // let the context's ctimes leave the "racy" second so the stat cache keeps them
});
after(async () => {
  await removeDir(dir);
});

test('first build: every step misses with "not built before"; the report has the documented shape', async () => {
  const r = await build();
  assert.equal(r.version, 1);
  assert.match(r.image.id, /^sha256:/);
  assert.deepEqual(r.image.tags, ['cached:1']);
  assert.deepEqual(results(r), ['2:miss:not built before', '3:miss:not built before', '4:miss:not built before', '5:miss:not built before', '7:miss:not built before', '8:miss:not built before']);
  assert.deepEqual(r.summary, { steps: 6, hits: 0, misses: 6, hitRatio: 0, savedMs: 0 });
  for (const s of r.steps) {
    assert.match(s.key, /^[0-9a-f]{64}$/);
    assert.match(s.layer?.diffId ?? '', /^sha256:/);
    assert.equal(typeof s.durationMs, 'number');
  }
  assert.equal(r.steps[0]?.instruction, 'RUN echo base > /base');
  assert.equal(r.steps[0]?.stage, 'stage-0');
});

test('rebuild: all steps hit, nothing is re-read (stat cache), CACHED lines as BuildKit prints them', async () => {
  const r = await build();
  assert.deepEqual(r.steps.map((s) => s.cache), ['hit', 'hit', 'hit', 'hit', 'hit', 'hit']);
  assert.equal(r.summary.hitRatio, 1);
  assert.ok(r.summary.savedMs >= 0);
  assert.equal((r.stderr.match(/^#\d+ CACHED$/gm) ?? []).length, 6);
  assert.match(r.stderr, /context: 0 file\(s\) checksummed, 3 vouched for by the stat cache/);
});

test('editing one file misses exactly the COPY that selects it and the steps after it', async () => {
  await fsp.writeFile(path.join(ctx, 'src/app.ts'), 'console.log(2)\n');
  const r = await build();
  assert.deepEqual(results(r), ['2:hit', '3:hit', '4:hit', '5:miss:source changed: src/app.ts', '7:miss:parent changed (step 5 missed)', '8:miss:parent changed (step 6 missed)']);
  assert.match(r.stderr, /cache miss: source changed: src\/app\.ts/);
});

test('an mtime-only change (touch) hits', async () => {
  const t = new Date(Date.now() - 3_600_000);
  await fsp.utimes(path.join(ctx, 'src/app.ts'), t, t);
  await fsp.utimes(path.join(ctx, 'deps.txt'), t, t);
  const r = await build();
  assert.equal(r.summary.hits, 6);
});

test('a mode change misses; added and removed files are named', async () => {
  await fsp.chmod(path.join(ctx, 'src/lib/util.ts'), 0o755);
  assert.deepEqual(results(await build()).slice(3, 4), ['5:miss:mode changed: src/lib/util.ts']);
  await fsp.writeFile(path.join(ctx, 'src/new.ts'), 'x');
  await fsp.writeFile(path.join(ctx, 'src/other.ts'), 'y');
  assert.deepEqual(results(await build()).slice(3, 4), ['5:miss:source added: src/new.ts (+1 more)']);
  await fsp.rm(path.join(ctx, 'src/new.ts'));
  assert.deepEqual(results(await build()).slice(3, 4), ['5:miss:source removed: src/new.ts']);
});

test('a file excluded by .dockerignore changing does not miss', async () => {
  await build();
  await fsp.writeFile(path.join(ctx, 'notes.md'), 'changed\n');
  await fsp.writeFile(path.join(ctx, 'src/lib/scratch.tmp'), 'tmp\n');
  const r = await build();
  assert.equal(r.summary.hits, 6, results(r).join(' '));
});

test('a changed build-arg misses only from the first RUN that has it in scope; an unused one busts nothing', async () => {
  const unused = await build(['--build-arg', 'NOT_DECLARED=x']);
  assert.equal(unused.summary.hits, 6);
  assert.match(unused.stderr, /build-arg NOT_DECLARED was not consumed/);
  const r = await build(['--build-arg', 'V=2']);
  // every RUN after `ARG V` has V in its environment (as BuildKit), so both name the build-arg
  assert.deepEqual(results(r), ['2:hit', '3:hit', '4:hit', '5:hit', '7:miss:build-arg V changed (1 → 2)', '8:miss:build-arg V changed (1 → 2)']);
});

test('the instruction changing misses with "instruction changed"', async () => {
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE.replace('RUN echo done > /done', 'RUN echo finished > /done'));
  const r = await build(['--build-arg', 'V=2']);
  assert.deepEqual(results(r).slice(-1), ['8:miss:instruction changed']);
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE);
});

test('--no-cache and --no-cache-filter bypass the cache', async () => {
  await build();
  const all = await build(['--no-cache']);
  assert.deepEqual(all.steps.map((s) => s.reason), Array(6).fill('--no-cache'));
  const filtered = await build(['--no-cache-filter', 'stage-0']);
  assert.equal(filtered.summary.misses, 6);
  const other = await build(['--no-cache-filter', 'some-other-stage']);
  assert.equal(other.summary.hits, 6);
});

test('a cache entry whose layer is gone is a miss, not an error', async () => {
  const r0 = await build();
  const victim = r0.steps[5]?.layer?.diffId as string;
  await lbuildOk(root, ['rmi', 'cached:1']);
  await fsp.rm(path.join(root, 'blobs', 'sha256', victim.slice(7)));
  const r = await build();
  assert.deepEqual(results(r).slice(-1), ['8:miss:cache entry gone (pruned or its layer removed)']);
  assert.equal(r.summary.hits, 5);
});

test('rmi keeps the layers the cache points at', async () => {
  const r0 = await build();
  await lbuildOk(root, ['rmi', 'cached:1']);
  for (const s of r0.steps) await fsp.access(path.join(root, 'blobs', 'sha256', (s.layer?.diffId ?? '').slice(7)));
  const r = await build();
  assert.equal(r.summary.hits, 6);
});

test('GITHUB_STEP_SUMMARY gets a Markdown table; cache report names the steps that miss most', async () => {
  const summary = path.join(dir, 'summary.md');
  await fsp.writeFile(path.join(ctx, 'deps.txt'), 'dep-b\n');
  await build([], { GITHUB_STEP_SUMMARY: summary });
  const md = await fsp.readFile(summary, 'utf8');
  assert.match(md, /^### lbuild: cached:1/m);
  assert.match(md, /\| step \| result \| reason \| time \| size \|/);
  assert.match(md, /\| \[stage-0 3\/7\] COPY deps.txt \/app\/ \| \*\*miss\*\* \| source changed: deps.txt \|/);
  assert.match(md, /Cache: \*\*1\/6 steps hit \(17%\)\*\*/);
  assert.doesNotMatch(md, /https?:\/\//, 'no external links');
  const rep = await lbuildOk(root, ['cache', 'report', '--last', '5']);
  assert.match(rep.stdout, /^Last 5 build\(s\):/);
  assert.match(rep.stdout, /Steps that miss most:/);
  assert.match(rep.stdout, /missed \d+ of 5 .*Dockerfile:5 COPY src\/ \/app\/src\//);
});

test('stat cache: vouches for unchanged files across runs, re-reads a changed one, ignores a torn cache file', async () => {
  const dir = tempDir();
  try {
    const ctx = path.join(dir, 'ctx');
    const storeRoot = path.join(dir, 'store');
    const cacheDir = path.join(storeRoot, 'cache');
    await fsp.mkdir(path.join(dir, 'store', 'tmp'), { recursive: true });
    await fsp.mkdir(ctx);
    for (let i = 0; i < 50; i++) await fsp.writeFile(path.join(ctx, `f${i}`), `content ${i}\n`);
    const old = new Date(Date.now() - 60_000); // outside the racy second
    for (let i = 0; i < 50; i++) await fsp.utimes(path.join(ctx, `f${i}`), old, old);
    await sleep(1100); // ctimes too
    const source = { root: ctx, keepOwner: false, what: 'ctx' };
    const first = await StatCache.open(storeRoot, ctx);
    const d1 = await sourcesDigest(source, ['.'], {}, first);
    assert.equal(first.hashed, 50);
    await first.save();
    const second = await StatCache.open(storeRoot, ctx);
    const d2 = await sourcesDigest(source, ['.'], {}, second);
    assert.deepEqual([second.hashed, second.reused], [0, 50]);
    assert.equal(d2.digest, d1.digest);
    // same size and an mtime set back: the ctime still tells the change
    await fsp.writeFile(path.join(ctx, 'f7'), 'CONTENT 7\n');
    await fsp.utimes(path.join(ctx, 'f7'), old, old);
    const third = await StatCache.open(storeRoot, ctx);
    const d3 = await sourcesDigest(source, ['.'], {}, third);
    assert.deepEqual([third.hashed, third.reused], [1, 49]);
    assert.notEqual(d3.digest, d1.digest);
    // a cache file cut short (a crash mid-write) is not trusted at all
    const [name] = await fsp.readdir(path.join(cacheDir, 'stat'));
    const file = path.join(cacheDir, 'stat', name ?? '');
    await fsp.truncate(file, (await fsp.stat(file)).size - 3);
    const torn = await StatCache.open(storeRoot, ctx);
    await sourcesDigest(source, ['.'], {}, torn);
    assert.deepEqual([torn.hashed, torn.reused], [50, 0]);
  } finally {
    await removeDir(dir);
  }
});
