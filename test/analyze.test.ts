import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { analyzeWaste } from '../src/analyze/waste.js';
import { parseSize } from '../src/analyze/report.js';
import { importBusybox } from './helpers/busybox.js';
import { REPO, lbuild, lbuildOk, removeDir, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

let dir: string;
let root: string;

interface Analysis {
  imageSize: number;
  wastedBytes: number;
  efficiency: number;
  wastedUserShare: number;
  files: { path: string; bytes: number; how: string; addedBy: { line: number | null; instruction: string }; removedBy: { line: number | null; instruction: string }; fix: string }[];
}

before(async () => {
  dir = tempDir();
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  await lbuildOk(root, ['build', '-t', 'demo:separate', path.join(REPO, 'testdata/demo/separate')]);
  await lbuildOk(root, ['build', '-t', 'demo:combined', path.join(REPO, 'testdata/demo/combined')]);
});
after(async () => {
  await removeDir(dir);
});

test('analyze: the file deleted in a later RUN is wasted, attributed to both lines', async () => {
  const a = JSON.parse((await lbuildOk(root, ['analyze', 'demo:separate', '--format', 'json'])).stdout) as Analysis;
  assert.equal(a.wastedBytes, 100 * 1024 * 1024);
  assert.ok(a.imageSize > 100 * 1024 * 1024);
  assert.ok(a.efficiency < 0.6 && a.efficiency > 0.4, `efficiency ${a.efficiency}`);
  assert.equal(a.wastedUserShare, 1);
  assert.equal(a.files.length, 1);
  const f = a.files[0];
  assert.equal(f?.path, '/big');
  assert.equal(f?.how, 'deleted');
  assert.deepEqual(f?.addedBy, { line: 3, instruction: 'RUN dd if=/dev/urandom of=/big bs=1M count=100' });
  assert.deepEqual(f?.removedBy, { line: 4, instruction: 'RUN rm /big' });
  assert.equal(f?.fix, 'create and delete /big in the same RUN (or use a multi-stage build)');
  const text = await lbuildOk(root, ['analyze', 'demo:separate']);
  assert.match(text.stdout, /Wasted: 105MB/);
  assert.match(text.stdout, /\/big {2}deleted — added by line 3: RUN dd .*; deleted by line 4: RUN rm \/big/);
});

test('analyze: the single-RUN image wastes nothing', async () => {
  const a = JSON.parse((await lbuildOk(root, ['analyze', 'demo:combined', '--format', 'json'])).stdout) as Analysis;
  assert.equal(a.wastedBytes, 0);
  assert.deepEqual(a.files, []);
  assert.equal(a.efficiency, 1);
});

test('analyze --ci: exit 1 with the reason when a limit is crossed, 0 otherwise', async () => {
  const bad = await lbuild(root, ['analyze', 'demo:separate', '--ci', '--highest-wasted-bytes', '20MB']);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stderr, /analyze --ci: wasted 105MB is over the highest allowed 20MB/);
  const eff = await lbuild(root, ['analyze', 'demo:separate', '--ci', '--lowest-efficiency', '0.95']);
  assert.equal(eff.exitCode, 1);
  assert.match(eff.stderr, /efficiency 50\.\d% is below the lowest allowed 95\.0%/);
  const share = await lbuild(root, ['analyze', 'demo:separate', '--ci', '--highest-user-wasted-percent', '0.2']);
  assert.equal(share.exitCode, 1);
  assert.match(share.stderr, /wasted share of non-base layers 100\.0% is over the highest allowed 20\.0%/);
  const ok = await lbuild(root, ['analyze', 'demo:combined', '--ci', '--highest-wasted-bytes', '1MB', '--lowest-efficiency', '0.95', '--highest-user-wasted-percent', '0.1']);
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.equal((await lbuild(root, ['analyze', 'demo:combined', '--ci', '--highest-wasted-bytes', 'lots'])).exitCode, 2);
});

test('analyze: overwrites and opaque directories count as waste', () => {
  const a = analyzeWaste([
    [{ path: 'etc', kind: 'dir', size: 0 }, { path: 'etc/conf', kind: 'file', size: 100 }, { path: 'd', kind: 'dir', size: 0 }, { path: 'd/x', kind: 'file', size: 40 }],
    [{ path: 'etc/conf', kind: 'file', size: 10 }, { path: 'd', kind: 'opaque', size: 0 }, { path: 'd/y', kind: 'file', size: 1 }],
  ]);
  assert.deepEqual(a.files.map((f) => [f.path, f.bytes, f.how, f.addedIn, f.removedIn]), [['etc/conf', 100, 'overwritten', 0, 1], ['d/x', 40, 'deleted', 0, 1]]);
  assert.equal(a.wastedBytes, 140);
  assert.equal(a.imageSize, 151);
});

test('sizes parse in decimal and binary units', () => {
  assert.equal(parseSize('20MB'), 20_000_000);
  assert.equal(parseSize('1GiB'), 1024 ** 3);
  assert.equal(parseSize('512k'), 512_000);
  assert.equal(parseSize('1000'), 1000);
  assert.throws(() => parseSize('big'));
});

test('df: a base shared by two images counts once; SHARED and UNIQUE sizes per image', async () => {
  const ctx = await writeContext(path.join(dir, 'dfctx'), { Dockerfile: 'FROM busybox\nRUN head -c 3000000 /dev/urandom > /blob' });
  await lbuildOk(root, ['build', '-t', 'df:a', ctx]);
  await lbuildOk(root, ['build', '--no-cache', '-t', 'df:b', ctx]);
  const du = JSON.parse((await lbuildOk(root, ['df', '--format', 'json'])).stdout) as {
    images: { tags: string[]; size: number; sharedSize: number; uniqueSize: number }[];
    imagesSize: number;
    layers: { count: number; size: number };
  };
  const a = du.images.find((i) => i.tags.includes('df:a'));
  const b = du.images.find((i) => i.tags.includes('df:b'));
  const base = du.images.find((i) => i.tags.includes('busybox:latest'));
  assert.ok(a && b && base);
  assert.equal(a.uniqueSize, 3_000_000);
  assert.equal(b.uniqueSize, 3_000_000);
  assert.equal(a.sharedSize, base.size, 'the busybox layer is shared');
  assert.equal(base.uniqueSize, 0);
  assert.equal(a.size, a.sharedSize + a.uniqueSize);
  const sumOfImages = du.images.reduce((n, i) => n + i.size, 0);
  assert.ok(du.imagesSize < sumOfImages, 'the total counts a shared layer once');
  const table = await lbuildOk(root, ['df', '-v']);
  assert.match(table.stdout, /TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE/);
  assert.match(table.stdout, /REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s+SHARED SIZE\s+UNIQUE SIZE/);
  assert.match(table.stdout, /df\s+a\s+[0-9a-f]{12}\s+.*\s+4\.98MB\s+1\.98MB\s+3MB/);
});
