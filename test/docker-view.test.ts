import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from './helpers/busybox.js';
import { lbuildOk, removeDir, run, tempDir } from './helpers/cli.js';
import { copyHostTools, writeContext } from './helpers/context.js';
import { type Dockerd, startDockerd } from './helpers/dockerd.js';

// issue 15: a layer means the same thing to Docker as to lbuild: `lbuild save | docker load`,
// then the same command under `docker run` and `lbuild run`

let dir: string;
let root: string;
let dockerd: Dockerd;
before(async () => {
  dir = tempDir();
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  dockerd = await startDockerd(dir);
});
after(async () => {
  await dockerd?.stop();
  await removeDir(dir);
});

/** Build, load into dockerd, and run `cmd` both ways; both outputs must be `expected`. */
async function bothWays(tag: string, ctx: string, cmd: string, expected: string): Promise<void> {
  await lbuildOk(root, ['build', '-t', tag, ctx]);
  const archive = path.join(dir, `${tag.replace(/\W/g, '_')}.tar`);
  await lbuildOk(root, ['save', tag, '-o', archive]);
  const load = await dockerd.docker(['load', '-i', archive]);
  assert.equal(load.exitCode, 0, load.stderr);
  const viaDocker = await dockerd.docker(['run', '--rm', '--network', 'none', tag, 'sh', '-c', cmd]);
  assert.equal(viaDocker.exitCode, 0, viaDocker.stderr);
  const viaLbuild = await lbuildOk(root, ['run', '--rm', tag, 'sh', '-c', cmd]);
  assert.equal(viaDocker.stdout.trim(), expected, 'under docker run');
  assert.equal(viaLbuild.stdout.trim(), expected, 'under lbuild run');
}

test('15.1: a directory only copied up keeps its mode and owner under Docker (parents are in the layer)', async () => {
  const ctx = await writeContext(path.join(dir, 'parents'), {
    Dockerfile: 'FROM busybox\nRUN mkdir -p /data/sub && chown 1000:1000 /data && chmod 1777 /data && touch -d 2001-01-01 /data\nRUN echo x > /data/sub/x\n',
  });
  await bothWays('parents:1', ctx, 'stat -c "%n %a %u:%g" /data /data/sub', '/data 1777 1000:1000\n/data/sub 755 0:0');
});

test('15.2: COPY dir/ into WORKDIR keeps the destination directory as it was', async () => {
  const ctx = await writeContext(path.join(dir, 'copydir'), {
    'dir/f': 'hi',
    Dockerfile: 'FROM busybox\nWORKDIR /app\nCOPY --chown=1001:1001 dir/ ./\nCOPY dir /new/\n',
  });
  await fsp.chmod(path.join(ctx, 'dir'), 0o700);
  await bothWays('copydir:1', ctx, 'stat -c "%n %a %u:%g" /app /app/f /new /new/f', '/app 755 0:0\n/app/f 644 1001:1001\n/new 755 0:0\n/new/f 644 0:0');
});

test('a RUN that changes nothing gives an empty layer; one that writes a file lists only its real parents', async () => {
  const ctx = await writeContext(path.join(dir, 'empty'), { Dockerfile: 'FROM busybox\nRUN true\nRUN echo y > /tmp/y\n' });
  await lbuildOk(root, ['build', '-t', 'empty:1', ctx]);
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', 'empty:1'])).stdout) as { RootFS: { Layers: string[] } }[];
  const layers = i?.RootFS.Layers ?? [];
  const list = async (d: string): Promise<string> => (await run('tar', ['-tf', path.join(root, 'blobs', 'sha256', d.slice(7))])).stdout.trim();
  assert.equal(await list(layers[1] as string), '', 'RUN true: empty');
  assert.equal(await list(layers[2] as string), 'tmp/\ntmp/y');
});

