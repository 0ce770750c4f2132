import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from '../helpers/busybox.js';
import { lbuild, lbuildOk, removeDir, run, tempDir } from '../helpers/cli.js';
import { writeContext } from '../helpers/context.js';
import { assertOneLineFailure, makeCanary, sha256hex } from '../helpers/hostile.js';
import { type Registry, startRegistry } from '../helpers/registry.js';

// issue 21.2: a digest from outside is never a path, wherever it comes from

let dir: string;
let root: string;
let reg: Registry;
before(async () => {
  dir = tempDir();
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  reg = await startRegistry(dir);
});
after(async () => {
  await reg?.stop();
  await removeDir(dir);
});

interface Layout {
  dir: string;
  blob(d: string): string;
}
const layout = (d: string): Layout => ({ dir: d, blob: (x) => path.join(d, 'blobs', 'sha256', x.replace(/^sha256:/, '')) });

/** Rewrite a local cache export so that every record's diffId names `evil`; re-hash it all, as an attacker can. */
async function poisonCache(l: Layout, evil: string): Promise<{ manifest: Buffer; config: Buffer }> {
  const index = JSON.parse(await fsp.readFile(path.join(l.dir, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
  const desc = index.manifests[0];
  assert.ok(desc);
  const manifest = JSON.parse(await fsp.readFile(l.blob(desc.digest), 'utf8')) as { config: { digest: string; size: number } };
  const cfg = JSON.parse(await fsp.readFile(l.blob(manifest.config.digest), 'utf8')) as { records: { diffId: string }[] };
  assert.ok(cfg.records.length > 0);
  for (const r of cfg.records) r.diffId = evil;
  const config = Buffer.from(JSON.stringify(cfg));
  await fsp.writeFile(l.blob(sha256hex(config)), config);
  manifest.config = { ...manifest.config, digest: `sha256:${sha256hex(config)}`, size: config.length };
  const mbytes = Buffer.from(JSON.stringify(manifest));
  await fsp.writeFile(l.blob(sha256hex(mbytes)), mbytes);
  index.manifests = [{ ...desc, digest: `sha256:${sha256hex(mbytes)}`, size: mbytes.length }];
  await fsp.writeFile(path.join(l.dir, 'index.json'), JSON.stringify(index));
  return { manifest: mbytes, config };
}

async function upload(repo: string, bytes: Buffer): Promise<void> {
  const start = await fetch(`http://${reg.host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const loc = new URL(start.headers.get('location') ?? '', `http://${reg.host}`);
  loc.searchParams.set('digest', `sha256:${sha256hex(bytes)}`);
  const r = await fetch(loc, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(r.status, 201, `upload: ${r.status}`);
}
async function putManifest(repo: string, tag: string, bytes: Buffer): Promise<void> {
  const r = await fetch(`http://${reg.host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 201, await r.text());
}

test('--cache-from (local and registry) with a diffId that is a host path: refused, nothing read, nothing pushed', async () => {
  const canary = await makeCanary(path.join(dir, 'canary'));
  const ctx = await writeContext(path.join(dir, 'ctx'), { Dockerfile: 'FROM busybox\nRUN echo built > /built\n' });
  const local = path.join(dir, 'cache-local');
  await lbuildOk(root, ['build', '-t', 'c:1', '--cache-to', `type=local,dest=${local},mode=max`, ctx]);
  const evil = `sha256:${'../'.repeat(12)}${canary.dir.slice(1)}/secret.txt`;
  const poisoned = await poisonCache(layout(local), evil);

  const fresh = path.join(dir, 'fresh');
  await importBusybox(fresh, 'busybox:latest');
  const r = await lbuild(fresh, ['build', '-t', 'c:1', '--cache-from', `type=local,src=${local}`, ctx]);
  assertOneLineFailure(r, /invalid digest/);

  // the same cache in a registry
  const layers = (JSON.parse(poisoned.manifest.toString()) as { layers: { digest: string }[] }).layers;
  for (const l of layers) await upload('team/cache', await fsp.readFile(layout(local).blob(l.digest)));
  await upload('team/cache', poisoned.config);
  await putManifest('team/cache', 'poison', poisoned.manifest);
  const viaReg = await lbuild(fresh, ['build', '-t', 'c:1', '--cache-from', `type=registry,ref=${reg.host}/team/cache:poison`, ctx]);
  assertOneLineFailure(viaReg, /invalid digest/);

  const grep = await run('grep', ['-rl', 'HOST-CANARY-SECRET', fresh]);
  assert.equal(grep.stdout.trim(), '', 'the host file is not in the store');
  await canary.check();
});

test('pull of an image whose config lists a diff_id that is a path fails with one line', async () => {
  const canary = await makeCanary(path.join(dir, 'canary-pull'));
  const layer = Buffer.alloc(1024); // an empty tar
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${'../'.repeat(10)}${canary.dir.slice(1)}/secret.txt`] } }));
  await upload('team/evil', layer);
  await upload('team/evil', config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256hex(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha256hex(layer)}`, size: layer.length }],
  }));
  await putManifest('team/evil', '1', manifest);
  const fresh = path.join(dir, 'fresh-pull');
  assertOneLineFailure(await lbuild(fresh, ['pull', `${reg.host}/team/evil:1`]), /diff_ids\[0\]: invalid digest/);
  const ctx = await writeContext(path.join(dir, 'ctx-from'), { Dockerfile: `FROM ${reg.host}/team/evil:1\nRUN true\n` });
  assertOneLineFailure(await lbuild(fresh, ['build', ctx]), /invalid digest/);
  await canary.check();
});

test('a local cache record with a bad diffId is a miss, not a path', async () => {
  const ctx = await writeContext(path.join(dir, 'ctx-rec'), { Dockerfile: 'FROM busybox\nRUN echo rec > /rec\n' });
  const rep = path.join(dir, 'rec.json');
  await lbuildOk(root, ['build', '-t', 'rec:1', ctx]);
  const recs = path.join(root, 'cache', 'records');
  let changed = 0;
  for (const n of await fsp.readdir(recs)) {
    const f = path.join(recs, n);
    const rec = JSON.parse(await fsp.readFile(f, 'utf8')) as { diffId: string; createdBy: string };
    if (!rec.createdBy.includes('echo rec')) continue;
    rec.diffId = `sha256:${'../'.repeat(30)}etc/passwd`;
    await fsp.writeFile(f, JSON.stringify(rec));
    changed++;
  }
  assert.equal(changed, 1);
  await lbuildOk(root, ['build', '-t', 'rec:1', '--report', rep, ctx]);
  const report = JSON.parse(await fsp.readFile(rep, 'utf8')) as { steps: { cache: string }[] };
  assert.deepEqual(report.steps.map((s) => s.cache), ['miss']);
  const grep = await run('grep', ['-l', 'daemon:x:1:1', '-r', path.join(root, 'blobs')]);
  assert.equal(grep.stdout.trim(), '');
});
