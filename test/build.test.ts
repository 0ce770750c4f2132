import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { importBusybox, storeFixture } from './helpers/busybox.js';
import { lbuild, lbuildOk, run } from './helpers/cli.js';
import { mountsUnder, unpackWithUmoci, writeContext } from './helpers/context.js';

let dir: string;
let root: string;
storeFixture(
  (d, r) => {
    dir = d;
    root = r;
  },
  () => assert.deepEqual(mountsUnder(dir), [], 'no overlay mount is left under the test store'),
);

let n = 0;
async function build(files: Record<string, Parameters<typeof writeContext>[1][string]>, args: string[] = [], env?: Record<string, string>): Promise<{ ctx: string; out: Awaited<ReturnType<typeof lbuild>> }> {
  const ctx = await writeContext(path.join(dir, `ctx${++n}`), files);
  const out = await lbuild(root, ['build', '--progress', 'plain', ...args, ctx], env ? { env } : {});
  return { ctx, out };
}
async function buildOk(files: Parameters<typeof build>[0], args: string[] = [], env?: Record<string, string>): Promise<string> {
  const { out } = await build(files, args, env);
  assert.equal(out.exitCode, 0, `build failed:\n${out.stderr}`);
  return out.stdout.trim();
}
async function rootfs(tag: string): Promise<string> {
  const work = path.join(dir, `unpack${++n}`);
  await fsp.mkdir(work);
  return unpackWithUmoci(async (o) => void (await lbuildOk(root, ['save', tag, '-o', o, '--format', 'oci'])), work, tag.split(':')[1] ?? 'latest');
}
async function layerEntries(tag: string, index: number): Promise<string[]> {
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', tag])).stdout) as { RootFS: { Layers: string[] } }[];
  const diffId = i?.RootFS.Layers.at(index) as string;
  const t = await run('tar', ['-tvf', path.join(root, 'blobs', 'sha256', diffId.slice(7))]);
  return t.stdout.split('\n').filter((l) => l !== '');
}

test('RUN over overlay: whiteouts for deleted files and dirs, opaque dir for a dir deleted and recreated', async () => {
  await buildOk(
    {
      Dockerfile: [
        'FROM busybox',
        'RUN mkdir -p /srv/a/b /srv/c && echo 1 > /srv/a/b/one && echo 2 > /srv/a/two && echo 3 > /srv/c/old',
        'RUN rm -rf /srv/a/b && rm /srv/a/two && rm /bin/ls && rm -rf /srv/c && mkdir /srv/c && echo new > /srv/c/new',
      ].join('\n'),
    },
    ['-t', 'wh:1'],
  );
  const entries = await layerEntries('wh:1', -1);
  const names = entries.map((l) => l.split(/\s+/).pop());
  assert.ok(names.includes('srv/a/.wh.b'), `whiteout for a dir: ${names.join(' ')}`);
  assert.ok(names.includes('srv/a/.wh.two'), 'whiteout for a file');
  assert.ok(names.includes('bin/.wh.ls'), 'whiteout for a base file');
  assert.ok(names.includes('srv/c/.wh..wh..opq'), 'opaque marker for a dir deleted and recreated');
  assert.ok(names.indexOf('srv/c/.wh..wh..opq') < names.indexOf('srv/c/new'), 'the opaque marker comes before its siblings');
  const fs = await rootfs('wh:1');
  await assert.rejects(fsp.access(path.join(fs, 'srv/a/b')));
  await assert.rejects(fsp.access(path.join(fs, 'srv/a/two')));
  await assert.rejects(fsp.access(path.join(fs, 'bin/ls')));
  await assert.rejects(fsp.access(path.join(fs, 'srv/c/old')));
  assert.equal(await fsp.readFile(path.join(fs, 'srv/c/new'), 'utf8'), 'new\n');
  assert.ok((await fsp.stat(path.join(fs, 'bin/busybox'))).isFile());
});