test('15.4/15.5: bind and cache mounts without target= mount at the working directory; rw binds discard their writes', async () => {
  const ctx = await writeContext(path.join(dir, 'mounts'), {
    'src/a.txt': 'A',
    Dockerfile: 'FROM busybox\nWORKDIR /work\nRUN --mount=type=bind,source=src cat a.txt > /seen\nRUN --mount=type=bind,source=src,rw echo changed > a.txt && cat a.txt > /seen-rw\nRUN --mount=type=cache,id=c1 echo cached > here && ls /work > /cache-list\n',
  });
  await bothWays('mounts:1', ctx, 'cat /seen; echo; cat /seen-rw /cache-list; ls -A /work | wc -l', 'A\nchanged\nhere\n0');
  assert.equal(await fsp.readFile(path.join(ctx, 'src', 'a.txt'), 'utf8'), 'A', 'the context is untouched');
});

test('15.3: extended attributes (file capabilities, user.*) ship in layer tars and mean the same under Docker', async () => {
  const ctx = await writeContext(path.join(dir, 'xattrs'), {
    Dockerfile: [
      'FROM busybox',
      'COPY tools/ /',
      // cap_net_bind_service=ep as a raw VFS capability (v2), plus a user attribute and a forged overlay one
      'RUN cp /bin/busybox /nb && setfattr -n security.capability -v 0x0100000200040000000000000000000000000000 /nb && touch /f && setfattr -n user.note -v hello /f && setfattr -n user.overlay.fake -v y /f',
      '',
    ].join('\n'),
  });
  await copyHostTools(ctx);
  const shown = '# file: f\nuser.note="hello"\n\n# file: nb\nsecurity.capability=0x0100000200040000000000000000000000000000';
  await bothWays('xattrs:1', ctx, 'cd / && getfattr -d -m - f; getfattr -d -m - -e hex nb', shown);
  // through an archive and back: `lbuild load` applies them again
  const archive = path.join(dir, 'xattrs-roundtrip.tar');
  await lbuildOk(root, ['save', 'xattrs:1', '-o', archive]);
  const fresh = path.join(dir, 'fresh-store');
  await lbuildOk(fresh, ['load', '-i', archive]);
  const out = await lbuildOk(fresh, ['run', '--rm', 'xattrs:1', 'sh', '-c', 'cd / && getfattr -d -m - f; getfattr -d -m - -e hex nb']);
  assert.equal(out.stdout.trim(), shown);
});

test('15.3: COPY keeps the xattrs of context files and of a stage\'s files, through --chown, under Docker too', async () => {
  const ctx = await writeContext(path.join(dir, 'copy-xattrs'), {
    'app/run.sh': '#!/bin/sh\n',
    'app/conf/a.conf': 'a=1\n',
    Dockerfile: [
      'FROM busybox AS build',
      'COPY app/ /stage/',
      'FROM busybox',
      'COPY tools/ /',
      'COPY app/ /app/',
      'COPY --chown=1:1 app/run.sh /owned',
      'COPY --from=build /stage/run.sh /multi',
      '',
    ].join('\n'),
  });
  await copyHostTools(ctx);
  await run('setfattr', ['-n', 'security.capability', '-v', '0x0100000200040000000000000000000000000000', path.join(ctx, 'app/run.sh')]);
  await run('setfattr', ['-n', 'user.note', '-v', 'hi', path.join(ctx, 'app/run.sh')]);
  await run('setfattr', ['-n', 'user.dir', '-v', 'conf', path.join(ctx, 'app/conf')]);
  const cap = 'security.capability=0x0100000200040000000000000000000000000000\nuser.note=0x6869';
  const shown = ['# file: app/conf', 'user.dir=0x636f6e66', '', '# file: app/run.sh', cap, '', '# file: multi', cap, '', '# file: owned', cap].join('\n');
  await bothWays('copyx:1', ctx, 'cd / && getfattr -d -m - -e hex app/conf app/run.sh multi owned', shown);
});
