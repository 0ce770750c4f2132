import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from './helpers/busybox.js';
import { lbuild, lbuildOk, removeDir, run, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';
import { type Registry, startRegistry } from './helpers/registry.js';

let dir: string;
let root: string;
let reg: Registry;
let authReg: Registry;

const inspectId = async (r: string, ref: string): Promise<string> => ((JSON.parse((await lbuildOk(r, ['inspect', ref])).stdout) as { Id: string }[])[0]?.Id ?? '');

async function storeFiles(r: string): Promise<string[]> {
  const out = await run('find', [r, '-not', '-path', `${r}/snapshots/*`, '-not', '-path', `${r}/tmp*`]);
  return out.stdout.split('\n').sort();
}

before(async () => {
  dir = tempDir();
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  reg = await startRegistry(dir);
  authReg = await startRegistry(dir, { user: 'ci', password: 's3cret' });
});
after(async () => {
  await reg?.stop();
  await authReg?.stop();
  await removeDir(dir);
});

test('push, then skopeo inspect; pull into a fresh store gives the same image Id', async () => {
  const ctx = await writeContext(path.join(dir, 'ctx1'), { Dockerfile: 'FROM busybox\nRUN echo pushed > /pushed\nCMD ["cat", "/pushed"]' });
  await lbuildOk(root, ['build', '-t', 'app:1', ctx]);
  const pushed = await lbuildOk(root, ['push', 'app:1', `${reg.host}/team/app:1`]);
  assert.match(pushed.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  const sk = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/team/app:1`]);
  assert.equal(sk.exitCode, 0, sk.stderr);
  assert.equal((JSON.parse(sk.stdout) as { Layers: string[] }).Layers.length, 2);
  const again = await lbuildOk(root, ['push', 'app:1', `${reg.host}/team/app:1`]);
  assert.match(again.stderr, /Layer already exists/);

  const fresh = path.join(dir, 'fresh');
  const pulled = await lbuildOk(fresh, ['pull', `${reg.host}/team/app:1`]);
  assert.equal(pulled.stdout.trim(), await inspectId(root, 'app:1'));
  assert.equal(await inspectId(fresh, `${reg.host}/team/app:1`), await inspectId(root, 'app:1'));
  const r = await lbuildOk(fresh, ['run', `${reg.host}/team/app:1`]);
  assert.equal(r.stdout, 'pushed');
  const twice = await lbuildOk(fresh, ['pull', `${reg.host}/team/app:1`]);
  assert.match(twice.stderr, /Already exists/);
  // a push to another repository of the same registry mounts the pulled layers instead of uploading
  const moved = await lbuildOk(fresh, ['push', `${reg.host}/team/app:1`, `${reg.host}/other/app:1`]);
  assert.equal((moved.stderr.match(/Mounted from team\/app/g) ?? []).length, 2, moved.stderr);
  assert.equal((moved.stderr.match(/Pushing \d+ bytes/g) ?? []).length, 1, 'only the config is uploaded');
  const sk2 = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/other/app:1`]);
  assert.equal(sk2.exitCode, 0, sk2.stderr);
});

test('a build FROM 127.0.0.1:PORT/x in a fresh store pulls the base', async () => {
  await lbuildOk(root, ['push', 'busybox:latest', `${reg.host}/base/busybox:1`]);
  const fresh = path.join(dir, 'fresh2');
  const ctx = await writeContext(path.join(dir, 'ctx2'), { Dockerfile: `FROM ${reg.host}/base/busybox:1\nRUN echo ok > /ok` });
  const b = await lbuildOk(fresh, ['build', '--progress', 'plain', '-t', 'x:1', ctx]);
  assert.match(b.stderr, /\[internal\] pull 127\.0\.0\.1:\d+\/base\/busybox:1/);
  assert.equal((await lbuildOk(fresh, ['run', 'x:1', 'cat', '/ok'])).stdout, 'ok');
  const missing = await lbuild(fresh, ['build', '-t', 'y:1', await writeContext(path.join(dir, 'ctx3'), { Dockerfile: `FROM ${reg.host}/base/nothing:1` })]);
  assert.equal(missing.exitCode, 1);
  assert.match(missing.stderr, /Dockerfile:1: image .*nothing:1: not in the store and cannot be pulled \(.*not found in the registry\)/);
});

