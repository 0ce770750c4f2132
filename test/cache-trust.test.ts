import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { BIN, lbuildOk } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

// issue 14: a cached image is always the image a cold build would make; every miss reason is true

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

interface Report {
  steps: { instruction: string; cache: 'hit' | 'miss'; reason?: string }[];
}
async function build(ctx: string, extra: string[] = [], env: Record<string, string> = {}, store = root): Promise<{ id: string; report: Report; stderr: string }> {
  const rep = path.join(dir, `r-${Math.random().toString(16).slice(2)}.json`);
  const r = await lbuildOk(store, ['build', '--progress', 'plain', '--report', rep, ...extra, ctx], { env });
  return { id: r.stdout.trim(), report: JSON.parse(await fsp.readFile(rep, 'utf8')) as Report, stderr: r.stderr };
}
const caches = (r: Report): string[] => r.steps.map((s) => s.cache);
const reasons = (r: Report): (string | undefined)[] => r.steps.map((s) => s.reason);
const runIn = async (ref: string, cmd: string): Promise<string> => (await lbuildOk(root, ['run', '--rm', ref, 'sh', '-c', cmd])).stdout;

test('14.1: a child is never stacked on a parent it was not built on (--no-cache-filter of a random stage)', async () => {
  const ctx = await writeContext(path.join(dir, 'parent'), {
    Dockerfile: 'FROM busybox AS builder\nRUN od -An -N8 -tx8 /dev/urandom > /t\nFROM builder\nRUN cp /t /t2\n',
  });
  await build(ctx, ['-t', 'r1']);
  const again = await build(ctx, ['-t', 'r1', '--no-cache-filter', 'builder']);
  assert.deepEqual(caches(again.report), ['miss', 'miss'], 'the child misses: its parent content changed');
  assert.equal(reasons(again.report)[1], 'parent changed (stage builder changed)');
  assert.equal(await runIn('r1', 'cmp /t /t2 && echo same'), 'same');
});

test('14.1: COPY --from a stage keys on what it takes: an unchanged output hits, a changed one names the file', async () => {
  const ctx = await writeContext(path.join(dir, 'from'), {
    'a.txt': 'one',
    'b.txt': 'two',
    Dockerfile: 'FROM busybox AS builder\nCOPY . /src/\nRUN cat /src/a.txt > /out\nFROM busybox\nCOPY --from=builder /out /out\nRUN cat /out > /copy\n',
  });
  await build(ctx, ['-t', 'from:1']);
  await fsp.writeFile(path.join(ctx, 'b.txt'), 'TWO'); // the builder re-runs, /out is the same
  const b = await build(ctx, ['-t', 'from:1']);
  assert.deepEqual(caches(b.report), ['miss', 'miss', 'hit', 'hit']);
  await fsp.writeFile(path.join(ctx, 'a.txt'), 'ONE');
  const c = await build(ctx, ['-t', 'from:1']);
  assert.deepEqual(caches(c.report), ['miss', 'miss', 'miss', 'miss']);
  assert.equal(reasons(c.report)[2], 'source changed: out (in stage builder)');
  assert.equal(await runIn('from:1', 'cat /copy'), 'ONE');
});

test('14.2: a context file edited between keying and copying is never cached under the old key', async () => {
  const ctx = await writeContext(path.join(dir, 'race'), { 'f.txt': 'original', Dockerfile: 'FROM busybox\nCOPY f.txt /f.txt\n' });
  const running = execa(process.execPath, [BIN, '--root', root, 'build', '--progress', 'plain', '-t', 'race:1', ctx], { env: { LBUILD_TEST_COPY_DELAY_MS: '1500' }, reject: false, stdin: 'ignore' });
  await sleep(700); // keyed by now (the build waits 1.5 s before copying)
  await fsp.writeFile(path.join(ctx, 'f.txt'), 'EDITED!');
  const r = await running;
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stderr), /the build context changed while this step read it/);
  assert.equal(await runIn('race:1', 'cat /f.txt'), 'EDITED!');
  await fsp.writeFile(path.join(ctx, 'f.txt'), 'original');
  const b = await build(ctx, ['-t', 'race:1']);
  assert.deepEqual(caches(b.report), ['miss'], 'the restored file is not served the edited layer');
  assert.equal(await runIn('race:1', 'cat /f.txt'), 'original');
  await fsp.writeFile(path.join(ctx, 'f.txt'), 'EDITED!');
  const c = await build(ctx, ['-t', 'race:1']);
  assert.deepEqual(caches(c.report), ['hit'], 'what was really copied is cached under its own content');
});

