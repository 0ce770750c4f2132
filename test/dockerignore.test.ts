import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadIgnore, makeMatcher, parseIgnoreLines } from '../src/context/ignore.js';
import { lbuild, lbuildOk, removeDir, tempDir } from './helpers/cli.js';

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