test('hardlinks, setuid and sticky bits survive into the image', async () => {
  await buildOk(
    {
      Dockerfile: [
        'FROM busybox',
        'RUN echo data > /orig && ln /orig /linked && cp /bin/busybox /suid && chmod 4755 /suid && mkdir -m 1777 /shared && chmod 2750 /shared',
        'RUN chmod 1777 /shared',
      ].join('\n'),
    },
    ['-t', 'modes:1'],
  );
  const entries = await layerEntries('modes:1', -2);
  assert.ok(entries.some((l) => /^h/.test(l) && /linked link to orig|orig link to linked/.test(l)), `a hardlink entry: ${entries.join('\n')}`);
  const fs = await rootfs('modes:1');
  const a = await fsp.stat(path.join(fs, 'orig'));
  const b = await fsp.stat(path.join(fs, 'linked'));
  assert.equal(a.ino, b.ino, 'one inode for both names');
  assert.equal((await fsp.stat(path.join(fs, 'suid'))).mode & 0o7777, 0o4755);
  assert.equal((await fsp.stat(path.join(fs, 'shared'))).mode & 0o7777, 0o1777);
});

test('USER and WORKDIR: names resolved in the image, created dirs owned by the user', async () => {
  await buildOk(
    {
      Dockerfile: [
        'FROM busybox',
        "RUN echo 'app:x:1234:4321::/home/app:/bin/sh' >> /etc/passwd && echo 'appgrp:x:4321:' >> /etc/group && echo 'extra:x:777:app' >> /etc/group",
        'USER app',
        'WORKDIR /home/app/work',
        'RUN id > id.txt && pwd > pwd.txt && echo $HOME > home.txt',
        'USER 55:66',
        'RUN id -u > /tmp/numeric',
      ].join('\n'),
    },
    ['-t', 'user:1'],
  );
  const fs = await rootfs('user:1');
  const st = await fsp.stat(path.join(fs, 'home/app/work'));
  assert.deepEqual([st.uid, st.gid], [1234, 4321]);
  const id = await fsp.readFile(path.join(fs, 'home/app/work/id.txt'), 'utf8');
  assert.match(id, /uid=1234\(app\) gid=4321\(appgrp\)/);
  assert.match(id, /groups=.*777\(extra\)/, 'supplementary groups from /etc/group');
  assert.equal(await fsp.readFile(path.join(fs, 'home/app/work/pwd.txt'), 'utf8'), '/home/app/work\n');
  assert.equal(await fsp.readFile(path.join(fs, 'home/app/work/home.txt'), 'utf8'), '/home/app\n');
  const owned = await fsp.stat(path.join(fs, 'home/app/work/id.txt'));
  assert.deepEqual([owned.uid, owned.gid], [1234, 4321]);
  assert.equal(await fsp.readFile(path.join(fs, 'tmp/numeric'), 'utf8'), '55\n');
  const bad = await build({ Dockerfile: 'FROM busybox\nUSER nobody-here\nRUN true' });
  assert.equal(bad.out.exitCode, 1);
  assert.match(bad.out.stderr, /unable to find user nobody-here/);
});

test('exec and shell forms, SHELL, ENV and ARG reach RUN; the host environment does not', async () => {
  await buildOk(
    {
      Dockerfile: [
        'FROM busybox',
        'ARG GREETING=hi',
        'ENV WHO=world',
        'RUN ["/bin/sh", "-c", "echo exec $0 $WHO > /exec.txt", "zero"]',
        'RUN echo "$GREETING $WHO" > /shell.txt',
        'SHELL ["/bin/sh", "-ec"]',
        'RUN echo "$-" > /flags.txt',
        'RUN env > /env.txt',
        'RUN ["echo", "$WHO"]',
      ].join('\n'),
    },
    ['-t', 'forms:1', '--build-arg', 'GREETING=hello'],
    { LBUILD_TEST_HOST_SECRET: 'leak' },
  );
  const fs = await rootfs('forms:1');
  assert.equal(await fsp.readFile(path.join(fs, 'exec.txt'), 'utf8'), 'exec zero world\n');
  assert.equal(await fsp.readFile(path.join(fs, 'shell.txt'), 'utf8'), 'hello world\n');
  assert.match(await fsp.readFile(path.join(fs, 'flags.txt'), 'utf8'), /e/);
  const env = await fsp.readFile(path.join(fs, 'env.txt'), 'utf8');
  assert.match(env, /^WHO=world$/m);
  assert.match(env, /^GREETING=hello$/m);
  assert.match(env, /^PATH=\/usr\/local\/sbin:/m);
  assert.doesNotMatch(env, /LBUILD_TEST_HOST_SECRET/);
  assert.equal((await fsp.readdir(path.join(fs, 'etc'))).includes('hosts'), false, '/etc/hosts (a mount) is not in the image');
});

