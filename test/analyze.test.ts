import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { analyzeWaste } from '../src/analyze/waste.js';
import { groupCauses } from '../src/analyze/causes.js';
import { parseSize } from '../src/analyze/size.js';
import { importBusybox } from './helpers/busybox.js';
import { promises as fsp } from 'node:fs';
import { REPO, lbuild, lbuildOk, removeDir, tempDir } from './helpers/cli.js';
import { sha256hex, writeTar } from './helpers/hostile.js';
import { type Registry, startRegistry } from './helpers/registry.js';
import { writeContext } from './helpers/context.js';

let dir: string;
let root: string;

interface Analysis {
  imageSize: number;
  wastedBytes: number;
  efficiency: number;
  wastedUserShare: number;
  baseLayers: number;
  baseWastedBytes: number;
  causes: { addedBy: { line: number | null; instruction: string }; removedBy: { line: number | null; instruction: string }; how: string; bytes: number; files: number; examples: string[]; fromBase: boolean; fix: string }[];
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
  assert.match(text.stdout, /105MB {2}1 file deleted\n {12}added by line 3: RUN dd .*\n {12}deleted by line 4: RUN rm \/big\n/);
  const files = await lbuildOk(root, ['analyze', 'demo:separate', '--files']);
  assert.match(files.stdout, /\/big {2}deleted — added by line 3: RUN dd .*; deleted by line 4: RUN rm \/big/);
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
  assert.match(bad.stderr, /analyze --ci: .*wasted 105MB is over the highest allowed 20MB/);
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

/** A docker-archive of two layers: the first adds 300 files of 1,000 bytes under /data, the second deletes them. */
async function twoLayerArchive(file: string): Promise<void> {
  const l1 = path.join(dir, 'l1.tar');
  const l2 = path.join(dir, 'l2.tar');
  const names = Array.from({ length: 300 }, (_, i) => `f${String(i).padStart(3, '0')}`);
  await writeTar(l1, [{ name: 'data/', dir: true }, ...names.map((n) => ({ name: `data/${n}`, data: Buffer.alloc(1000, n) }))]);
  await writeTar(l2, [{ name: 'data/', dir: true }, ...names.map((n) => ({ name: `data/.wh.${n}`, data: '' }))]);
  const diffIds = [await fsp.readFile(l1), await fsp.readFile(l2)].map((b) => `sha256:${sha256hex(b)}`);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [{ created_by: 'COPY data/ /data/' }, { created_by: 'RUN rm -rf /data/*' }],
  });
  const cfgName = `${sha256hex(config)}.json`;
  await writeTar(file, [
    { name: 'l1/layer.tar', data: await fsp.readFile(l1) },
    { name: 'l2/layer.tar', data: await fsp.readFile(l2) },
    { name: cfgName, data: config },
    { name: 'manifest.json', data: JSON.stringify([{ Config: cfgName, RepoTags: ['waste:2'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]) },
  ]);
}

test('analyze (issue 20): a saved 2-layer image of 300 deleted files is one cause in at most 30 lines; --files lists them', async () => {
  const archive = path.join(dir, 'waste.tar');
  await twoLayerArchive(archive);
  const text = await lbuildOk(root, ['analyze', archive]);
  const lines = text.stdout.trimEnd().split('\n');
  assert.ok(lines.length <= 30, `${lines.length} lines:\n${text.stdout}`);
  assert.match(text.stdout, /Wasted space by cause \(1 cause, 300 paths/);
  // no build info: the first layer is the base (dive's rule), so the cause is the base's
  assert.match(text.stdout, /300kB {2}300 files deleted \(from the base image\)\n {12}added by COPY data\/ \/data\/\n {12}deleted by RUN rm -rf \/data\/\*\n {12}e\.g\. \/data\/f000, \/data\/f001, \/data\/f002, …\n {12}fix: from the base image: /);
  const json = JSON.parse((await lbuildOk(root, ['analyze', `docker-archive:${archive}`, '--format', 'json'])).stdout) as Analysis;
  assert.equal(json.causes.length, 1);
  assert.deepEqual({ ...json.causes[0], examples: json.causes[0]?.examples.length }, {
    addedBy: { line: null, instruction: 'COPY data/ /data/' },
    removedBy: { line: null, instruction: 'RUN rm -rf /data/*' },
    how: 'deleted',
    bytes: 300_000,
    files: 300,
    examples: 3,
    // without lbuild's build info the first layer is the base (dive's rule)
    fromBase: true,
    fix: json.causes[0]?.fix,
  });
  assert.equal(json.files.length, 300);
  assert.equal(json.baseWastedBytes, 300_000);
  assert.equal(json.wastedUserShare, 0, 'base-image bytes are left out of the user share');
  const all = await lbuildOk(root, ['analyze', archive, '--files']);
  assert.equal(all.stdout.split('\n').filter((l) => / \/data\/f\d{3} {2}deleted — /.test(l)).length, 300);
  // the archive was read into a throwaway store: the real one did not get the image
  assert.equal((await lbuild(root, ['inspect', 'waste:2'])).exitCode, 1);
  const missing = await lbuild(root, ['analyze', path.join(dir, 'nope.tar')]);
  assert.equal(missing.exitCode, 1);
  assert.match(missing.stderr, /^lbuild: image .*nope\.tar: not in the store, and no such file/);
});

test('analyze (issue 20): causes of a built image name both lines and one fix; base files a RUN replaces are "from the base image"', async () => {
  const a = JSON.parse((await lbuildOk(root, ['analyze', 'demo:separate', '--format', 'json'])).stdout) as Analysis;
  assert.equal(a.causes.length, 1);
  assert.equal(a.causes[0]?.fix, 'line 4 deletes files line 3 created: 105MB in 1 file — create and delete them in the same RUN, or build in a separate stage');
  assert.equal(a.causes[0]?.fromBase, false);
  assert.equal(a.baseLayers, 1);
  const ctx = await writeContext(path.join(dir, 'upgrade'), { Dockerfile: 'FROM busybox:latest\nRUN cp /bin/busybox /tmp/bb && mv /tmp/bb /bin/busybox\n' });
  await lbuildOk(root, ['build', '-t', 'upgrade:1', ctx]);
  const u = JSON.parse((await lbuildOk(root, ['analyze', 'upgrade:1', '--format', 'json'])).stdout) as Analysis;
  const base = u.causes.find((c) => c.examples.includes('/bin/busybox'));
  assert.ok(base, JSON.stringify(u.causes));
  assert.equal(base.fromBase, true);
  assert.equal(base.how, 'overwritten');
  assert.match(base.fix, /^from the base image: line 2 replaces or removes files the base ships/);
  assert.equal(u.baseWastedBytes, base.bytes);
  assert.equal(u.wastedUserShare, 0, 'nothing the user can avoid');
  const text = (await lbuildOk(root, ['analyze', 'upgrade:1'])).stdout;
  assert.match(text, /overwritten \(from the base image\)/);
});

test('analyze --ci (issue 20): dive\'s defaults apply with no limits; .dive-ci sets and disables them; flags win', async () => {
  const cwd = path.join(dir, 'ci');
  await fsp.mkdir(cwd, { recursive: true });
  const def = await lbuild(root, ['analyze', 'demo:separate', '--ci'], { cwd });
  assert.equal(def.exitCode, 1, 'efficiency ~50% is below the default 90%');
  assert.match(def.stderr, /efficiency 50\.\d% is below the lowest allowed 90\.0%/);
  assert.equal((await lbuild(root, ['analyze', 'demo:combined', '--ci'], { cwd })).exitCode, 0);
  await fsp.writeFile(path.join(cwd, '.dive-ci'), 'rules:\n  # all off\n  lowestEfficiency: disabled\n  highestWastedBytes: disabled\n  highestUserWastedPercent: disabled\n');
  const off = await lbuild(root, ['analyze', 'demo:separate', '--ci'], { cwd });
  assert.equal(off.exitCode, 0, off.stderr);
  const flag = await lbuild(root, ['analyze', 'demo:separate', '--ci', '--highest-wasted-bytes', '20MB'], { cwd });
  assert.equal(flag.exitCode, 1);
  assert.equal(flag.stderr.trim(), 'lbuild: analyze --ci: wasted 105MB is over the highest allowed 20MB');
  await fsp.writeFile(path.join(cwd, 'strict.yaml'), 'rules:\n  highestWastedBytes: 1MB\n  lowestEfficiency: disabled\n  highestUserWastedPercent: "disabled"\n');
  const cfg = await lbuild(root, ['analyze', 'demo:separate', '--ci', '--ci-config', 'strict.yaml'], { cwd });
  assert.equal(cfg.stderr.trim(), 'lbuild: analyze --ci: wasted 105MB is over the highest allowed 1MB');
  await fsp.writeFile(path.join(cwd, '.dive-ci'), 'rules:\n  lowestEfficiency: most\n');
  const bad = await lbuild(root, ['analyze', 'demo:separate', '--ci'], { cwd });
  assert.equal(bad.exitCode, 2);
  assert.equal(bad.stderr.trim(), 'lbuild: .dive-ci:2: lowestEfficiency: "most" is not a number (or disabled)');
});

test('analyze (issue 20): a registry reference is read without storing the image', async () => {
  const reg: Registry = await startRegistry(dir);
  try {
    await lbuildOk(root, ['push', 'demo:separate', `${reg.host}/team/waste:1`, '--insecure-registry', reg.host]);
    const a = JSON.parse((await lbuildOk(root, ['analyze', `docker://${reg.host}/team/waste:1`, '--insecure-registry', reg.host, '--format', 'json'])).stdout) as Analysis;
    assert.equal(a.wastedBytes, 100 * 1024 * 1024);
    assert.equal(a.causes.length, 1);
    assert.equal((await lbuild(root, ['inspect', `${reg.host}/team/waste:1`])).exitCode, 1, 'not pulled into the store');
  } finally {
    await reg.stop();
  }
});

test('analyze causes (issue 20): a purge of what an earlier RUN installed names the packages and both lines', () => {
  const f = (p: string, size: number) => ({ path: p, kind: 'file' as const, size });
  const w = (p: string) => ({ path: p, kind: 'whiteout' as const, size: 0 });
  const layers = [
    [f('bin/sh', 100)],
    [f('usr/bin/gcc', 5000), f('usr/lib/gcc/cc1', 90000), f('usr/share/doc/gcc/README', 10)],
    [f('app/out', 50)],
    [w('usr/bin/gcc'), w('usr/lib/gcc'), w('usr/share/doc/gcc')],
  ];
  const a = analyzeWaste(layers);
  const steps = [
    { line: null, instruction: 'base' },
    { line: 7, instruction: 'RUN apt-get update && apt-get install -y build-essential && rm -rf /var/lib/apt/lists/*', stage: '0' },
    { line: 12, instruction: 'RUN make', stage: '0' },
    { line: 20, instruction: 'RUN apt-get purge -y --auto-remove build-essential', stage: '0' },
  ];
  const causes = groupCauses(a.files, steps, 1);
  assert.equal(causes.length, 1);
  assert.deepEqual(causes[0]?.examples, ['/usr/lib/gcc/cc1', '/usr/bin/gcc', '/usr/share/doc/gcc/README']);
  assert.equal(causes[0]?.fix, 'line 20 purges build-essential installed on line 7: 95kB in 3 files — install and purge in the same RUN, or build in a separate stage');
});
