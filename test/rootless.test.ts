import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { busyboxRootfsTar } from './helpers/busybox.js';
import { REPO, lbuildOk, run, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';
import { startRegistry, type Registry } from './helpers/registry.js';

// issue 18.2: a user who is not root builds, runs, saves and pushes, and the layers are a root build's

const USER = 'lbuild-rl';
const BARE = 'lbuild-rl-bare';
const EPOCH = '1700000000';

let dir: string;
let home: string;
let rootStore: string;
let reg: Registry;
let uid: number;
/** the bundled CLI, copied where the user can read it (the checkout may be under root's home) */
let bin: string;

interface Out {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** lbuild as an unprivileged user, its store in the default place under HOME. */
async function asUser(user: string, args: string[], env: Record<string, string> = {}): Promise<Out> {
  const r = await execa('runuser', ['-u', user, '--', 'env', `HOME=${home}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, bin, ...args], {
    reject: false,
    stdin: 'ignore',
    cwd: home,
    extendEnv: false,
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function asUserOk(args: string[], env: Record<string, string> = {}): Promise<Out> {
  const r = await asUser(USER, args, env);
  if (r.exitCode !== 0) throw new Error(`(as ${USER}) lbuild ${args.join(' ')} exited ${r.exitCode}\n${r.stderr}\n${r.stdout}`);
  return r;
}

async function ensureUser(name: string): Promise<number> {
  if ((await run('id', ['-u', name])).exitCode !== 0) {
    const r = await run('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', name]);
    assert.equal(r.exitCode, 0, `useradd ${name}: ${r.stderr}`);
  }
  return Number((await run('id', ['-u', name])).stdout.trim());
}

function hasRange(file: string, name: string): boolean {
  return readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith(`${name}:`));
}

const DOCKERFILE = `FROM busybox AS build
RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /runs
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /toklen
COPY --chown=65534:65533 sub/ /app/
RUN --mount=type=bind,source=sub,target=/ctx cp /ctx/a.txt /copied && chown 1000:1000 /copied && chmod 4755 /copied
RUN mkdir -p /gone/deep && touch /gone/deep/x && mkdir /opaque && touch /opaque/old
RUN rm -rf /gone /opaque && mkdir /opaque && touch /opaque/new
FROM busybox
COPY --from=build /app /app
COPY --from=build /copied /toklen /
COPY --from=build /opaque /opaque
USER 65534:65534
RUN id > /tmp/id
`;

let ctx: string;
let secret: string;

before(async () => {
  dir = tempDir('lbuild-rootless-');
  // runuser needs the user's way in: the temp dir is the user's
  await fsp.chmod(dir, 0o755);
  uid = await ensureUser(USER);
  await ensureUser(BARE);
  for (const [file, flag] of [['/etc/subuid', '--add-subuids'], ['/etc/subgid', '--add-subgids']] as const) {
    if (!hasRange(file, USER)) assert.equal((await run('usermod', [flag, '200000-265535', USER])).exitCode, 0);
    // BARE has none, to see the message
    for (const line of readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith(`${BARE}:`))) {
      const [, start, count] = line.split(':');
      await run('usermod', [flag === '--add-subuids' ? '--del-subuids' : '--del-subgids', `${start}-${Number(start) + Number(count) - 1}`, BARE]);
    }
  }
  // what Debian's udev rules do on a machine with udev: slirp4netns opens it as the user
  await fsp.chmod('/dev/net/tun', 0o666);
  // the installed shape, where the user can read it (/work may not be): bin/ and the bundle in dist/
  bin = path.join(dir, 'app', 'bin', 'lbuild.js');
  await fsp.mkdir(path.join(dir, 'app', 'dist'), { recursive: true });
  await fsp.mkdir(path.dirname(bin));
  await fsp.copyFile(path.join(REPO, 'bin', 'lbuild.js'), bin);
  await fsp.writeFile(path.join(dir, 'app', 'package.json'), '{"type":"module"}\n');
  for (const f of ['lbuild.cjs', 'lbuild.cjs.cache']) await fsp.copyFile(path.join(REPO, 'dist', f), path.join(dir, 'app', 'dist', f));
  home = path.join(dir, 'home');
  await fsp.mkdir(home);
  ctx = await writeContext(path.join(home, 'ctx'), { Dockerfile: DOCKERFILE, 'sub/a.txt': 'hello\n' });
  secret = path.join(home, 'token');
  await fsp.writeFile(secret, 's3cret', { mode: 0o600 });
  await fsp.copyFile(await busyboxRootfsTar(), path.join(home, 'busybox.tar'));
  assert.equal((await run('chown', ['-R', `${USER}:${USER}`, home])).exitCode, 0);
  rootStore = path.join(dir, 'root-store');
  reg = await startRegistry(dir);
});

after(async () => {
  await reg.stop();
  // the user's store holds files of its subordinate ids: removed as root
  await fsp.rm(dir, { recursive: true, force: true });
});

async function layersOf(out: string): Promise<string[]> {
  const [i] = JSON.parse(out) as { RootFS: { Layers: string[] } }[];
  return i?.RootFS.Layers ?? [];
}

test('18.2: rootless build, run, save and push give the layers of a root build (same diff_ids)', async () => {
  const env = { SOURCE_DATE_EPOCH: EPOCH };
  const build = ['build', '--progress', 'plain', '--secret', `id=tok,src=${secret}`, '-t', 'rl:1', ctx];
  // as root
  await lbuildOk(rootStore, ['import', path.join(home, 'busybox.tar'), 'busybox:latest']);
  await lbuildOk(rootStore, build, { env });
  const rootLayers = await layersOf((await lbuildOk(rootStore, ['inspect', 'rl:1'])).stdout);
  assert.equal(rootLayers.length, 5);

  // as the user: the store is the XDG default, made in the user's own namespace
  await asUserOk(['import', path.join(home, 'busybox.tar'), 'busybox:latest']);
  const cold = await asUserOk(build, env);
  assert.match(cold.stderr, /cache: 0\/\d+ steps hit/);
  const userLayers = await layersOf((await asUserOk(['inspect', 'rl:1'])).stdout);
  assert.deepEqual(userLayers, rootLayers);
  const store = path.join(home, '.local', 'share', 'lbuild');
  assert.equal((await fsp.readFile(path.join(store, 'overlay-xattrs'), 'utf8')).trim(), 'user');
  assert.equal((await fsp.stat(store)).uid, uid);

  // the cache: a second build hits every step and names the same image
  const warm = await asUserOk(build, env);
  assert.match(warm.stderr, /cache: (\d+)\/\1 steps hit \(100%\)/);
  assert.equal(warm.stdout.trim(), cold.stdout.trim());

  // run: the image's owners, the secret's length but not the secret, the cache mount used once
  const seen = await asUserOk(['run', 'rl:1', 'sh', '-c', 'cat /tmp/id /toklen; stat -c "%u:%g %a %n" /app/a.txt /copied; ls /opaque; ls /gone 2>&1 | head -1']);
  assert.equal(seen.stdout, 'uid=65534 gid=65534\n6\n65534:65533 644 /app/a.txt\n1000:1000 4755 /copied\nnew\nls: /gone: No such file or directory');
  const history = await asUserOk(['history', '--format', 'json', 'rl:1']);
  assert.doesNotMatch(history.stdout, /s3cret/);

  // save: a docker archive owned by the user, whose layers are the root build's
  const archive = path.join(home, 'rl.tar');
  await asUserOk(['save', 'rl:1', '-o', archive]);
  assert.equal((await fsp.stat(archive)).uid, uid);
  const manifest = JSON.parse((await run('tar', ['-xOf', archive, 'manifest.json'])).stdout) as { Layers: string[] }[];
  assert.deepEqual(manifest[0]?.Layers.map((l) => `sha256:${path.basename(l)}`), rootLayers);

  // push: skopeo reads the pushed image's config from the registry
  await asUserOk(['push', 'rl:1', `${reg.host}/rootless/rl:1`]);
  const cfg = await run('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${reg.host}/rootless/rl:1`]);
  assert.equal(cfg.exitCode, 0, cfg.stderr);
  assert.deepEqual((JSON.parse(cfg.stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids, rootLayers);

  // the namespace's mounts die with it: none is left in the host's table
  assert.doesNotMatch(await fsp.readFile('/proc/mounts', 'utf8'), new RegExp(store.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});

test('18.2: rootless networks: the default is private, host reaches the host\'s loopback, none has none', async () => {
  const server = await import('node:http').then((h) => h.createServer((_q, s) => s.end('lbuild-host\n')));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const ask = `(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 ${port} | grep lbuild- || echo unreachable)`;
    for (const [mode, want] of [['default', 'unreachable'], ['host', 'lbuild-host'], ['none', 'unreachable']] as const) {
      const r = await asUserOk(['run', '--network', mode, 'busybox', 'sh', '-c', `${ask}; ls /sys | grep -c . >/dev/null && echo sys`]);
      assert.equal(r.stdout, `${want}\nsys`, `--network ${mode}`);
    }
  } finally {
    server.close();
  }
});

test('18.2: rootless, a killed lbuild stops its build: no process or container of the user is left', async () => {
  const slow = await writeContext(path.join(home, 'slow'), { Dockerfile: 'FROM busybox\nRUN sleep 60\n' });
  await run('chown', ['-R', `${USER}:${USER}`, slow]);
  const child = execa('runuser', ['-u', USER, '--', 'env', `HOME=${home}`, process.execPath, bin, 'build', '--progress', 'plain', slow], { reject: false, stdin: 'ignore', all: true, buffer: true });
  // wait for the RUN to start
  for (let i = 0; i < 100 && (await run('pgrep', ['-u', USER, '-x', 'sleep'])).exitCode !== 0; i++) await sleep(100);
  assert.equal((await run('pgrep', ['-u', USER, '-x', 'sleep'])).exitCode, 0, 'the RUN never started');
  // SIGKILL the outer lbuild (the node process runuser started): the inner one sees its pipe close
  const outer = (await run('pgrep', ['-u', USER, '-f', '-o', bin])).stdout.trim();
  assert.match(outer, /^\d+$/);
  process.kill(Number(outer), 'SIGKILL');
  await child;
  let left = '';
  for (let i = 0; i < 100; i++) {
    left = (await run('pgrep', ['-u', USER, '-a', '.'])).stdout.trim();
    if (left === '') break;
    await sleep(100);
  }
  assert.equal(left, '', 'processes of the user still running');
  // the next command starts clean, and the store is sound
  const fsck = await asUserOk(['fsck']);
  assert.match(fsck.stdout + fsck.stderr, /the store is consistent/);
});

test('18.2: what rootless cannot do is one line: no subordinate range, a device node, an owner outside the range', async () => {
  const r = await asUser(BARE, ['images']);
  assert.equal(r.exitCode, 1);
  assert.equal(r.stderr, `lbuild: rootless: user ${BARE} has no subordinate uid range in /etc/subuid (as root: usermod --add-subuids 100000-165535 ${BARE})`);
  // no newuidmap on PATH (unshare is)
  const tools = path.join(dir, 'tools');
  await fsp.mkdir(tools, { recursive: true });
  await fsp.symlink('/usr/bin/unshare', path.join(tools, 'unshare')).catch(() => undefined);
  const noMap = await execa('runuser', ['-u', USER, '--', '/usr/bin/env', `PATH=${tools}`, `HOME=${home}`, process.execPath, bin, 'images'], { reject: false, stdin: 'ignore', extendEnv: false });
  assert.equal(noMap.exitCode, 1);
  assert.equal(noMap.stderr, 'lbuild: rootless: newuidmap is not installed (as root: apt-get install uidmap)');
  // what a user namespace cannot hold is named, not half-made
  const src = path.join(dir, 'odd');
  await fsp.mkdir(path.join(src, 'dev'), { recursive: true });
  assert.equal((await run('mknod', [path.join(src, 'dev', 'null'), 'c', '1', '3'])).exitCode, 0);
  await fsp.writeFile(path.join(src, 'big'), 'x');
  await fsp.chown(path.join(src, 'big'), 70000, 70000);
  for (const [name, what, want] of [
    ['dev.tar', 'dev', 'tar entry "dev/null": a device node (1:3) cannot be made rootless; use this image as root'],
    ['big.tar', 'big', 'tar entry "big": owner 70000:70000 is outside the rootless id range (0-65536); give the user a larger range in /etc/subuid and /etc/subgid'],
  ] as const) {
    const tar = path.join(home, name);
    assert.equal((await run('tar', ['--numeric-owner', '-C', src, '-cf', tar, what])).exitCode, 0);
    await fsp.chown(tar, uid, uid);
    const r = await asUser(USER, ['import', tar, `odd:${what}`]);
    assert.equal(r.exitCode, 1);
    assert.equal(r.stderr, `lbuild: ${tar}: ${want}`);
  }
  const tmp = await fsp.readdir(path.join(home, '.local', 'share', 'lbuild', 'tmp'));
  assert.deepEqual(tmp, [], 'a failed import left its temp dir');
  // lint needs no store, so no namespace either
  const df = path.join(home, 'Dockerfile.lint');
  await fsp.writeFile(df, 'FROM busybox\nRUN true\n');
  const lint = await asUser(BARE, ['lint', '-f', df]);
  assert.doesNotMatch(lint.stderr, /rootless/);
});
