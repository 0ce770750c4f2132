import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { busyboxRootfsTar, storeFixture } from '../helpers/busybox.js';
import { lbuild, lbuildOk, run } from '../helpers/cli.js';
import { copyHostTools, writeContext } from '../helpers/context.js';
import { assertOneLineFailure, makeCanary, writeTar } from '../helpers/hostile.js';

// issue 21: what a Dockerfile (RUN, ADD, COPY, mounts) can do to the host

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

async function layerListing(ref: string): Promise<string> {
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', ref])).stdout) as { RootFS: { Layers: string[] } }[];
  let out = '';
  for (const d of i?.RootFS.Layers ?? []) out += (await run('tar', ['-tvf', path.join(root, 'blobs', 'sha256', d.slice(7))])).stdout;
  return out;
}

test('21.3: mount stubs whose parent a RUN replaced with a link to a host dir: the host entries stay', async () => {
  const canary = await makeCanary(path.join(dir, 'canary-stubs'));
  const ctx = await writeContext(path.join(dir, 'stubs'), {
    Dockerfile: `FROM busybox\nRUN --mount=type=tmpfs,target=/zz/b --mount=type=tmpfs,target=/zz/b-dir mv /zz /zz.old && ln -s ${canary.dir} /zz\n`,
  });
  await lbuildOk(root, ['build', '-t', 'stubs:1', ctx]);
  await canary.check();
  assert.match(await layerListing('stubs:1'), new RegExp(`zz -> ${canary.dir}`));
});

test('21.4 / 21.1 via ADD: a tar that swaps a directory for a link to a host dir touches nothing there', async () => {
  const canary = await makeCanary(path.join(dir, 'canary-add'));
  await writeTar(path.join(dir, 'add-ctx-evil.tar'), [
    { name: 'x/', dir: true, mtime: new Date('1999-01-01T00:00:00Z') },
    { name: 'x', symlink: canary.dir },
    { name: 'up', symlink: '../../../../../../../../../../..' },
    { name: 'up2', symlink: `up${canary.dir}` },
    { name: 'up2/pwned', data: 'owned' },
    { name: 'abs', symlink: canary.dir },
    { name: 'abs/pwned2', data: 'owned' },
  ]);
  const ctx = await writeContext(path.join(dir, 'add'), { Dockerfile: 'FROM busybox\nADD evil.tar /dst/\n' });
  await fsp.copyFile(path.join(dir, 'add-ctx-evil.tar'), path.join(ctx, 'evil.tar'));
  await lbuildOk(root, ['build', '-t', 'add:1', ctx]);
  await canary.check();
  // the links were followed inside the image: the files landed in the image's own canary path
  const out = await lbuildOk(root, ['run', '--rm', 'add:1', 'cat', `${canary.dir}/pwned`, `${canary.dir}/pwned2`]);
  assert.equal(out.stdout, 'ownedowned');
});

