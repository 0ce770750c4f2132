import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { formatPlatform, parsePlatform, parsePlatforms, platformArgs } from '../src/oci/platform.js';
import { arm64Busybox, importBusybox } from './helpers/busybox.js';
import { lbuild, lbuildOk, removeDir, run, tempDir } from './helpers/cli.js';
import { startDockerd } from './helpers/dockerd.js';
import { startRegistry } from './helpers/registry.js';
import { writeContext } from './helpers/context.js';

// issue 19: builds for another platform, RUN under QEMU user emulation

let dir: string;
let root: string;
let ctx: string;

const DOCKERFILE = [
  'FROM scratch',
  'ARG TARGETARCH',
  'ARG TARGETPLATFORM',
  'COPY busybox-${TARGETARCH} /bin/busybox',
  'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox uname -m > /arch; echo $TARGETPLATFORM > /target"]',
  'CMD ["/bin/busybox", "cat", "/arch"]',
].join('\n');

before(async () => {
  dir = tempDir('lbuild-platform-');
  root = path.join(dir, 'store');
  ctx = await writeContext(path.join(dir, 'ctx'), { Dockerfile: DOCKERFILE });
  await fsp.copyFile(await arm64Busybox(), path.join(ctx, 'busybox-arm64'));
  await fsp.copyFile('/bin/busybox', path.join(ctx, 'busybox-amd64'));
  await fsp.chmod(path.join(ctx, 'busybox-arm64'), 0o755);
  // lbuild's own helper registers Debian's qemu-user-static handlers with the fix-binary flag
  const reg = await lbuild(root, ['binfmt', '--install']);
  assert.equal(reg.exitCode, 0, `${reg.stderr} (apt-get install qemu-user-static)`);
  await importBusybox(root, 'busybox:latest');
});
after(async () => {
  await removeDir(dir);
});

