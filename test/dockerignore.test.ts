import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadIgnore, makeMatcher, parseIgnoreLines } from '../src/context/ignore.js';
import { execa } from 'execa';
import { BIN, lbuild, lbuildOk, removeDir, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

test('.dockerignore: Docker semantics (root-anchored, **, ! exceptions, last match wins)', () => {
  const m = makeMatcher(parseIgnoreLines('# comment\n*.md\n!README.md\nnode_modules\n**/*.log\nbuild/\n/secret\ndir\n!dir/keep.txt\ntmp?\n[a-c].txt\ndocs/**/draft*\n'));
  const cases: [string, boolean][] = [
    ['x.md', true], ['README.md', false], ['docs/a.md', false], ['node_modules', true], ['node_modules/y.js', true],
    ['sub/node_modules/y.js', false], ['a.log', true], ['deep/er/b.log', true], ['build/out.js', true], ['sub/build/out.js', false],
    ['secret', true], ['dir/other', true], ['dir/keep.txt', false], ['tmp1', true], ['tmp12', false], ['b.txt', true], ['d.txt', false],
    ['docs/x/y/draft1', true], ['docs/final', false], ['Dockerfile', false],
  ];
  for (const [p, want] of cases) assert.equal(m.ignores(p), want, p);
  assert.equal(m.mayReinclude('dir'), true, 'an exception names a path inside dir');
  assert.equal(m.mayReinclude('node_modules'), false);
});

test('.dockerignore: <Dockerfile>.dockerignore beside the Dockerfile wins', async () => {
  const d = tempDir();
  try {
    await fsp.writeFile(path.join(d, '.dockerignore'), 'a\n');
    await fsp.mkdir(path.join(d, 'sub'));
    await fsp.writeFile(path.join(d, 'sub', 'Dockerfile.dev.dockerignore'), 'b\n');
    const own = await loadIgnore(d, path.join(d, 'sub', 'Dockerfile.dev'));
    assert.deepEqual([own.ignores('a'), own.ignores('b')], [false, true]);
    const ctx = await loadIgnore(d, path.join(d, 'Dockerfile'));
    assert.deepEqual([ctx.ignores('a'), ctx.ignores('b')], [true, false]);
    assert.equal((await loadIgnore(path.join(d, 'sub'), path.join(d, 'sub', 'Dockerfile'))).patterns.length, 0);
  } finally {
    await removeDir(d);
  }
});

test('build --print-plan prints the plan; front-end errors are one line FILE:LINE', async () => {
  const d = tempDir();
  try {
    const root = path.join(d, 'store');
    await fsp.writeFile(path.join(d, 'Dockerfile'), 'ARG V=1\nFROM busybox AS a\nRUN echo $V\nFROM scratch\nCOPY --from=a /x /y\n');
    const r = await lbuildOk(root, ['build', '--print-plan', d]);
    assert.match(r.stdout, /^# Dockerfile: 2 stage\(s\), target stage-1, build order a -> stage-1/);
    assert.match(r.stdout, /stage 1 stage-1: FROM scratch deps=\[0\]/);
    const t = await lbuildOk(root, ['build', '--print-plan', '--target', 'a', d]);
    assert.match(t.stdout, /stage 1 stage-1 \(not built\)/);

    const errors: [string, RegExp][] = [
      ['FROM busybox\nBOGUS x\n', /^lbuild: Dockerfile:2: unknown instruction: BOGUS$/],
      ['', /^lbuild: Dockerfile:1: the Dockerfile has no instructions$/],
      ['RUN x\n', /^lbuild: Dockerfile:1: no build stage: RUN before the first FROM$/],
      ['FROM busybox\nCMD ["unterminated"\nSHELL x\n', /^lbuild: Dockerfile:3: SHELL requires the arguments to be in JSON form$/],
    ];
    for (const [src, re] of errors) {
      await fsp.writeFile(path.join(d, 'Dockerfile'), src);
      const e = await lbuild(root, ['build', '--print-plan', d]);
      assert.equal(e.exitCode, 1, src);
      assert.match(e.stderr.trim(), re);
    }
    await fsp.writeFile(path.join(d, 'Dockerfile'), 'FROM busybox AS a\n');
    const tgt = await lbuild(root, ['build', '--print-plan', '--target', 'zzz', d]);
    assert.equal(tgt.exitCode, 1);
    assert.match(tgt.stderr, /target stage "zzz" could not be found/);
    const nofile = await lbuild(root, ['build', '-f', path.join(d, 'missing'), d]);
    assert.equal(nofile.exitCode, 2);
    assert.match(nofile.stderr, /no such Dockerfile/);
  } finally {
    await removeDir(d);
  }
});

// Docker's own translation of a pattern (moby/patternmatcher: `**` at the end → `.*`, `**` elsewhere →
// `(.*/)?`, `*` → `[^/]*`, `?` → `[^/]`) and its MatchesOrParentMatches, written out as the oracle.
function dockerOracle(lines: string[]): (p: string) => boolean {
  const pats = lines.map((l) => {
    const exclusion = l.startsWith('!');
    const clean = path.posix.normalize(exclusion ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
    let re = '^';
    for (let i = 0; i < clean.length; i++) {
      const c = clean[i] as string;
      if (c === '*' && clean[i + 1] === '*') {
        i++;
        if (clean[i + 1] === '/') i++;
        re += i + 1 === clean.length ? '.*' : '(.*/)?';
      } else if (c === '*') re += '[^/]*';
      else if (c === '?') re += '[^/]';
      else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return { exclusion, re: new RegExp(`${re}$`) };
  });
  return (file) => {
    const parents = path.posix.dirname(file).split('/');
    let matched = false;
    for (const p of pats) {
      if (p.exclusion !== matched) continue;
      let m = p.re.test(file);
      if (!m && path.posix.dirname(file) !== '.') for (let i = 0; i < parents.length && !m; i++) m = p.re.test(parents.slice(0, i + 1).join('/'));
      if (m) matched = !p.exclusion;
    }
    return matched;
  };
}

test('22.6: .dockerignore matching agrees with Docker\'s on 3,000 random pattern sets (seeded)', () => {
  let seed = 22_6;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)] as T;
  const segs = ['a', 'b', 'ab', 'ba', 'a.log'];
  const psegs = ['a', 'b', '*', '?', 'a*', '*b', '**', '*.log', '?b', '**.log'];
  const paths: string[] = [];
  for (let i = 0; i < 200; i++) paths.push(Array.from({ length: 1 + rnd(4) }, () => pick(segs)).join('/'));
  let compared = 0;
  for (let t = 0; t < 3000; t++) {
    const lines = Array.from({ length: 1 + rnd(3) }, () => `${rnd(4) === 0 ? '!' : ''}${Array.from({ length: 1 + rnd(3) }, () => pick(psegs)).join('/')}`);
    const ours = makeMatcher(lines);
    const docker = dockerOracle(lines);
    for (const p of paths) {
      assert.equal(ours.ignores(p), docker(p), `${JSON.stringify(lines)} on ${p}`);
      compared++;
    }
  }
  assert.equal(compared, 600_000);
});

test('22.6: pathological and huge .dockerignore files are fast or refused in one line; signals still stop a long walk', async () => {
  const deep = ['**/'.repeat(12), 'nomatch'].join('');
  const m = makeMatcher([deep]);
  const t0 = Date.now();
  const long = Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');
  for (let i = 0; i < 2000; i++) assert.equal(m.ignores(`${long}/f${i}`), false);
  assert.ok(Date.now() - t0 < 2000, `2,000 deep paths against ${deep} took ${Date.now() - t0} ms`);
  // a million plain lines is one set
  const many = Array.from({ length: 1_000_000 }, (_, i) => `file${i}/x`);
  const big = makeMatcher(many);
  assert.equal(big.ignores('file999999/x/y'), true);
  assert.equal(big.ignores('file999999/z'), false);
  assert.throws(() => makeMatcher(Array.from({ length: 10_001 }, (_, i) => `f*${i}`), '/ctx/.dockerignore'), /^LocatedError: \/ctx\/\.dockerignore: more than 10000 wildcard patterns/);
  // a walk of many files answers SIGTERM within a second
  const d = tempDir();
  try {
    const ctx = await writeContext(path.join(d, 'wide'), { Dockerfile: 'FROM scratch\nCOPY . /x\n', '.dockerignore': `${deep}\n` });
    await execa('sh', ['-c', 'for d in $(seq 1 60); do mkdir -p "w/$d"; (cd "w/$d" && seq 1 1000 | xargs touch); done'], { cwd: ctx });
    const child = execa(process.execPath, [BIN, '--root', path.join(d, 'store'), 'build', ctx], { reject: false });
    await new Promise((r) => setTimeout(r, 700));
    const sent = Date.now();
    child.kill('SIGTERM');
    const r = await child;
    assert.ok(Date.now() - sent < 3000, `stopped ${Date.now() - sent} ms after SIGTERM`);
    assert.equal(r.exitCode, 143, r.stderr);
  } finally {
    await removeDir(d);
  }
});