test('14.2: a directory copied along the key\'s walk: what changed after keying is read as it is now, and never cached under the old key', async () => {
  const ctx = await writeContext(path.join(dir, 'race-dir'), { 'src/a.txt': 'a', 'src/b.txt': 'b', 'src/gone.txt': 'gone', 'src/d/x.txt': 'x', Dockerfile: 'FROM busybox\nCOPY src /src/\n' });
  const running = execa(process.execPath, [BIN, '--root', root, 'build', '--progress', 'plain', '-t', 'race-dir:1', ctx], { env: { LBUILD_TEST_COPY_DELAY_MS: '1500' }, reject: false, stdin: 'ignore' });
  // keyed once the miss is logged (the build then waits 1.5 s before copying)
  await new Promise<void>((resolve) => {
    let seen = '';
    running.stderr?.on('data', (c: Buffer) => {
      seen += String(c);
      if (seen.includes('cache miss')) resolve();
    });
  });
  await fsp.writeFile(path.join(ctx, 'src/a.txt'), 'a edited');
  await fsp.rm(path.join(ctx, 'src/gone.txt'));
  await fsp.rm(path.join(ctx, 'src/d'), { recursive: true });
  await fsp.writeFile(path.join(ctx, 'src/d'), 'now a file');
  const r = await running;
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stderr), /the build context changed while this step read it/);
  assert.equal(await runIn('race-dir:1', 'cat /src/a.txt; echo; ls /src'), 'a edited\na.txt\nb.txt\nd');
  // the context as it is now, and as it was: neither is served the layer read in between
  const now = await build(ctx, ['-t', 'race-dir:1']);
  assert.deepEqual(caches(now.report), ['miss']);
  assert.equal(await runIn('race-dir:1', 'cat /src/d'), 'now a file');
  await fsp.rm(path.join(ctx, 'src/d'));
  await writeContext(ctx, { 'src/a.txt': 'a', 'src/gone.txt': 'gone', 'src/d/x.txt': 'x' });
  const before = await build(ctx, ['-t', 'race-dir:1']);
  assert.deepEqual(caches(before.report), ['miss']);
  assert.equal(await runIn('race-dir:1', 'cat /src/a.txt /src/gone.txt /src/d/x.txt'), 'agonex');
});

test('14.2/14.3: a bind mount is a private, filtered copy: later edits are not seen; ignored files are neither seen nor keyed', async () => {
  const ctx = await writeContext(path.join(dir, 'bind'), {
    '.dockerignore': 'secret.txt\n.git\n',
    'secret.txt': 'hidden',
    '.git/HEAD': 'ref',
    'f.txt': 'original',
    Dockerfile: 'FROM busybox\nRUN --mount=type=bind,target=/ctx sleep 2 && ls -a /ctx > /listing && cat /ctx/f.txt > /seen\n',
  });
  const running = build(ctx, ['-t', 'bind:1']);
  await sleep(1000);
  await fsp.writeFile(path.join(ctx, 'f.txt'), 'EDITED!');
  await running;
  assert.equal(await runIn('bind:1', 'cat /seen'), 'original');
  assert.doesNotMatch(await runIn('bind:1', 'cat /listing'), /secret|\.git/);
  await fsp.writeFile(path.join(ctx, 'f.txt'), 'original');
  await fsp.writeFile(path.join(ctx, 'secret.txt'), 'changed');
  const b = await build(ctx, ['-t', 'bind:1']);
  assert.deepEqual(caches(b.report), ['hit'], 'an ignored file is not an input');
  await fsp.writeFile(path.join(ctx, 'f.txt'), 'other');
  const c = await build(ctx, ['-t', 'bind:1']);
  assert.deepEqual(caches(c.report), ['miss']);
  assert.equal(reasons(c.report)[0], 'mount source changed (/ in the build context)');
});