test('RUN heredocs: a shell script, and a script for the interpreter named by its #! line', async () => {
  await buildOk(
    {
      Dockerfile: [
        'FROM busybox',
        'RUN <<EOF',
        'echo one > /h1',
        'echo two >> /h1',
        'EOF',
        'RUN <<EOF',
        '#!/usr/bin/awk -f',
        'BEGIN { print "from awk" > "/h2" }',
        'EOF',
        'RUN cat <<EOF > /h3',
        'via $HOME',
        'EOF',
      ].join('\n'),
    },
    ['-t', 'heredoc:1'],
  );
  const fs = await rootfs('heredoc:1');
  assert.equal(await fsp.readFile(path.join(fs, 'h1'), 'utf8'), 'one\ntwo\n');
  assert.equal(await fsp.readFile(path.join(fs, 'h2'), 'utf8'), 'from awk\n');
  assert.equal(await fsp.readFile(path.join(fs, 'h3'), 'utf8'), 'via /root\n');
  await assert.rejects(fsp.access(path.join(fs, 'dev', 'pipes')), 'the script mount is not in the image');
});

test('RUN sees only the image root and its own processes', async () => {
  const marker = path.join(dir, 'host-only-marker');
  await fsp.writeFile(marker, 'host');
  await buildOk(
    {
      Dockerfile: `FROM busybox\nRUN (test -e ${marker} && echo visible || echo hidden) > /seen && ps -o pid,comm | wc -l > /procs && hostname > /host`,
    },
    ['-t', 'iso:1'],
  );
  const fs = await rootfs('iso:1');
  assert.equal(await fsp.readFile(path.join(fs, 'seen'), 'utf8'), 'hidden\n');
  assert.ok(Number((await fsp.readFile(path.join(fs, 'procs'), 'utf8')).trim()) <= 5, 'a fresh PID namespace');
  assert.equal(await fsp.readFile(path.join(fs, 'host'), 'utf8'), 'buildkitsandbox\n');
});

test('multi-stage with --target: stages the target does not need are not built', async () => {
  const files = {
    Dockerfile: [
      'FROM busybox AS build',
      'RUN echo built > /artifact',
      'FROM busybox AS broken',
      'RUN exit 7',
      'FROM scratch AS final',
      'COPY --from=build /artifact /artifact',
      'FROM final AS never',
      'RUN exit 9',
    ].join('\n'),
  };
  await buildOk(files, ['-t', 'ms:1', '--target', 'final']);
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', 'ms:1'])).stdout) as { RootFS: { Layers: string[] }; Config: { WorkingDir: string } }[];
  assert.equal(i?.RootFS.Layers.length, 1);
  const fs = await rootfs('ms:1');
  assert.equal(await fsp.readFile(path.join(fs, 'artifact'), 'utf8'), 'built\n');
  const all = await build(files, ['-t', 'ms:2']);
  assert.equal(all.out.exitCode, 1, 'the last stage needs the failing RUN');
});

