import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { storeFixture } from '../helpers/busybox.js';
import { lbuild, lbuildOk, run } from '../helpers/cli.js';
import { assertOneLineFailure, makeCanary, sha256hex, writeTar } from '../helpers/hostile.js';

// issue 21.1: `lbuild load` must never write, link or read outside its own scratch space

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

const up = (n: number): string => '../'.repeat(n);

test('load: a link chain through nested dirs cannot place a file in a host directory', async () => {
  const canary = await makeCanary(path.join(dir, 'canary-load'));
  const depth = 20;
  const nest = Array.from({ length: depth }, (_, i) => `d${i}`);
  const entries = nest.map((_, i) => ({ name: `${nest.slice(0, i + 1).join('/')}/`, dir: true as const }));
  const deep = nest.join('/');
  const archive = await writeTar(path.join(dir, 'chain.tar'), [
    ...entries,
    // `s` points at d0; `l` (written through `s`, so really at d0/l) looks inside the archive
    // when read from where its name says, but climbs to the host's / from where it really is
    { name: `${deep}/s`, symlink: up(depth - 1) },
    { name: `${deep}/s/l`, symlink: `${up(depth)}${canary.dir.slice(1)}` },
    { name: `${deep}/s/l/pwned`, data: 'owned' },
    { name: 'abs', symlink: canary.dir },
    { name: 'abs/pwned2', data: 'owned' },
    { name: 'absdir/', dir: true },
    { name: 'absdir/x/', dir: true },
  ]);
  const r = await lbuild(root, ['load', '-i', archive]);
  await canary.check();
  assertOneLineFailure(r, /neither a docker-archive|not a readable tar/);
  const tmp = await fsp.readdir(path.join(root, 'tmp'));
  assert.deepEqual(tmp.filter((n) => n.startsWith('load-')), [], 'the scratch folder is removed');
});

test('load: manifest.json naming a host file through a link fails with one line and copies nothing', async () => {
  const canary = await makeCanary(path.join(dir, 'canary-cfg'));
  const archive = await writeTar(path.join(dir, 'cfg.tar'), [
    { name: 'x', symlink: `${up(30)}${canary.dir.slice(1)}` },
    { name: 'y', symlink: canary.dir },
    { name: 'manifest.json', data: JSON.stringify([{ Config: 'x/secret.txt', RepoTags: ['evil:1'], Layers: ['y/secret.txt'] }]) },
  ]);
  const r = await lbuild(root, ['load', '-i', archive]);
  assertOneLineFailure(r, /lacks the config "x\/secret.txt"/);
  const second = await writeTar(path.join(dir, 'cfg2.tar'), [
    { name: 'y', symlink: canary.dir },
    { name: 'manifest.json', data: JSON.stringify([{ Config: 'y/secret.txt', RepoTags: ['evil:1'], Layers: [] }]) },
  ]);
  assertOneLineFailure(await lbuild(root, ['load', '-i', second]), /lacks the config/);
  const grep = await run('grep', ['-rl', 'HOST-CANARY-SECRET', root]);
  assert.equal(grep.stdout.trim(), '', 'no host file entered the store');
  await canary.check();
  const images = await lbuildOk(root, ['images', '--format', 'json']);
  assert.doesNotMatch(images.stdout, /evil/);
});

test('load: an OCI index naming a digest that is a path fails with one line', async () => {
  const canary = await makeCanary(path.join(dir, 'canary-oci'));
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${up(8)}${canary.dir.slice(1)}/secret.txt`, size: 10 }] };
  const archive = await writeTar(path.join(dir, 'oci-evil.tar'), [
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'index.json', data: JSON.stringify(index) },
  ]);
  assertOneLineFailure(await lbuild(root, ['load', '-i', archive]), /invalid digest/);
  await canary.check();
});

test('load: archives that use their own links legitimately (legacy docker save) still load', async () => {
  await lbuildOk(root, ['tag', 'busybox:latest', 'legacy:1']);
  const saved = path.join(dir, 'legacy-src.tar');
  await lbuildOk(root, ['save', 'legacy:1', '-o', saved]);
  const x = path.join(dir, 'legacy-x');
  await fsp.mkdir(x, { recursive: true });
  assert.equal((await run('tar', ['-xf', saved, '-C', x])).exitCode, 0);
  const manifest = JSON.parse(await fsp.readFile(path.join(x, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[]; Layers: string[] }[];
  const first = manifest[0];
  assert.ok(first);
  // one layer reached through a directory link and a file link, as old docker save wrote them
  const layer = first.Layers[0] as string;
  await fsp.mkdir(path.join(x, 'old'), { recursive: true });
  await fsp.symlink(`../${layer}`, path.join(x, 'old', 'layer.tar'));
  await fsp.symlink('old', path.join(x, 'alias'));
  first.Layers[0] = 'alias/layer.tar';
  first.RepoTags = ['legacy:2'];
  await fsp.writeFile(path.join(x, 'manifest.json'), JSON.stringify(manifest));
  const repacked = path.join(dir, 'legacy.tar');
  assert.equal((await run('tar', ['-cf', repacked, '-C', x, '.'])).exitCode, 0);
  const r = await lbuildOk(root, ['load', '-i', repacked]);
  assert.match(r.stdout, /legacy:2/);
  const [a, b] = await Promise.all(['legacy:1', 'legacy:2'].map(async (t) => (JSON.parse((await lbuildOk(root, ['inspect', t])).stdout) as { Id: string }[])[0]?.Id));
  assert.equal(a, b);
});

test('load: a layer tar whose dir is replaced by a link to a host dir sets no host times (issue 21.4)', async () => {
  const canary = await makeCanary(path.join(dir, 'canary-times'));
  const layer = await writeTar(path.join(dir, 'times-layer.tar'), [
    { name: 'x/', dir: true, mtime: new Date('1999-01-01T00:00:00Z') },
    { name: 'x/y/', dir: true, mtime: new Date('1999-01-01T00:00:00Z') },
    { name: 'x', symlink: canary.dir },
    { name: 'z/', dir: true, mtime: new Date('1999-01-01T00:00:00Z') },
    { name: 'z/.wh..wh..opq', data: '' },
    { name: 'z', symlink: `${canary.dir}/b-dir` },
  ]);
  const layerBytes = await fsp.readFile(layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${sha256hex(layerBytes)}`] } }));
  const archive = await writeTar(path.join(dir, 'times.tar'), [
    { name: `blobs/sha256/${sha256hex(config)}`, data: config },
    { name: `blobs/sha256/${sha256hex(layerBytes)}`, data: layerBytes },
    { name: 'manifest.json', data: JSON.stringify([{ Config: `blobs/sha256/${sha256hex(config)}`, RepoTags: ['times:1'], Layers: [`blobs/sha256/${sha256hex(layerBytes)}`] }]) },
  ]);
  await lbuildOk(root, ['load', '-i', archive]);
  await canary.check();
  const xattr = await run('getfattr', ['-d', '-m', '-', path.join(canary.dir, 'b-dir')]);
  assert.doesNotMatch(xattr.stdout, /overlay/, 'no opaque mark was set through the link');
  // the same layer as a rootfs for import
  await lbuildOk(root, ['import', layer, 'times:2']);
  await canary.check();
});