test('14.4: SOURCE_DATE_EPOCH is keyed: a cached build equals a cold one for each epoch', async () => {
  const ctx = await writeContext(path.join(dir, 'sde'), { 'f.txt': 'x', Dockerfile: 'FROM busybox\nCOPY f.txt /f.txt\nRUN echo run > /r\n' });
  const plain = await build(ctx, ['-t', 'sde:1']);
  const withEpoch = await build(ctx, ['-t', 'sde:2'], { SOURCE_DATE_EPOCH: '1000' });
  assert.deepEqual(caches(withEpoch.report), ['miss', 'miss']);
  assert.equal(reasons(withEpoch.report)[0], 'SOURCE_DATE_EPOCH changed (unset → 1000)');
  const cold = await build(ctx, ['--no-cache'], { SOURCE_DATE_EPOCH: '1000' });
  assert.equal(withEpoch.id, cold.id);
  assert.notEqual(plain.id, withEpoch.id);
  const cached = await build(ctx, [], { SOURCE_DATE_EPOCH: '1000' });
  assert.deepEqual(caches(cached.report), ['hit', 'hit']);
  assert.equal(cached.id, cold.id);
});

test('14.5: names and link targets holding newlines are described unambiguously', async () => {
  const ctx = await writeContext(path.join(dir, 'nl'), {
    'd/a\nf 644 1 x': 'x',
    'd/l': { symlink: 'x\n"d/m"' },
    Dockerfile: 'FROM busybox\nCOPY d /d/\n',
  });
  await build(ctx, ['-t', 'nl:1']);
  await fsp.rename(path.join(ctx, 'd', 'a\nf 644 1 x'), path.join(ctx, 'd', 'a'));
  const b = await build(ctx, ['-t', 'nl:1']);
  assert.deepEqual(caches(b.report), ['miss']);
  await fsp.rm(path.join(ctx, 'd', 'l'));
  await fsp.symlink('x', path.join(ctx, 'd', 'l'));
  const c = await build(ctx, ['-t', 'nl:1']);
  assert.deepEqual(caches(c.report), ['miss']);
  assert.equal(reasons(c.report)[0], 'source changed: d/l');
});

test('14.6: hard-link structure is keyed: linking two files misses and the image has one inode', async () => {
  const ctx = await writeContext(path.join(dir, 'hard'), { 'd/a': 'same', 'd/b': 'same', Dockerfile: 'FROM busybox\nCOPY d /d/\n' });
  await build(ctx, ['-t', 'hard:1']);
  await fsp.rm(path.join(ctx, 'd', 'b'));
  await fsp.link(path.join(ctx, 'd', 'a'), path.join(ctx, 'd', 'b'));
  const b = await build(ctx, ['-t', 'hard:1']);
  assert.deepEqual(caches(b.report), ['miss']);
  const [ia, ib] = (await runIn('hard:1', 'stat -c %i /d/a /d/b')).trim().split('\n');
  assert.equal(ia, ib);
  const cold = await build(ctx, ['--no-cache']);
  const cached = await build(ctx, []);
  assert.deepEqual(caches(cached.report), ['hit']);
  assert.equal((JSON.parse((await lbuildOk(root, ['inspect', cached.id])).stdout) as { RootFS: { Layers: string[] } }[])[0]?.RootFS.Layers.at(-1), (JSON.parse((await lbuildOk(root, ['inspect', cold.id])).stdout) as { RootFS: { Layers: string[] } }[])[0]?.RootFS.Layers.at(-1));
});

test('14.7: an owner-only change of a context file and a FIFO in a copied dir do not miss', async () => {
  const ctx = await writeContext(path.join(dir, 'owner'), { 'd/a': 'x', Dockerfile: 'FROM busybox\nCOPY d /d/\n' });
  await build(ctx, ['-t', 'own:1']);
  await fsp.chown(path.join(ctx, 'd', 'a'), 1234, 1234);
  const r = await execa('mkfifo', [path.join(ctx, 'd', 'pipe')], { reject: false });
  assert.equal(r.exitCode, 0);
  const b = await build(ctx, ['-t', 'own:1']);
  assert.deepEqual(caches(b.report), ['hit']);
  assert.equal(await runIn('own:1', 'stat -c %u:%g /d/a; ls /d'), '0:0\na');
});