test('a failing RUN: exit 1, the Dockerfile line, its output; nothing mounted or left in tmp', async () => {
  const { out } = await build({ Dockerfile: 'FROM busybox\nRUN echo preparing\nRUN echo about to fail; exit 3\n' });
  assert.equal(out.exitCode, 1);
  const last = out.stderr.trim().split('\n').pop() ?? '';
  assert.match(last, /^lbuild: Dockerfile:3: RUN echo about to fail; exit 3 exited with code 3 \(last output: about to fail\)$/);
  assert.match(out.stderr, /#\d+ [\d.]+ about to fail/);
  assert.deepEqual(mountsUnder(root), []);
  assert.deepEqual(await fsp.readdir(path.join(root, 'tmp')), []);
});

test('SOURCE_DATE_EPOCH makes two builds in two stores give the same image digest', async () => {
  const files = { Dockerfile: 'FROM busybox\nCOPY f /f\nRUN echo x > /x && touch /y\nWORKDIR /w\nENV A=1', f: 'content' };
  const ids: string[] = [];
  for (const s of ['a', 'b']) {
    const r = path.join(dir, `repro-${s}`);
    // the base is imported with the same SOURCE_DATE_EPOCH, so it is the same image in both stores
    await importBusybox(r, 'busybox:latest', { SOURCE_DATE_EPOCH: '1600000000' });
    const ctx = await writeContext(path.join(dir, `repro-ctx-${s}`), files);
    await new Promise((res) => setTimeout(res, 1100));
    const out = await lbuildOk(r, ['build', '--build-arg', 'SOURCE_DATE_EPOCH=1700000000', '-t', 'r:1', ctx], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    ids.push(out.stdout.trim());
  }
  assert.notEqual(ids[0], undefined);
  assert.equal(ids[0], ids[1]);
});

test('COPY/ADD: dir contents, wildcards, --chown names, --chmod, ADD extracts a tar by content, COPY of a URL refused', async () => {
  const d = path.join(dir, 'tarsrc');
  await fsp.mkdir(path.join(d, 'pkg'), { recursive: true });
  await fsp.writeFile(path.join(d, 'pkg', 'inside.txt'), 'in tar');
  const tarFile = path.join(dir, 'payload.bin');
  assert.equal((await run('tar', ['-czf', tarFile, '-C', d, 'pkg'])).exitCode, 0);
  const ctx = await writeContext(path.join(dir, 'copyctx'), {
    Dockerfile: [
      'FROM busybox',
      "RUN echo 'svc:x:700:701::/:/bin/sh' >> /etc/passwd && echo 'svcg:x:701:' >> /etc/group",
      'COPY src/ /app/',
      'COPY *.md /docs/',
      'COPY --chown=svc:svcg --chmod=640 secret.txt /etc/app/secret',
      'ADD payload.bin /opt/',
      'COPY link /followed',
    ].join('\n'),
    'src/a.txt': 'a',
    'src/sub/b.txt': 'b',
    'src/rel-link': { symlink: 'a.txt' },
    'one.md': '1',
    'two.md': '2',
    'secret.txt': 's',
    link: { symlink: 'one.md' },
  });
  await fsp.copyFile(tarFile, path.join(ctx, 'payload.bin'));
  await lbuildOk(root, ['build', '-t', 'copy:1', ctx]);
  const fs = await rootfs('copy:1');
  assert.equal(await fsp.readFile(path.join(fs, 'app/a.txt'), 'utf8'), 'a');
  assert.equal(await fsp.readFile(path.join(fs, 'app/sub/b.txt'), 'utf8'), 'b');
  assert.equal(await fsp.readlink(path.join(fs, 'app/rel-link')), 'a.txt', 'symlinks inside a copied dir stay symlinks');
  assert.deepEqual((await fsp.readdir(path.join(fs, 'docs'))).sort(), ['one.md', 'two.md']);
  const sec = await fsp.stat(path.join(fs, 'etc/app/secret'));
  assert.deepEqual([sec.uid, sec.gid, sec.mode & 0o777], [700, 701, 0o640]);
  assert.equal(await fsp.readFile(path.join(fs, 'opt/pkg/inside.txt'), 'utf8'), 'in tar');
  assert.equal((await fsp.lstat(path.join(fs, 'followed'))).isFile(), true, 'a symlink named as a source is followed');
  assert.equal(await fsp.readFile(path.join(fs, 'followed'), 'utf8'), '1');

  for (const [df, re] of [
    ['FROM busybox\nADD https://127.0.0.1:1/x /x', /Dockerfile:2: ADD: cannot fetch https:\/\/127\.0\.0\.1:1\/x/],
    ['FROM busybox\nCOPY http://127.0.0.1:1/x /x', /COPY of http:\/\/127\.0\.0\.1:1\/x is not supported \(COPY takes no URL: use ADD\)/],
    ['FROM busybox\nCOPY ../outside /x', /outside the build context/],
    ['FROM busybox\nCOPY missing.txt /x', /Dockerfile:2: COPY failed: missing.txt: not found/],
  ] as const) {
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), df);
    const r = await lbuild(root, ['build', ctx]);
    assert.equal(r.exitCode, 1, df);
    assert.match(r.stderr, re);
  }
});

