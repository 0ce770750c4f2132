import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { busyboxRootfsTar, storeFixture } from './helpers/busybox.js';
import { lbuild, lbuildOk, run } from './helpers/cli.js';
import { writeContext, mountsUnder } from './helpers/context.js';
import { assertOneLineFailure, sha256hex, writeTar } from './helpers/hostile.js';
import { startRegistry } from './helpers/registry.js';

// issue 22.1: a truncated archive never ends in a silent exit 0, wherever it comes in

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

const COMPRESSORS: [string, string[]][] = [
  ['gz', ['gzip', '-c']],
  ['xz', ['xz', '-c']],
  ['zst', ['zstd', '-q', '-c']],
];

async function truncatedArchives(): Promise<string[]> {
  const big = Buffer.alloc(400_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24; // not compressible to nothing
  const tarFile = await writeTar(path.join(dir, 'full.tar'), [{ name: 'big.bin', data: big }, { name: 'after.txt', data: 'after' }]);
  const out: string[] = [];
  for (const [ext, cmd] of COMPRESSORS) {
    const full = path.join(dir, `full.tar.${ext}`);
    const r = await run('sh', ['-c', `${cmd.join(' ')} "$1" > "$2"`, 'sh', tarFile, full]);
    assert.equal(r.exitCode, 0, r.stderr);
    const bytes = await fsp.readFile(full);
    const cut = path.join(dir, `cut.tar.${ext}`);
    await fsp.writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    out.push(cut);
  }
  const plain = path.join(dir, 'cut.tar');
  await fsp.writeFile(plain, (await fsp.readFile(tarFile)).subarray(0, 200_000));
  out.push(plain);
  return out;
}

test('ADD and import of a truncated archive (plain, gzip, xz, zstd) fail with one line and leave nothing mounted', async () => {
  for (const cut of await truncatedArchives()) {
    const name = path.basename(cut);
    const ctx = await writeContext(path.join(dir, `add-${name}`), { Dockerfile: `FROM busybox\nADD ${name} /x/\n` });
    await fsp.copyFile(cut, path.join(ctx, name));
    assertOneLineFailure(await lbuild(root, ['build', ctx]), new RegExp(`Dockerfile:2: ADD ${name.replace(/\./g, '\\.')}: cannot extract`));
    assertOneLineFailure(await lbuild(root, ['import', cut, `cut:${name.replace(/\W/g, '-')}`]), /not a readable tar archive/);
  }
  assert.deepEqual(mountsUnder(root), []);
  assert.deepEqual((await fsp.readdir(path.join(root, 'tmp'))).filter((n) => !n.startsWith('lease')), []);
});

test('load of an OCI archive whose (digest-valid) layer is a truncated gzip fails, and adds nothing', async () => {
  const [gz] = await truncatedArchives();
  const layer = await fsp.readFile(gz as string);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${'a'.repeat(64)}`] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256hex(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${sha256hex(layer)}`, size: layer.length }],
  }));
  const archive = await writeTar(path.join(dir, 'cut-oci.tar'), [
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'index.json', data: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(manifest)}`, size: manifest.length, annotations: { 'io.containerd.image.name': 'cut:oci' } }] }) },
    { name: `blobs/sha256/${sha256hex(config)}`, data: config },
    { name: `blobs/sha256/${sha256hex(manifest)}`, data: manifest },
    { name: `blobs/sha256/${sha256hex(layer)}`, data: layer },
  ]);
  const before = (await fsp.readdir(path.join(root, 'blobs', 'sha256'))).sort();
  assertOneLineFailure(await lbuild(root, ['load', '-i', archive]));
  assert.deepEqual((await fsp.readdir(path.join(root, 'blobs', 'sha256'))).sort(), before, 'no orphan blob');
  assert.doesNotMatch((await lbuildOk(root, ['images'])).stdout, /cut/);
});

test('22.4: a damaged blob in the store never goes out: save (both formats) and push fail, no archive is left', async () => {
  const ctx = await writeContext(path.join(dir, 'damaged'), { Dockerfile: 'FROM busybox\nRUN head -c 300000 /dev/zero > /blob\n' });
  await lbuildOk(root, ['build', '-t', 'dmg:1', ctx]);
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', 'dmg:1'])).stdout) as { RootFS: { Layers: string[] } }[];
  const top = (i?.RootFS.Layers ?? []).at(-1) as string;
  const blob = path.join(root, 'blobs', 'sha256', top.slice(7));
  await fsp.truncate(blob, 100_000);
  for (const format of ['docker', 'oci']) {
    const out = path.join(dir, `dmg-${format}.tar`);
    assertOneLineFailure(await lbuild(root, ['save', 'dmg:1', '-o', out, '--format', format]), /is damaged \(lbuild fsck --repair\): digest mismatch/);
    assert.equal(await fsp.access(out).then(() => true, () => false), false, 'no partial archive');
  }
  const reg = await startRegistry(dir);
  try {
    assertOneLineFailure(await lbuild(root, ['push', 'dmg:1', `${reg.host}/team/dmg:1`]), /damaged|digest/);
  } finally {
    await reg.stop();
  }
});

test('22.5: a store root reached through a symlink works (RUN, and no mount left behind)', async () => {
  const real = path.join(dir, 'real-root');
  const link = path.join(dir, 'link-root');
  await fsp.mkdir(real);
  await fsp.symlink(real, link);
  await lbuildOk(link, ['import', await busyboxRootfsTar(), 'busybox:latest']);
  const ctx = await writeContext(path.join(dir, 'via-link'), { Dockerfile: 'FROM busybox\nRUN echo ran > /ran\n' });
  await lbuildOk(link, ['build', '-t', 'vl:1', ctx]);
  assert.equal((await lbuildOk(link, ['run', '--rm', 'vl:1', 'cat', '/ran'])).stdout, 'ran');
  assert.deepEqual(mountsUnder(real), []);
});

test('22.7: sparse files (GNU and PAX) are refused with one line, not dropped or unpacked as their map', async () => {
  const src = path.join(dir, 'sparse-src');
  await fsp.mkdir(src, { recursive: true });
  const r = await run('sh', ['-c', `truncate -s 10M "$1/holes" && printf data >> "$1/holes" && tar --sparse --format=gnu -cf "$2" -C "$1" holes && tar --sparse --format=pax -cf "$3" -C "$1" holes`, 'sh', src, path.join(dir, 'gnu-sparse.tar'), path.join(dir, 'pax-sparse.tar')]);
  assert.equal(r.exitCode, 0, r.stderr);
  for (const f of ['gnu-sparse.tar', 'pax-sparse.tar']) {
    assertOneLineFailure(await lbuild(root, ['import', path.join(dir, f), `sparse:${f.slice(0, 3)}`]), /"(holes|.*GNUSparseFile\.\d+\/holes)": a sparse file/);
    const ctx = await writeContext(path.join(dir, `sparse-${f}`), { Dockerfile: `FROM busybox\nADD ${f} /x/\n` });
    await fsp.copyFile(path.join(dir, f), path.join(ctx, f));
    assertOneLineFailure(await lbuild(root, ['build', ctx]), /a sparse file/);
  }
});