test('19: platforms parse and normalise as containerd does; the platform ARGs follow --platform', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', arch: 'arm64' });
  assert.deepEqual(parsePlatform('aarch64'), { os: 'linux', arch: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm'), { os: 'linux', arch: 'arm', variant: 'v7' });
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', arch: 'amd64' });
  assert.equal(formatPlatform(parsePlatform('linux/arm/v6')), 'linux/arm/v6');
  assert.deepEqual(parsePlatforms('linux/amd64, linux/arm64,linux/amd64').map(formatPlatform), ['linux/amd64', 'linux/arm64']);
  assert.throws(() => parsePlatform('windows/amd64'), /only linux images/);
  assert.throws(() => parsePlatform('linux/sparc'), /unknown architecture sparc/);
  const a = platformArgs(parsePlatform('linux/arm/v7'), parsePlatform('linux/amd64'));
  assert.deepEqual([a.TARGETPLATFORM, a.TARGETARCH, a.TARGETVARIANT, a.BUILDPLATFORM, a.BUILDARCH], ['linux/arm/v7', 'arm', 'v7', 'linux/amd64', 'amd64']);
});

test('19: --platform linux/arm64 builds an arm64 image whose RUN ran under emulation; the host build stays apart in the cache', async () => {
  const arm = await lbuildOk(root, ['build', '--progress', 'plain', '--platform', 'linux/arm64', '-t', 'mp:arm64', ctx]);
  assert.match(arm.stderr, /cache miss: not built before/);
  assert.equal((await lbuildOk(root, ['run', 'mp:arm64'])).stdout.trim(), 'aarch64');
  assert.equal((await lbuildOk(root, ['run', 'mp:arm64', '/bin/busybox', 'cat', '/target'])).stdout.trim(), 'linux/arm64');
  assert.equal((await lbuildOk(root, ['inspect', '-f', '{{.Os}}/{{.Architecture}}', 'mp:arm64'])).stdout.trim(), 'linux/arm64');
  // the same Dockerfile for this host: another platform in every key, said as the reason
  const host = await lbuildOk(root, ['build', '--progress', 'plain', '-t', 'mp:amd64', ctx]);
  assert.equal(host.stderr.match(/cache miss: platform changed \(linux\/arm64 → linux\/amd64\)/g)?.length, 2, host.stderr);
  assert.equal((await lbuildOk(root, ['run', 'mp:amd64'])).stdout.trim(), 'x86_64');
  assert.equal((await lbuildOk(root, ['inspect', '-f', '{{.Architecture}}', 'mp:amd64'])).stdout.trim(), 'amd64');
  // each platform's records stay: both rebuild from the cache (an explicit host platform is the host's)
  for (const p of ['linux/arm64', 'linux/amd64']) {
    const again = await lbuildOk(root, ['build', '--progress', 'plain', '--platform', p, ctx]);
    assert.match(again.stderr, /cache: 2\/2 steps hit/, `${p}: ${again.stderr}`);
  }
});

test('19: the cache does not change an arm64 build: cached and --no-cache give the same image (same SOURCE_DATE_EPOCH)', async () => {
  const sde = ['--build-arg', 'SOURCE_DATE_EPOCH=1700000000'];
  const cold = (await lbuildOk(root, ['build', '-q', '--no-cache', '--platform', 'linux/arm64', ...sde, ctx])).stdout.trim();
  const cached = await lbuildOk(root, ['build', '--progress', 'plain', '--platform', 'linux/arm64', ...sde, ctx]);
  assert.match(cached.stderr, /cache: 2\/2 steps hit/);
  assert.equal(cached.stdout.trim(), cold);
  const cold2 = (await lbuildOk(root, ['build', '-q', '--no-cache', '--platform', 'linux/arm64', ...sde, ctx])).stdout.trim();
  assert.equal(cold2, cold, 'two cold builds agree');
});

test('19: FROM --platform=$BUILDPLATFORM runs natively inside a foreign build; a base image of another platform is refused by name', async () => {
  const cross = await writeContext(path.join(dir, 'cross'), {
    Dockerfile: [
      'FROM --platform=$BUILDPLATFORM busybox:latest AS tools',
      'ARG TARGETARCH',
      'RUN uname -m > /built-on && echo $TARGETARCH > /built-for',
      'FROM scratch',
      'COPY busybox-arm64 /bin/busybox',
      'COPY --from=tools /built-on /built-for /',
      'RUN ["/bin/busybox", "uname", "-m"]',
    ].join('\n'),
  });
  await fsp.copyFile(path.join(ctx, 'busybox-arm64'), path.join(cross, 'busybox-arm64'));
  const r = await lbuildOk(root, ['build', '--progress', 'plain', '--platform', 'linux/arm64', '-t', 'cross:1', cross]);
  assert.match(r.stderr, /aarch64/);
  assert.equal((await lbuildOk(root, ['run', 'cross:1', '/bin/busybox', 'cat', '/built-on', '/built-for'])).stdout.trim(), 'x86_64\narm64');
  // busybox:latest in the store is this host's: an arm64 stage cannot use it
  const wrong = await writeContext(path.join(dir, 'wrong'), { Dockerfile: 'FROM busybox:latest\nRUN true\n' });
  const refused = await lbuild(root, ['build', '--platform', 'linux/arm64', '--pull=never', wrong]);
  assert.equal(refused.exitCode, 1);
  assert.match(refused.stderr, /^lbuild: Dockerfile:1: image busybox:latest in the store is linux\/amd64, not linux\/arm64, and --pull=never forbids pulling the linux\/arm64 one \(lbuild pull --platform linux\/arm64 busybox:latest\)/);
  assert.equal(refused.stderr.trim().split('\n').length, 1);
});

test('19: without a QEMU handler a foreign RUN fails in one line naming what to install; binfmt --install registers it again', async () => {
  await fsp.writeFile('/proc/sys/fs/binfmt_misc/qemu-aarch64', '-1');
  try {
    const r = await lbuild(root, ['build', '--no-cache', '--platform', 'linux/arm64', ctx]);
    assert.equal(r.exitCode, 1);
    assert.equal(r.stderr.trim().split('\n').pop(), 'lbuild: Dockerfile:5: RUN for linux/arm64 needs QEMU user emulation: no binfmt_misc handler for aarch64; as root, apt-get install qemu-user-static, then lbuild binfmt --install');
    const status = await lbuildOk(root, ['binfmt']);
    assert.match(status.stdout, /linux\/arm64\s+qemu-aarch64\s+missing/);
  } finally {
    const again = await lbuildOk(root, ['binfmt', '--install']);
    assert.match(again.stdout, /registered: arm64/);
    assert.match(again.stdout, /linux\/arm64\s+qemu-aarch64\s+ready/);
  }
});

test('19: one build, two platforms: an OCI index in the store, pushed, and picked right by skopeo and dockerd; $BUILDPLATFORM stages build once', async () => {
  const reg = await startRegistry(dir);
  const dockerd = await startDockerd(dir);
  try {
    const multi = await writeContext(path.join(dir, 'multi'), {
      Dockerfile: [
        'FROM --platform=$BUILDPLATFORM busybox:latest AS tools',
        'RUN uname -m > /built-on',
        'FROM scratch',
        'ARG TARGETARCH',
        'COPY busybox-${TARGETARCH} /bin/busybox',
        'COPY --from=tools /built-on /built-on',
        'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox uname -m > /arch"]',
        'CMD ["/bin/busybox", "cat", "/arch"]',
      ].join('\n'),
    });
    for (const a of ['amd64', 'arm64']) await fsp.copyFile(path.join(ctx, `busybox-${a}`), path.join(multi, `busybox-${a}`));
    const name = `${reg.host}/team/multi:1`;
    const ociOut = path.join(dir, 'multi-oci.tar');
    const r = await lbuildOk(root, ['build', '--progress', 'plain', '--platform', 'linux/amd64,linux/arm64', '-t', name, '--push', '-o', `type=oci,dest=${ociOut}`, multi]);
    // each platform's steps are named by it; the host-platform tools stage ran once, then hit
    assert.match(r.stderr, /\[linux\/amd64 tools 2\/2\] RUN uname -m > \/built-on\n#\d+ \d+\.\d+ cache miss/);
    assert.match(r.stderr, /\[linux\/arm64 tools 2\/2\] RUN uname -m > \/built-on\n#\d+ CACHED/);
    assert.match(r.stderr, /writing image index sha256:[0-9a-f]{64} \(linux\/amd64, linux\/arm64\)/);
    const indexDigest = r.stdout.trim();
    assert.match(indexDigest, /^sha256:[0-9a-f]{64}$/);
    // the store: one row with both platforms, inspect names the index and lists them
    const rows = JSON.parse((await lbuildOk(root, ['images', '--format', 'json'])).stdout) as { Repository: string; Id: string; Platforms: string[] }[];
    const row = rows.find((x) => x.Repository === `${reg.host}/team/multi`);
    assert.deepEqual(row && { Id: row.Id, Platforms: row.Platforms }, { Id: indexDigest, Platforms: ['linux/amd64', 'linux/arm64'] });
    assert.equal((await lbuildOk(root, ['inspect', '-f', '{{.Id}} {{json .Platforms}}', name])).stdout.trim(), `${indexDigest} ["linux/amd64","linux/arm64"]`);
    // lbuild run takes this host's image of it
    assert.equal((await lbuildOk(root, ['run', name])).stdout.trim(), 'x86_64');
    // the registry holds an OCI index with both platforms; skopeo picks each
    const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`])).stdout) as { mediaType: string; manifests: { platform: { architecture: string } }[] };
    assert.equal(raw.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(raw.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64']);
    const arm = JSON.parse((await run('skopeo', ['inspect', '--override-arch', 'arm64', '--tls-verify=false', `docker://${name}`])).stdout) as { Architecture: string };
    assert.equal(arm.Architecture, 'arm64');
    // dockerd pulls the platform it is asked for and runs it (arm64 under the same emulation)
    for (const [p, want] of [['linux/arm64', 'aarch64'], ['linux/amd64', 'x86_64']] as const) {
      const out = await dockerd.docker(['run', '--rm', '--platform', p, name]);
      assert.equal(out.exitCode, 0, out.stderr);
      assert.equal(out.stdout.trim(), want);
    }
    const builtOn = await dockerd.docker(['run', '--rm', '--platform', 'linux/arm64', name, '/bin/busybox', 'cat', '/built-on']);
    assert.equal(builtOn.stdout.trim(), 'x86_64', 'the tools stage ran on the build platform');
    // a base image pulled for each platform from the index (another platform's kept untagged)
    const root3 = path.join(dir, 'store3');
    const onTop = await writeContext(path.join(dir, 'on-top'), { Dockerfile: `FROM ${name}\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox uname -m > /again"]\n` });
    const both = await lbuildOk(root3, ['build', '--progress', 'plain', '--platform', 'linux/arm64,linux/amd64', '-t', 'on-top:1', onTop]);
    assert.match(both.stderr, /\[internal\] pull .*multi:1 \(linux\/arm64\)/);
    for (const [p, want] of [['linux/arm64', 'aarch64'], ['linux/amd64', 'x86_64']] as const) {
      const img = (JSON.parse((await lbuildOk(root3, ['inspect', 'on-top:1'])).stdout) as { Platforms: string[] }[])[0];
      assert.deepEqual(img?.Platforms, ['linux/arm64', 'linux/amd64']);
      const out = await lbuildOk(root3, ['build', '-q', '--platform', p, onTop]);
      assert.equal((await lbuildOk(root3, ['run', out.stdout.trim(), '/bin/busybox', 'cat', '/again'])).stdout.trim(), want);
    }
    // the name stays on this host's image
    assert.equal((await lbuildOk(root3, ['inspect', '-f', '{{.Architecture}}', name])).stdout.trim(), 'amd64');
    // the OCI layout output holds the index too
    const fromLayout = JSON.parse((await run('skopeo', ['inspect', '--override-arch', 'arm64', `oci-archive:${ociOut}:1`])).stdout) as { Architecture: string };
    assert.equal(fromLayout.Architecture, 'arm64');
    // save: OCI keeps every platform, a docker-archive cannot and says so in one line
    const saved = path.join(dir, 'multi-saved.tar');
    await lbuildOk(root, ['save', '--format', 'oci', '-o', saved, name]);
    assert.equal((JSON.parse((await run('skopeo', ['inspect', '--override-arch', 'arm64', `oci-archive:${saved}:1`])).stdout) as { Architecture: string }).Architecture, 'arm64');
    // and load takes it back as one multi-platform image: the same index, both platforms
    const root2 = path.join(dir, 'store2');
    const loaded = await lbuildOk(root2, ['load', '-i', saved]);
    assert.equal(loaded.stdout.trim(), `Loaded image: ${name}`);
    assert.equal((await lbuildOk(root2, ['inspect', '-f', '{{.Id}} {{json .Platforms}}', name])).stdout.trim(), `${indexDigest} ["linux/amd64","linux/arm64"]`);
    // fsck: a multi-platform image without its index blob is found, and --repair drops its name
    await fsp.rm(path.join(root2, 'blobs', 'sha256', indexDigest.slice(7)));
    const check = await lbuild(root2, ['fsck']);
    assert.equal(check.exitCode, 1);
    assert.match(check.stdout + check.stderr, new RegExp(`multi-platform image ${indexDigest.slice(7, 19)}: missing index ${indexDigest}`));
    await lbuildOk(root2, ['fsck', '--repair']);
    assert.equal((await lbuild(root2, ['inspect', name])).exitCode, 1);
    assert.equal((await lbuildOk(root2, ['fsck'])).exitCode, 0);
    const buildah = await run('buildah', ['--storage-driver', 'vfs', '--root', path.join(dir, 'buildah'), '--runroot', path.join(dir, 'buildah-run'), 'pull', '--arch', 'arm64', '--tls-verify=false', '-q', `docker://${name}`]);
    assert.equal(buildah.exitCode, 0, buildah.stderr);
    const bArch = await run('buildah', ['--storage-driver', 'vfs', '--root', path.join(dir, 'buildah'), '--runroot', path.join(dir, 'buildah-run'), 'inspect', '--type', 'image', '--format', '{{.OCIv1.Architecture}}', buildah.stdout.trim()]);
    assert.equal(bArch.stdout.trim(), 'arm64', 'buildah picks arm64 from the index');
    const dockerFormat = await lbuild(root, ['save', '-o', path.join(dir, 'no.tar'), name]);
    assert.equal(dockerFormat.exitCode, 2);
    assert.match(dockerFormat.stderr, /^lbuild: .*a docker-archive holds one platform per image; use the OCI format/);
    const load = await lbuild(root, ['build', '--platform', 'linux/amd64,linux/arm64', '--load', multi]);
    assert.equal(load.exitCode, 2);
    assert.match(load.stderr.trim(), /^lbuild: --load takes one platform's image: build one --platform for it, or deliver all of them with --push or --output type=oci$/);
    // prune keeps a tagged index and its images; rmi removes them together
    await lbuildOk(root, ['prune', '-f']);
    assert.equal((await lbuildOk(root, ['inspect', '-f', '{{.Id}}', name])).stdout.trim(), indexDigest);
    const rmi = await lbuildOk(root, ['rmi', name]);
    assert.match(rmi.stdout, new RegExp(`Deleted: ${indexDigest}`));
    assert.equal((await lbuild(root, ['inspect', name])).exitCode, 1);
    assert.equal((await lbuildOk(root, ['run', 'busybox:latest', 'uname', '-m'])).stdout.trim(), 'x86_64', 'other images stay');
  } finally {
    await dockerd.stop();
    await reg.stop();
  }
});

test('19: a rebuild moves the name to a new index; the old one is dangling, and prune takes it with its platform images', async () => {
  const c = await writeContext(path.join(dir, 'moved'), { Dockerfile: 'FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} v.txt /\n', 'v.txt': 'one\n' });
  for (const a of ['amd64', 'arm64']) await fsp.copyFile(path.join(ctx, `busybox-${a}`), path.join(c, `busybox-${a}`));
  const first = (await lbuildOk(root, ['build', '-q', '--platform', 'linux/amd64,linux/arm64', '-t', 'moved:1', c])).stdout.trim();
  await fsp.writeFile(path.join(c, 'v.txt'), 'two\n');
  const second = (await lbuildOk(root, ['build', '-q', '--platform', 'linux/amd64,linux/arm64', '-t', 'moved:1', c])).stdout.trim();
  assert.notEqual(second, first);
  const listed = JSON.parse((await lbuildOk(root, ['images', '--format', 'json'])).stdout) as { Repository: string; Id: string }[];
  assert.deepEqual(listed.filter((r) => r.Repository === 'moved').map((r) => r.Id), [second]);
  const pruned = await lbuildOk(root, ['prune', '-f']);
  assert.match(pruned.stdout, new RegExp(`deleted image: ${first}`));
  assert.equal((await lbuildOk(root, ['inspect', '-f', '{{.Id}}', 'moved:1'])).stdout.trim(), second);
  assert.equal((await lbuildOk(root, ['fsck'])).exitCode, 0);
  // both platform images of the new index are still whole
  const saved = path.join(dir, 'moved.tar');
  await lbuildOk(root, ['save', '--format', 'oci', '-o', saved, 'moved:1']);
  assert.equal((JSON.parse((await run('skopeo', ['inspect', '--override-arch', 'arm64', `oci-archive:${saved}:1`])).stdout) as { Architecture: string }).Architecture, 'arm64');
});