test('21.5: store directories are 0700 even under a 0755 root; a setuid binary in a cache mount is out of reach', async () => {
  const shared = path.join(dir, 'shared-root');
  await fsp.mkdir(shared, { mode: 0o755 });
  await fsp.chmod(shared, 0o755);
  await fsp.chmod(dir, 0o755); // the test dir itself: let the unprivileged user walk to the store
  await lbuildOk(shared, ['import', await busyboxRootfsTar(), 'busybox:latest']);
  const ctx = await writeContext(path.join(dir, 'suid'), { Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c cp /bin/busybox /c/sh && chmod 4755 /c/sh\n' });
  await lbuildOk(shared, ['build', ctx]);
  for (const d of ['blobs', 'tmp', 'snapshots', 'l', 'cache', 'leases', 'runc']) {
    const st = await fsp.stat(path.join(shared, d)).catch(() => undefined);
    if (st) assert.equal(st.mode & 0o777, 0o700, `${d} is 0700`);
  }
  const mounts = await fsp.readdir(path.join(shared, 'cache', 'mounts'));
  assert.equal(mounts.length, 1);
  const suid = path.join(shared, 'cache', 'mounts', mounts[0] as string, 'sh');
  assert.equal(((await fsp.stat(suid)).mode & 0o4000) !== 0, true, 'the setuid binary is there');
  // through a shell running as nobody: the path lookup is the unprivileged user's own
  const asNobody = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', '/bin/sh', '-c', `${suid} -c id`]);
  assert.equal(asNobody.exitCode, 126);
  assert.match(asNobody.stderr, /Permission denied/);
  assert.doesNotMatch(asNobody.stdout, /euid=0/);
  // a root other users may write is refused at open, with one line
  const open = path.join(dir, 'open-root');
  await fsp.mkdir(open);
  await fsp.chmod(open, 0o777);
  assertOneLineFailure(await lbuild(open, ['images']), /writable by other users \(mode 777\)/);
});

test('21.6: RUN gets Docker\'s default seccomp profile; --security=insecure needs --allow', async () => {
  const ctx = await writeContext(path.join(dir, 'seccomp'), {
    Dockerfile: 'FROM busybox\nRUN grep "^Seccomp:" /proc/self/status > /seccomp && (unshare -U -r -m true 2> /unshare.err; echo $? > /unshare.rc)\n',
  });
  await lbuildOk(root, ['build', '-t', 'sc:1', ctx]);
  const out = await lbuildOk(root, ['run', '--rm', 'sc:1', 'cat', '/seccomp', '/unshare.rc', '/unshare.err']);
  assert.match(out.stdout, /^Seccomp:\s+2\n1\n.*Operation not permitted/s);
  const ins = await writeContext(path.join(dir, 'insecure'), { Dockerfile: 'FROM busybox\nRUN --security=insecure unshare -U -r -m true && echo ok > /ok\n' });
  assertOneLineFailure(await lbuild(root, ['build', ins]), /Dockerfile:2: RUN --security=insecure needs --allow security.insecure/);
  await lbuildOk(root, ['build', '--allow', 'security.insecure', '-t', 'ins:1', ins]);
  assert.equal((await lbuildOk(root, ['run', '--rm', 'ins:1', 'cat', '/ok'])).stdout, 'ok');
});

test('21.7: a user.overlay.opaque xattr set by a RUN is not taken as an opaque marker', async () => {
  const ctx = await writeContext(path.join(dir, 'opaque'), {
    Dockerfile: 'FROM busybox\nRUN mkdir -p /keep && echo lower > /keep/file\nCOPY tools/ /\nRUN setfattr -n user.overlay.opaque -v y /keep && touch /keep/new\n',
  });
  await copyHostTools(ctx);
  await lbuildOk(root, ['build', '-t', 'opq:1', ctx]);
  assert.doesNotMatch(await layerListing('opq:1'), /\.wh\.\.wh\.\.opq/);
  assert.equal((await lbuildOk(root, ['run', '--rm', 'opq:1', 'cat', '/keep/file'])).stdout, 'lower');
});

test('21.8: .dockerignore holds for symlinks to ignored files and for bind mounts', async () => {
  const ctx = await writeContext(path.join(dir, 'ignore'), {
    '.dockerignore': '.env\nsecrets\n.git\n',
    '.env': 'SECRET-ENV-VALUE',
    'secrets/key': 'SECRET-KEY-VALUE',
    '.git/config': 'SECRET-GIT-VALUE',
    envlink: { symlink: '.env' },
    sl: { symlink: 'secrets' },
    'ok.txt': 'fine',
    Dockerfile: 'FROM busybox\nCOPY envlink /t/\n',
  });
  assertOneLineFailure(await lbuild(root, ['build', ctx]), /Dockerfile:2: COPY failed: envlink: not found/);
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY sl/ /s/\n');
  assertOneLineFailure(await lbuild(root, ['build', ctx]), /COPY failed: sl\/: not found/);
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY env* ok.txt /g/\nRUN --mount=type=bind,target=/ctx ls -a /ctx > /listing; cat /ctx/.env /ctx/secrets/key /ctx/.git/config > /leak 2>/dev/null; true\n');
  await lbuildOk(root, ['build', '-t', 'ign:1', ctx]);
  const g = await lbuildOk(root, ['run', '--rm', 'ign:1', 'sh', '-c', 'ls -a /g; echo ---; cat /listing; echo ---; cat /leak']);
  const [gdir, listing, leak] = g.stdout.split(/^---$/m).map((x) => x.replace(/^\n/, ''));
  assert.deepEqual(gdir?.split('\n').filter((l) => l !== ''), ['.', '..', 'ok.txt']);
  assert.deepEqual(listing?.split('\n').filter((l) => l !== '').sort(), ['.', '..', '.dockerignore', 'Dockerfile', 'envlink', 'ok.txt', 'sl'].sort());
  assert.equal(leak, '');
  const grep = await run('grep', ['-rl', 'SECRET-', path.join(root, 'blobs')]);
  assert.equal(grep.stdout.trim(), '');
});

test('21.9: secret mounts are 0400, env= is honoured, and a failing RUN\'s output is redacted everywhere', async () => {
  const secret = path.join(dir, 'token');
  await fsp.writeFile(secret, 'TOPSECRET-VALUE-123\n');
  await fsp.chmod(secret, 0o644);
  const body = 'FROM busybox\nRUN --mount=type=secret,id=tok stat -c %a:%u /run/secrets/tok > /mode\nRUN --mount=type=secret,id=tok,env=TOK test "$(echo "$TOK" | wc -c)" = 21 && test ! -e /run/secrets/tok && echo ok > /envok\n';
  const ctx = await writeContext(path.join(dir, 'secrets'), { Dockerfile: body });
  await lbuildOk(root, ['build', '-t', 'sec:1', '--secret', `id=tok,src=${secret}`, ctx]);
  assert.equal((await lbuildOk(root, ['run', '--rm', 'sec:1', 'cat', '/mode', '/envok'])).stdout, '400:0\nok');
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), `${body}RUN --mount=type=secret,id=tok echo "token is $(cat /run/secrets/tok)"; exit 3\n`);
  const rep = path.join(dir, 'secret-report.json');
  const r = await lbuild(root, ['build', '--progress', 'plain', '--report', rep, '--secret', `id=tok,src=${secret}`, ctx]);
  assertOneLineFailure(r, /exited with code 3 \(last output: token is \*\*\*\*\)/);
  assert.doesNotMatch(r.stderr, /TOPSECRET/);
  assert.doesNotMatch(await fsp.readFile(rep, 'utf8'), /TOPSECRET/);
  const grep = await run('grep', ['-rl', 'TOPSECRET', root]);
  assert.equal(grep.stdout.trim(), '', 'no secret in history.jsonl, reports or anywhere in the store');
});
