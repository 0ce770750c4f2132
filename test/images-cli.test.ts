import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from './helpers/busybox.js';
import { lbuild, lbuildOk, removeDir, run, tempDir } from './helpers/cli.js';

let dir: string;
let root: string;
let id: string;

before(async () => {
  dir = tempDir();
  root = path.join(dir, 'store');
  id = await importBusybox(root, 'busybox:1');
});
after(async () => {
  await removeDir(dir);
});

async function storeFiles(r: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (p.includes(`${path.sep}snapshots${path.sep}`) && p.split(path.sep).length > r.split(path.sep).length + 2) continue;
      out.push(path.relative(r, p));
      if (e.isDirectory() && !e.isSymbolicLink()) await walk(p);
    }
  };
  await walk(r);
  return out.sort();
}

test('import makes a one-layer image; images, inspect and history show it', async () => {
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  const images = await lbuildOk(root, ['images']);
  assert.match(images.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE/);
  assert.match(images.stdout, new RegExp(`busybox\\s+1\\s+${id.slice(7, 19)}`));
  const json = JSON.parse((await lbuildOk(root, ['images', '--format', 'json'])).stdout) as { Repository: string; Tag: string; Id: string; Size: number }[];
  assert.deepEqual(json.map((j) => [j.Repository, j.Tag, j.Id]), [['busybox', '1', id]]);
  assert.ok((json[0]?.Size ?? 0) > 1_000_000, 'the busybox layer is over 1 MB');

  const [inspect] = JSON.parse((await lbuildOk(root, ['inspect', 'busybox:1'])).stdout) as Record<string, unknown>[];
  assert.equal(inspect?.Id, id);
  assert.deepEqual((inspect?.Config as { Cmd: string[] }).Cmd, ['/bin/sh']);
  assert.equal((inspect?.RootFS as { Layers: string[] }).Layers.length, 1);
  assert.equal(inspect?.Os, 'linux');

  const hist = JSON.parse((await lbuildOk(root, ['history', 'busybox:1', '--format', 'json'])).stdout) as { size: number; emptyLayer: boolean }[];
  assert.equal(hist.length, 1);
  assert.equal(hist[0]?.emptyLayer, false);
  assert.ok((hist[0]?.size ?? 0) > 1_000_000);
  const table = await lbuildOk(root, ['history', 'busybox:1']);
  assert.match(table.stdout, /IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT/);
  assert.match(table.stdout, /Imported from lbuild-test-busybox-rootfs\.tar/);
});