test('a registry cache: store A exports mode=max, store B hits every RUN/COPY', async () => {
  const files = {
    Dockerfile: 'FROM busybox AS build\nCOPY src /src\nRUN cat /src/a > /built\nFROM busybox\nCOPY --from=build /built /built\nRUN echo final > /final',
    'src/a': 'alpha',
  };
  const ctxA = await writeContext(path.join(dir, 'cacheA'), files);
  const ctxB = await writeContext(path.join(dir, 'cacheB'), files); // another checkout of the same sources
  const cacheRef = `${reg.host}/cache/app:buildcache`;
  const a = await lbuildOk(root, ['build', '--progress', 'plain', '-t', 'c:1', '--cache-to', `type=registry,ref=${cacheRef},mode=max`, ctxA]);
  assert.match(a.stderr, /exported 4 record\(s\)/);
  const storeB = path.join(dir, 'storeB');
  await importBusybox(storeB, 'busybox:latest');
  // the two stores must share the base image digest for keys to match: give B A's base
  const baseTar = path.join(dir, 'base.tar');
  await lbuildOk(root, ['save', 'busybox:latest', '-o', baseTar]);
  await lbuildOk(storeB, ['rmi', 'busybox:latest']);
  await lbuildOk(storeB, ['load', '-i', baseTar]);
  const reportB = path.join(dir, 'b.json');
  const b = await lbuildOk(storeB, ['build', '--progress', 'plain', '--report', reportB, '-t', 'c:1', '--cache-from', `type=registry,ref=${cacheRef}`, ctxB]);
  assert.match(b.stderr, /4 record\(s\) imported/);
  const rep = JSON.parse(await fsp.readFile(reportB, 'utf8')) as { steps: { cache: string }[] };
  assert.deepEqual(rep.steps.map((s) => s.cache), ['hit', 'hit', 'hit', 'hit']);
  const layersOf = async (r: string): Promise<string[]> => (JSON.parse((await lbuildOk(r, ['inspect', 'c:1'])).stdout) as { RootFS: { Layers: string[] } }[])[0]?.RootFS.Layers ?? [];
  assert.deepEqual(await layersOf(storeB), await layersOf(root), 'the same layers as store A built');

  // type=local round trip
  const local = path.join(dir, 'localcache');
  await lbuildOk(root, ['build', '-t', 'c:1', '--cache-to', `type=local,dest=${local},mode=min`, ctxA]);
  const storeC = path.join(dir, 'storeC');
  await lbuildOk(storeC, ['load', '-i', baseTar]);
  const repC = path.join(dir, 'c.json');
  await lbuildOk(storeC, ['build', '--report', repC, '-t', 'c:1', '--cache-from', `type=local,src=${local}`, ctxB]);
  const stepsC = (JSON.parse(await fsp.readFile(repC, 'utf8')) as { steps: { stage: string; cache: string }[] }).steps;
  // mode=min exports only the final image's steps: the build stage's steps run again
  assert.deepEqual(stepsC.map((s) => `${s.stage}:${s.cache}`), ['build:miss', 'build:miss', 'stage-1:hit', 'stage-1:hit']);
});

test('push to an auth registry: a clear error without credentials, success with DOCKER_CONFIG', async () => {
  const noAuth = await lbuild(root, ['push', 'busybox:latest', `${authReg.host}/x/busybox:1`], { env: { DOCKER_CONFIG: path.join(dir, 'no-such-config') } });
  assert.equal(noAuth.exitCode, 1);
  assert.match(noAuth.stderr.trim(), /^lbuild: 127\.0\.0\.1:\d+: authentication required \(no credentials for it in the Docker config; docker login or set DOCKER_CONFIG\)$/);
  const cfgDir = path.join(dir, 'docker-config');
  await fsp.mkdir(cfgDir, { recursive: true });
  await fsp.writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [authReg.host]: { auth: Buffer.from('ci:s3cret').toString('base64') } } }));
  await lbuildOk(root, ['push', 'busybox:latest', `${authReg.host}/x/busybox:1`], { env: { DOCKER_CONFIG: cfgDir } });
  await fsp.writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [authReg.host]: { auth: Buffer.from('ci:wrong').toString('base64') } } }));
  const wrong = await lbuild(root, ['pull', `${authReg.host}/x/busybox:1`], { env: { DOCKER_CONFIG: cfgDir } });
  assert.equal(wrong.exitCode, 1);
  assert.match(wrong.stderr, /access denied \(401\)|authentication/);
});