test('a context symlink pointing outside the context is not followed out of it', async () => {
  const outside = path.join(dir, 'outside-secret');
  await fsp.writeFile(outside, 'host secret');
  const { out } = await build({ Dockerfile: 'FROM busybox\nCOPY escape /escape', escape: { symlink: outside } });
  // the link is resolved inside the context root, where that path does not exist
  assert.equal(out.exitCode, 1);
  assert.match(out.stderr, /escape: not found/);
});

test('a 200-step Dockerfile builds (past the 128-layer limit of the peers)', async () => {
  const lines = ['FROM busybox'];
  for (let i = 0; i < 200; i++) lines.push(`RUN echo ${i} > /step-${i % 7}`);
  lines.push('RUN test "$(cat /step-3)" = 199');
  await buildOk({ Dockerfile: lines.join('\n') }, ['-t', 'tall:1']);
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', 'tall:1'])).stdout) as { RootFS: { Layers: string[] } }[];
  assert.ok((i?.RootFS.Layers.length ?? 0) >= 201, `layers: ${i?.RootFS.Layers.length}`);
  const fs = await rootfs('tall:1');
  assert.equal(await fsp.readFile(path.join(fs, 'step-3'), 'utf8'), '199\n', 'step 199 wrote it last (199 % 7 = 3)');
});

test('lbuild run: a throwaway container of an image', async () => {
  await buildOk({ Dockerfile: 'FROM busybox\nRUN echo kept > /kept\nCMD ["cat", "/kept"]' }, ['-t', 'runme:1']);
  const r = await lbuild(root, ['run', '--rm', 'runme:1']);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout, 'kept');
  const w = await lbuild(root, ['run', 'runme:1', 'sh', '-c', 'echo changed > /kept; exit 4']);
  assert.equal(w.exitCode, 4);
  const again = await lbuild(root, ['run', 'runme:1']);
  assert.equal(again.stdout, 'kept', 'changes of a run are discarded');
});

test('lbuild run --entrypoint and --user replace the image\'s, as docker run', async () => {
  await buildOk({ Dockerfile: 'FROM busybox\nUSER 1000:1000\nENTRYPOINT ["echo", "entry"]\nCMD ["cmd"]' }, ['-t', 'entry:1']);
  assert.equal((await lbuildOk(root, ['run', 'entry:1'])).stdout, 'entry cmd');
  assert.equal((await lbuildOk(root, ['run', 'entry:1', 'arg'])).stdout, 'entry arg');
  // --entrypoint drops the image's CMD; '' means none
  assert.equal((await lbuildOk(root, ['run', '--entrypoint', 'id', 'entry:1', '-u'])).stdout, '1000');
  assert.equal((await lbuildOk(root, ['run', '--entrypoint', '', '--user', '0:0', 'entry:1', 'sh', '-c', 'id -u; id -g'])).stdout, '0\n0');
});