test('import --change sets config fields; a bad change is a usage error', async () => {
  const tarFile = path.join(path.dirname(root), 'empty.tar');
  const mk = await run('tar', ['-cf', tarFile, '-T', '/dev/null']);
  assert.equal(mk.exitCode, 0, `tar: ${mk.stderr}`);
  await lbuildOk(root, [
    'import', tarFile, 'changed:1',
    '--change', 'ENV A=1 B="two words"', '--change', 'WORKDIR /srv', '--change', 'USER nobody',
    '--change', 'ENTRYPOINT ["/bin/tool"]', '--change', 'LABEL k=v', '--change', 'EXPOSE 80 53/udp', '--change', 'CMD echo $A',
  ]);
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', 'changed:1'])).stdout) as { Config: Record<string, unknown> }[];
  assert.deepEqual(i?.Config.Env, ['A=1', 'B=two words']);
  assert.equal(i?.Config.WorkingDir, '/srv');
  assert.equal(i?.Config.User, 'nobody');
  assert.deepEqual(i?.Config.Entrypoint, ['/bin/tool']);
  assert.deepEqual(i?.Config.Cmd, ['/bin/sh', '-c', 'echo $A']);
  assert.deepEqual(i?.Config.Labels, { k: 'v' });
  assert.deepEqual(i?.Config.ExposedPorts, { '80/tcp': {}, '53/udp': {} });
  const bad = await lbuild(root, ['import', tarFile, 'x:1', '--change', 'RUN echo no']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /RUN is not allowed/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
});

test('tag and rmi', async () => {
  await lbuildOk(root, ['tag', 'busybox:1', 'other/name:v2']);
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', 'other/name:v2'])).stdout) as { Id: string; RepoTags: string[] }[];
  assert.equal(i?.Id, id);
  assert.deepEqual(i?.RepoTags, ['busybox:1', 'other/name:v2']);
  const r = await lbuildOk(root, ['rmi', 'other/name:v2']);
  assert.match(r.stdout, /Untagged: other\/name:v2/);
  assert.doesNotMatch(r.stdout, /Deleted/, 'the image keeps its other tag');
  const missing = await lbuild(root, ['inspect', 'nope:1']);
  assert.equal(missing.exitCode, 1);
  assert.equal(missing.stderr.trim(), 'lbuild: image nope:1: not found');
});

test('save -o a device or FIFO writes into it (as docker save); through a symlink it writes the file it names', async () => {
  const nullBefore = await fsp.stat('/dev/null');
  await lbuildOk(root, ['save', 'busybox:1', '-o', '/dev/null']);
  const nullAfter = await fsp.stat('/dev/null');
  assert.ok(nullAfter.isCharacterDevice() && nullAfter.rdev === nullBefore.rdev, '/dev/null is still the device');
  const fifo = path.join(path.dirname(root), 'save.fifo');
  assert.equal((await run('mkfifo', [fifo])).exitCode, 0);
  const reader = run('sh', ['-c', `wc -c < "${fifo}"`]);
  await lbuildOk(root, ['save', 'busybox:1', '-o', fifo]);
  assert.ok(Number((await reader).stdout.trim()) > 100_000, 'the archive went through the FIFO');
  assert.ok((await fsp.lstat(fifo)).isFIFO());
  const real = path.join(path.dirname(root), 'real.tar');
  await fsp.writeFile(real, '');
  const link = path.join(path.dirname(root), 'link.tar');
  await fsp.symlink(real, link);
  await lbuildOk(root, ['save', 'busybox:1', '-o', link]);
  assert.ok((await fsp.lstat(link)).isSymbolicLink(), 'the link stays a link');
  assert.ok((await fsp.stat(real)).size > 100_000);
  const dirOut = await lbuild(root, ['save', 'busybox:1', '-o', path.dirname(root)]);
  assert.equal(dirOut.exitCode, 1);
  assert.match(dirOut.stderr, /is a directory: -o takes the archive file/);
});

test('save writes archives that skopeo and umoci read', async () => {
  const d = path.join(dir, 'save');
  await fsp.mkdir(d);
  await lbuildOk(root, ['save', 'busybox:1', '-o', path.join(d, 'img-docker.tar'), '--format', 'docker']);
  await lbuildOk(root, ['save', 'busybox:1', '-o', path.join(d, 'img-oci.tar'), '--format', 'oci']);

  const sd = await run('skopeo', ['inspect', `docker-archive:${path.join(d, 'img-docker.tar')}`]);
  assert.equal(sd.exitCode, 0, sd.stderr);
  assert.equal((JSON.parse(sd.stdout) as { Layers: string[] }).Layers.length, 1);
  const so = await run('skopeo', ['inspect', `oci-archive:${path.join(d, 'img-oci.tar')}:1`]);
  assert.equal(so.exitCode, 0, so.stderr);
  assert.equal((JSON.parse(so.stdout) as { Os: string }).Os, 'linux');
  const sc = await run('skopeo', ['inspect', '--config', `oci-archive:${path.join(d, 'img-oci.tar')}:1`]);
  assert.deepEqual((JSON.parse(sc.stdout) as { config: { Cmd: string[] } }).config.Cmd, ['/bin/sh']);

  // umoci unpacks the OCI layout into a rootfs with busybox in it
  const layout = path.join(d, 'layout');
  await fsp.mkdir(layout);
  assert.equal((await run('tar', ['-xf', path.join(d, 'img-oci.tar'), '-C', layout])).exitCode, 0);
  const un = await run('umoci', ['unpack', '--image', `${layout}:1`, path.join(d, 'bundle')]);
  assert.equal(un.exitCode, 0, un.stderr);
  const bb = await fsp.stat(path.join(d, 'bundle', 'rootfs', 'bin', 'busybox'));
  assert.ok(bb.isFile() && bb.size > 500_000);
  assert.equal((await fsp.lstat(path.join(d, 'bundle', 'rootfs', 'bin', 'ls'))).isSymbolicLink(), true);
});

for (const format of ['docker', 'oci'] as const) {
  test(`save (${format}) -> rmi -> load gives back the same image Id; a tampered archive is refused`, async () => {
    const d = tempDir();
    try {
      const r2 = path.join(d, 'store2');
      const originalId = await importBusybox(r2, 'busybox:1');
      await lbuildOk(r2, ['tag', 'busybox:1', 'keep:me']);
      const archive = path.join(d, 'img.tar');
      await lbuildOk(r2, ['save', 'busybox:1', '-o', archive, '--format', format]);
      await lbuildOk(r2, ['rmi', 'busybox:1']);
      await lbuildOk(r2, ['rmi', 'keep:me']);
      assert.equal((await lbuild(r2, ['inspect', 'busybox:1'])).exitCode, 1);
      const loaded = await lbuildOk(r2, ['load', '-i', archive]);
      assert.match(loaded.stdout, /Loaded image: busybox:1/);
      const [i] = JSON.parse((await lbuildOk(r2, ['inspect', 'busybox:1'])).stdout) as { Id: string }[];
      assert.equal(i?.Id, originalId, 'same image Id after the round trip');

      // flip one byte in the middle of the biggest file of the archive (the layer)
      const x = path.join(d, 'x');
      await fsp.mkdir(x);
      assert.equal((await run('tar', ['-xf', archive, '-C', x])).exitCode, 0);
      const blobs = path.join(x, 'blobs', 'sha256');
      const sized = await Promise.all((await fsp.readdir(blobs)).map(async (n) => ({ n, s: (await fsp.stat(path.join(blobs, n))).size })));
      const biggest = sized.sort((a, b) => b.s - a.s)[0]?.n as string;
      const bytes = await fsp.readFile(path.join(blobs, biggest));
      const at = Math.floor(bytes.length / 2);
      bytes[at] = (bytes[at] ?? 0) ^ 0xff;
      await fsp.writeFile(path.join(blobs, biggest), bytes);
      const tampered = path.join(d, 'tampered.tar');
      assert.equal((await run('tar', ['-cf', tampered, '-C', x, '.'])).exitCode, 0);

      const r3 = path.join(d, 'store3');
      await importBusybox(r3, 'other:1'); // an unrelated image; the store must stay as it is
      const beforeFiles = await storeFiles(r3);
      const bad = await lbuild(r3, ['load', '-i', tampered]);
      assert.equal(bad.exitCode, 1);
      assert.match(bad.stderr, /digest mismatch|cannot be read/);
      assert.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
      assert.deepEqual(await storeFiles(r3), beforeFiles, 'nothing added to the store');
      assert.deepEqual(await fsp.readdir(path.join(r3, 'tmp')), []);
    } finally {
      await removeDir(d);
    }
  });
}