test('15.3/14: an xattr-only change of a context file misses, is named, and gives the cold build\'s image', async () => {
  const ctx = await writeContext(path.join(dir, 'xattr-key'), { 'f.txt': 'x', Dockerfile: 'FROM busybox\nCOPY f.txt /f.txt\n' });
  const epoch = { SOURCE_DATE_EPOCH: '1700000000' };
  const first = await build(ctx, ['-t', 'xk'], epoch);
  assert.equal((await build(ctx, ['-t', 'xk'], epoch)).report.steps[0]?.cache, 'hit');
  await execa('setfattr', ['-n', 'user.k', '-v', 'v1', path.join(ctx, 'f.txt')]);
  const changed = await build(ctx, ['-t', 'xk'], epoch);
  assert.deepEqual(caches(changed.report), ['miss']);
  assert.equal(reasons(changed.report)[0], 'xattrs changed: f.txt');
  assert.notEqual(changed.id, first.id, 'the layer carries the xattr');
  // the stat cache remembers the tag: the next build hits without reading xattrs, and equals a cold build
  assert.equal((await build(ctx, ['-t', 'xk'], epoch)).report.steps[0]?.cache, 'hit');
  const cold = await build(ctx, ['-t', 'xk-cold', '--no-cache'], epoch);
  assert.equal(cold.id, changed.id);
  await execa('setfattr', ['-n', 'user.k', '-v', 'v2', path.join(ctx, 'f.txt')]);
  const again = await build(ctx, ['-t', 'xk'], epoch);
  assert.deepEqual(caches(again.report), ['miss']);
  assert.equal(reasons(again.report)[0], 'xattrs changed: f.txt');
});

test('explanations: an inserted step does not shift the rest; env, user and shell changes are named', async () => {
  const ctx = await writeContext(path.join(dir, 'explain'), { Dockerfile: 'FROM busybox\nENV A=1\nRUN echo one > /1\nRUN echo two > /2\nRUN echo three > /3\n' });
  await build(ctx);
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nENV A=1\nRUN echo new > /0\nRUN echo one > /1\nRUN echo two > /2\nRUN echo three > /3\n');
  const ins = await build(ctx);
  assert.deepEqual(reasons(ins.report), ['not built before', 'parent changed (step 2 missed)', 'parent changed (step 3 missed)', 'parent changed (step 4 missed)']);
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nENV A=2\nRUN echo new > /0\nRUN echo one > /1\nRUN echo two > /2\nRUN echo three > /3\n');
  const env = await build(ctx);
  assert.equal(reasons(env.report)[0], 'env A changed (1 → 2)');
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nENV A=2\nUSER 1000\nRUN echo new > /tmp/0\n');
  await build(ctx);
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nENV A=2\nUSER 1001\nRUN echo new > /tmp/0\n');
  assert.equal(reasons((await build(ctx)).report)[0], 'user changed (1000 → 1001)');
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nENV A=2\nUSER 1001\nSHELL ["/bin/sh", "-ec"]\nRUN echo new > /tmp/0\n');
  assert.equal(reasons((await build(ctx)).report)[0], 'shell changed');
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nENV A=2\nUSER 1001\nSHELL ["/bin/sh", "-ec"]\nRUN echo NEW > /tmp/0\n');
  assert.equal(reasons((await build(ctx)).report)[0], 'instruction changed');
});

test('explanations: a mount from a stage whose content changed is named', async () => {
  const ctx = await writeContext(path.join(dir, 'mountfrom'), {
    'v.txt': '1',
    Dockerfile: 'FROM busybox AS src\nCOPY v.txt /v.txt\nFROM busybox\nRUN --mount=type=bind,from=src,source=/v.txt,target=/m cat /m > /seen\n',
  });
  await build(ctx);
  await fsp.writeFile(path.join(ctx, 'v.txt'), '2');
  const b = await build(ctx);
  assert.deepEqual(reasons(b.report), ['source changed: v.txt', 'mount from src changed (/v.txt)']);
});