test('credential helpers: credHelpers for the host, then credsStore, as docker reads them (issue 15.7)', async () => {
  // a real helper program speaking the docker-credential protocol (get: host on stdin, JSON out)
  const bin = path.join(dir, 'helper-bin');
  await fsp.mkdir(bin, { recursive: true });
  const helper = (name: string, user: string, secret: string): Promise<void> =>
    fsp.writeFile(path.join(bin, `docker-credential-${name}`), `#!/bin/sh\n[ "$1" = get ] || exit 1\nread host\ncase "$host" in ${authReg.host}) printf '{"ServerURL":"%s","Username":"${user}","Secret":"${secret}"}' "$host" ;; *) echo "credentials not found in native keychain"; exit 1 ;; esac\n`, { mode: 0o755 });
  await helper('good', 'ci', 's3cret');
  await helper('bad', 'ci', 'nope');
  const cfgDir = path.join(dir, 'helper-config');
  await fsp.mkdir(cfgDir, { recursive: true });
  const env = { DOCKER_CONFIG: cfgDir, PATH: `${bin}:${process.env.PATH ?? ''}` };
  await fsp.writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ credsStore: 'bad', credHelpers: { [authReg.host]: 'good' } }));
  await lbuildOk(root, ['push', 'busybox:latest', `${authReg.host}/helper/busybox:1`], { env });
  await fsp.writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ credsStore: 'good' }));
  await lbuildOk(root, ['pull', `${authReg.host}/helper/busybox:1`], { env });
  await fsp.writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ credsStore: 'bad' }));
  const denied = await lbuild(root, ['pull', `${authReg.host}/helper/busybox:1`], { env });
  assert.equal(denied.exitCode, 1);
  await fsp.writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ credHelpers: { [authReg.host]: 'missing' } }));
  const missing = await lbuild(root, ['pull', `${authReg.host}/helper/busybox:1`], { env });
  assert.equal(missing.exitCode, 1);
  assert.match(missing.stderr, /credential helper docker-credential-missing is not installed/);
});

test('a corrupted blob in the registry makes pull fail and leaves the store unchanged', async () => {
  const ctx = await writeContext(path.join(dir, 'ctx4'), { Dockerfile: 'FROM busybox\nRUN head -c 100000 /dev/urandom > /data' });
  await lbuildOk(root, ['build', '-t', 'corrupt:1', ctx]);
  await lbuildOk(root, ['push', 'corrupt:1', `${reg.host}/c/corrupt:1`]);
  // flip a byte in the random layer's blob (the manifest's last layer) inside the registry's storage
  const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/c/corrupt:1`]);
  const digest = (JSON.parse(raw.stdout) as { layers: { digest: string }[] }).layers.at(-1)?.digest ?? '';
  const hex = digest.slice(7);
  const file = path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  const bytes = await fsp.readFile(file);
  const mid = Math.floor(bytes.length / 2);
  bytes[mid] = (bytes[mid] ?? 0) ^ 0xff;
  await fsp.writeFile(file, bytes);
  const fresh = path.join(dir, 'fresh-corrupt');
  await importBusybox(fresh, 'busybox:latest');
  const before = await storeFiles(fresh);
  const r = await lbuild(fresh, ['pull', `${reg.host}/c/corrupt:1`]);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr.trim().split('\n').pop() ?? '', /^lbuild: layer sha256:[0-9a-f]{64}: (digest mismatch|corrupt or truncated download)/);
  assert.deepEqual(await storeFiles(fresh), before, 'nothing added to the store');
});

test('interop: skopeo copies what lbuild pushed into an OCI layout that umoci unpacks', async () => {
  const layout = path.join(dir, 'skopeo-layout');
  const cp = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/team/app:1`, `oci:${layout}:app`]);
  assert.equal(cp.exitCode, 0, cp.stderr);
  const bundle = path.join(dir, 'skopeo-bundle');
  const un = await run('umoci', ['unpack', '--image', `${layout}:app`, bundle]);
  assert.equal(un.exitCode, 0, un.stderr);
  assert.equal(await fsp.readFile(path.join(bundle, 'rootfs', 'pushed'), 'utf8'), 'pushed\n');
  assert.ok((await fsp.stat(path.join(bundle, 'rootfs', 'bin', 'busybox'))).isFile());
});
