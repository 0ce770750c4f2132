import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from './helpers/busybox.js';
import { BIN, REPO, lbuild, lbuildOk, run, tempDir } from './helpers/cli.js';
import { copyHostTools, writeContext } from './helpers/context.js';
import { type Dockerd, startDockerd } from './helpers/dockerd.js';
import { type Registry, startRegistry } from './helpers/registry.js';

// issue 16: lbuild in place of `docker build` in scripts and CI

let dir: string;
let root: string;
let dockerd: Dockerd;
let reg: Registry;

before(async () => {
  dir = tempDir('lbuild-dropin-');
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  dockerd = await startDockerd(dir);
  reg = await startRegistry(dir);
});
after(async () => {
  await dockerd?.stop();
  await reg?.stop();
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A shell pipeline with lbuild (as `L`) and docker (talking to the test's dockerd) in it. */
async function shell(script: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('bash', ['-o', 'pipefail', '-c', script], {
    reject: false,
    stdin: 'ignore',
    env: { L: `${process.execPath} ${BIN} --root ${root}`, DOCKER_HOST: `unix://${dockerd.socket}` },
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

test('16.1: npm pack, npm install -g from the tarball, then lbuild --version, --help and the man page', async () => {
  const packDir = path.join(dir, 'pack');
  await fsp.mkdir(packDir);
  // dist/ is built by the test run; prepack would only rebuild the same bundle
  const pack = await execa('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: REPO, reject: false, stdin: 'ignore' });
  assert.equal(pack.exitCode, 0, pack.stderr);
  const tgz = path.join(packDir, String(pack.stdout).trim().split('\n').pop() as string);
  const listing = (await run('tar', ['-tzf', tgz])).stdout.split('\n');
  for (const f of ['package/bin/lbuild.js', 'package/dist/lbuild.cjs', 'package/dist/lbuild.cjs.cache', 'package/docs/lbuild.1', 'package/package.json']) assert.ok(listing.includes(f), `${f} in the package`);
  assert.ok(!listing.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/')), 'sources and tests stay out');
  const prefix = path.join(dir, 'prefix');
  // --offline: the dependencies come from npm's cache (npm ci filled it); nothing leaves the machine
  const inst = await execa('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tgz], { reject: false, stdin: 'ignore' });
  assert.equal(inst.exitCode, 0, inst.stderr);
  const bin = path.join(prefix, 'bin', 'lbuild');
  const version = await execa(bin, ['--version'], { reject: false, stdin: 'ignore' });
  assert.equal(version.stdout, JSON.parse(await fsp.readFile(path.join(REPO, 'package.json'), 'utf8')).version);
  const help = await execa(bin, ['--help'], { reject: false, stdin: 'ignore' });
  assert.equal(help.exitCode, 0);
  assert.match(help.stdout, /Examples:\n {2}lbuild -t app:1 \./);
  assert.match(await fsp.readFile(path.join(prefix, 'share', 'man', 'man1', 'lbuild.1'), 'utf8'), /^\.TH LBUILD 1/m);
});

test('16.1/16.8: version, completion, -h, unknown commands and flags as Docker words them', async () => {
  const v = await lbuildOk(root, ['version']);
  assert.match(v.stdout, /^lbuild \d+\.\d+\.\d+\nnode v20\./);
  const comp = await lbuildOk(root, ['completion']);
  assert.match(comp.stdout, /complete -o bashdefault -o default -F _lbuild_yargs_completions lbuild/);
  const words = await lbuildOk(root, ['--get-yargs-completions', 'lbuild', 'ima']);
  assert.ok(words.stdout.split('\n').includes('images'));
  assert.match((await lbuildOk(root, ['build', '-h'])).stdout, /--metadata-file/);
  const typo = await lbuild(root, ['imagse']);
  assert.equal(typo.exitCode, 2);
  assert.equal(typo.stderr, 'lbuild: unknown command "imagse" (did you mean "images"?); see lbuild --help');
  assert.match((await lbuild(root, ['biuld', '.'])).stderr, /did you mean "build"/);
  const flag = await lbuild(root, ['build', '--add-hots', 'x:1.2.3.4', dir]);
  assert.equal(flag.stderr, 'lbuild: Unknown argument: add-hots');
});

test('16.3: the Dockerfile or the whole context from stdin; save | docker load and docker save | lbuild load', async () => {
  const ctx = await writeContext(path.join(dir, 'pipes'), { 'a.txt': 'from the context\n', Dockerfile: 'FROM busybox\nRUN false\n' });
  // -f -: the Dockerfile on disk is not the one built
  const f = await lbuildOk(root, ['build', '-q', '-f', '-', '-t', 'pipe:f', ctx], { input: 'FROM busybox\nCOPY a.txt /\n' });
  assert.match(f.stdout, /^sha256:[0-9a-f]{64}$/);
  assert.equal((await lbuildOk(root, ['run', 'pipe:f', 'cat', '/a.txt'])).stdout, 'from the context');
  // build -: a Dockerfile and no context
  const d = await lbuildOk(root, ['build', '--progress', 'plain', '-t', 'pipe:d', '-'], { input: 'FROM busybox\nRUN echo no-context && ls /\n' });
  assert.match(d.stderr, /no-context/);
  const both = await lbuild(root, ['build', '-f', '-', '-'], { input: 'FROM busybox\n' });
  assert.equal(both.stderr, 'lbuild: the Dockerfile and the context cannot both come from standard input');
  // build -: a gzipped context tar with its Dockerfile
  await fsp.writeFile(path.join(ctx, 'Dockerfile.tar'), 'FROM busybox\nCOPY a.txt /from-tar.txt\n');
  const tarred = await shell(`tar -C ${ctx} -czf - a.txt Dockerfile.tar | $L build -q -f Dockerfile.tar -t pipe:t -`);
  assert.equal(tarred.exitCode, 0, tarred.stderr);
  assert.equal((await lbuildOk(root, ['run', 'pipe:t', 'cat', '/from-tar.txt'])).stdout, 'from the context');
  // lbuild save | docker load; docker save | lbuild load (into another store)
  const toDocker = await shell('$L save pipe:t | docker load');
  assert.equal(toDocker.exitCode, 0, toDocker.stderr);
  assert.match(toDocker.stdout, /Loaded image: pipe:t/);
  assert.equal((await dockerd.docker(['run', '--rm', '--network', 'none', 'pipe:t', 'cat', '/from-tar.txt'])).stdout, 'from the context');
  // 16.7: sizes as Docker counts them (the files, not the tar bytes): image and each history row
  const dockerSize = Number((await dockerd.docker(['image', 'inspect', '--format', '{{.Size}}', 'pipe:t'])).stdout);
  const [ins] = JSON.parse((await lbuildOk(root, ['inspect', 'pipe:t'])).stdout) as { Size: number }[];
  assert.equal(ins?.Size, dockerSize);
  const dockerRows = (await dockerd.docker(['history', '--human=false', '--format', '{{.Size}}', 'pipe:t'])).stdout.split('\n').map(Number);
  const rows = (JSON.parse((await lbuildOk(root, ['history', '--format', 'json', 'pipe:t'])).stdout) as { size: number }[]).map((r) => r.size);
  assert.deepEqual(rows, dockerRows);
  assert.equal(rows[0], 'from the context\n'.length, 'the COPY of one 17-byte file is 17 bytes');
  const other = path.join(dir, 'store2');
  const fromDocker = await shell(`docker tag pipe:t back:1 && docker save back:1 | ${process.execPath} ${BIN} --root ${other} load`);
  assert.equal(fromDocker.exitCode, 0, fromDocker.stderr);
  assert.equal(fromDocker.stdout, 'Loaded image: back:1');
  assert.equal((await lbuildOk(other, ['run', 'back:1', 'cat', '/from-tar.txt'])).stdout, 'from the context');
  const empty = await lbuild(root, ['load'], { input: '' });
  assert.equal(empty.stderr, 'lbuild: standard input is empty: no archive to load');
});

test('16.4: a fully cached rebuild keeps the image ID; a changed label gives a new one', async () => {
  const ctx = await writeContext(path.join(dir, 'sameid'), { Dockerfile: 'FROM busybox\nRUN echo x > /x\nENV A=1\n' });
  const first = (await lbuildOk(root, ['build', '-q', '-t', 'same:1', ctx])).stdout;
  const again = (await lbuildOk(root, ['build', '-q', '-t', 'same:1', ctx])).stdout;
  assert.equal(again, first);
  const labelled = (await lbuildOk(root, ['build', '-q', '--label', 'k=v', '-t', 'same:1', ctx])).stdout;
  assert.notEqual(labelled, first);
  // --no-cache runs the steps: a new build, a new created time
  await new Promise((r) => setTimeout(r, 1100));
  const cold = (await lbuildOk(root, ['build', '-q', '--no-cache', '--label', 'k=v', '-t', 'same:1', ctx])).stdout;
  assert.notEqual(cold, labelled);
});

test('16.2: -q, -o (local, tar, -, oci, docker), --push with --metadata-file, --load, --pull=never, bare --cache-from', async () => {
  const ctx = await writeContext(path.join(dir, 'outs'), { 'f.txt': 'F\n', Dockerfile: 'FROM busybox\nCOPY f.txt /out/f.txt\nRUN rm /bin/vi\n' });
  const q = await lbuildOk(root, ['build', '-q', '-t', 'outs:1', ctx]);
  assert.match(q.stdout, /^sha256:[0-9a-f]{64}$/);
  assert.equal(q.stderr, '');
  const pq = await lbuildOk(root, ['build', '--progress', 'quiet', '-t', 'outs:1', ctx]);
  assert.equal(pq.stdout, q.stdout);
  assert.equal(pq.stderr, '');
  // the final filesystem as a directory and as tars (a file, and standard output)
  const local = path.join(dir, 'local-out');
  await lbuildOk(root, ['build', '-q', '-o', local, ctx]);
  assert.equal(await fsp.readFile(path.join(local, 'out', 'f.txt'), 'utf8'), 'F\n');
  assert.equal(await fsp.lstat(path.join(local, 'bin', 'vi')).catch(() => 'gone'), 'gone');
  const tarFile = path.join(dir, 'fs.tar');
  await lbuildOk(root, ['build', '-q', '-o', `type=tar,dest=${tarFile}`, ctx]);
  const names = (await run('tar', ['-tf', tarFile])).stdout.split('\n');
  assert.ok(names.includes('out/f.txt') && names.includes('bin/busybox') && !names.includes('bin/vi'));
  const viaStdout = await shell(`$L build -o - ${ctx} 2>/dev/null | tar -t | grep -c '^out/f.txt$'`);
  assert.equal(viaStdout.stdout, '1');
  // image archives
  const oci = path.join(dir, 'img-oci.tar');
  const dock = path.join(dir, 'img-docker.tar');
  await lbuildOk(root, ['build', '-q', '-o', `type=oci,dest=${oci}`, '-o', `type=docker,dest=${dock}`, '-t', 'outs:1', ctx]);
  const skopeo = await run('skopeo', ['inspect', `oci-archive:${oci}`]);
  assert.equal(skopeo.exitCode, 0, skopeo.stderr);
  assert.match((await run('tar', ['-xOf', dock, 'manifest.json'])).stdout, /"RepoTags":\["outs:1"\]/);
  // --push and its metadata: the digest is the registry's
  const meta = path.join(dir, 'meta.json');
  const ref = `${reg.host}/team/outs:1`;
  await lbuildOk(root, ['build', '-q', '--push', '--metadata-file', meta, '-t', ref, ctx]);
  const m = JSON.parse(await fsp.readFile(meta, 'utf8')) as Record<string, string>;
  const remote = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout) as { Digest: string };
  assert.equal(m['containerimage.digest'], remote.Digest);
  assert.equal(m['containerimage.config.digest'], q.stdout);
  assert.equal(m['image.name'], ref);
  // a pull records where the image came from too (docker's RepoDigests)
  const puller = path.join(dir, 'store-pull');
  await lbuildOk(puller, ['pull', ref]);
  const [pulled] = JSON.parse((await lbuildOk(puller, ['inspect', ref])).stdout) as { RepoDigests: string[] }[];
  assert.deepEqual(pulled?.RepoDigests, [`${reg.host}/team/outs@${remote.Digest}`]);
  // --load: into the running dockerd through its API socket
  const loaded = await lbuild(root, ['build', '-q', '--load', '-t', 'loaded:1', ctx], { env: { DOCKER_HOST: `unix://${dockerd.socket}` } });
  assert.equal(loaded.exitCode, 0, loaded.stderr);
  assert.equal((await dockerd.docker(['run', '--rm', '--network', 'none', 'loaded:1', 'cat', '/out/f.txt'])).stdout, 'F');
  const noDaemon = await lbuild(root, ['build', '-q', '--load', ctx], { env: { DOCKER_HOST: `unix://${dir}/nothing.sock` } });
  assert.equal(noDaemon.exitCode, 1);
  assert.match(noDaemon.stderr, /^lbuild: --load: cannot reach dockerd at .*nothing\.sock \(ENOENT\)/);
  // --pull=never: a base not in the store is an error that says so
  const never = await writeContext(path.join(dir, 'never'), { Dockerfile: 'FROM nothere:1\n' });
  const nv = await lbuild(root, ['build', '--pull=never', never]);
  assert.equal(nv.exitCode, 1);
  assert.match(nv.stderr, /Dockerfile:1: image nothere:1: not in the store, and --pull=never forbids pulling it/);
  assert.equal((await lbuild(root, ['build', '--pull=sometimes', never])).exitCode, 2);
  // a bare reference for --cache-from; --cache-to twice is a usage error, not a crash
  const cacheRef = `${reg.host}/team/outs:cache`;
  await lbuildOk(root, ['build', '-q', '--cache-to', `type=registry,ref=${cacheRef},mode=max`, ctx]);
  const fresh = path.join(dir, 'store-fresh');
  await importBusybox(fresh, 'busybox:latest');
  const hit = await lbuildOk(fresh, ['build', '--progress', 'plain', '--cache-from', cacheRef, ctx]);
  assert.match(hit.stderr, /cache: 2\/2 steps hit/);
  const twice = await lbuild(root, ['build', '--cache-to', `type=local,dest=${dir}/c1`, '--cache-to', `type=local,dest=${dir}/c2`, ctx]);
  assert.equal(twice.exitCode, 2);
  assert.equal(twice.stderr, 'lbuild: --cache-to: give it once (lbuild exports the cache to one place)');
});

test('16.8: run -it (a real pty), -i, -v, -w, --env-file; images -q/--filter/--digests; inspect -f; prune asks', async () => {
  // -it under a pseudo-terminal (script gives lbuild one, as a user's terminal would)
  const pty = await shell(`(sleep 3) | script -qec "$L run -it busybox sh -c 'tty; [ -t 0 ] && echo stdin-is-a-tty; echo TERM=\\$TERM'" /dev/null | tr -d '\\r'`);
  assert.equal(pty.exitCode, 0, pty.stderr);
  assert.match(pty.stdout, /^\/dev\/pts\/\d+$/m);
  assert.match(pty.stdout, /^stdin-is-a-tty$/m);
  assert.match(pty.stdout, /^TERM=xterm$/m);
  const noTty = await lbuild(root, ['run', '-t', 'busybox', 'true']);
  assert.equal(noTty.stderr, 'lbuild: -t: there is no terminal here to relay (drop -t, or run under a terminal)');
  // -i hands stdin over; without it the command reads nothing
  assert.equal((await lbuildOk(root, ['run', '-i', 'busybox', 'cat'], { input: 'piped in\n' })).stdout, 'piped in');
  assert.equal((await lbuildOk(root, ['run', 'busybox', 'cat'], { input: 'piped in\n' })).stdout, '');
  // -v (read-only), -w (made), --env-file
  const vol = path.join(dir, 'vol');
  await fsp.mkdir(vol, { recursive: true });
  await fsp.writeFile(path.join(vol, 'h.txt'), 'from the host\n');
  const envFile = path.join(dir, 'env.list');
  await fsp.writeFile(envFile, '# a comment\n\nA=1\nB=two words\n');
  const r = await lbuildOk(root, ['run', '-v', `${vol}:/mnt:ro`, '-w', '/made/here', '--env-file', envFile, 'busybox', 'sh', '-c', 'pwd; cat /mnt/h.txt; echo "$A|$B"; touch /mnt/x 2>/dev/null || echo read-only']);
  assert.equal(r.stdout, '/made/here\nfrom the host\n1|two words\nread-only');
  assert.match((await lbuild(root, ['run', '-v', 'data:/data', 'busybox', 'true'])).stderr, /-v data:\/data: data is not an absolute host path/);
  // images -q, --filter, --digests
  const ctx = await writeContext(path.join(dir, 'imgs'), { Dockerfile: 'FROM busybox\nLABEL team=core\nRUN echo 1 > /one\n' });
  const id = (await lbuildOk(root, ['build', '-q', '-t', 'filt:1', '-t', 'filt:2', ctx])).stdout;
  const quiet = (await lbuildOk(root, ['images', '-q', '--filter', 'reference=filt'])).stdout.split('\n');
  assert.deepEqual(quiet, [id.slice(7, 19), id.slice(7, 19)]);
  assert.deepEqual((await lbuildOk(root, ['images', '-q', '--filter', 'label=team=core', '--filter', 'reference=filt:2'])).stdout, id.slice(7, 19));
  assert.equal((await lbuildOk(root, ['images', '-q', '--filter', 'label=team=other'])).stdout, '');
  assert.equal((await lbuild(root, ['images', '--filter', 'colour=red'])).exitCode, 2);
  const pushed = `${reg.host}/team/filt:1`;
  await lbuildOk(root, ['tag', 'filt:1', pushed]);
  await lbuildOk(root, ['push', pushed]);
  const remote = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${pushed}`])).stdout) as { Digest: string };
  const digests = (await lbuildOk(root, ['images', '--digests', '--filter', `reference=${reg.host}/team/filt`])).stdout;
  assert.match(digests, /^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE$/m);
  assert.ok(digests.includes(remote.Digest), digests);
  // inspect -f, a Go template as docker's
  assert.equal((await lbuildOk(root, ['inspect', '-f', '{{.Id}}', 'filt:1'])).stdout, id);
  assert.equal((await lbuildOk(root, ['inspect', '-f', '{{index .RepoTags 0}} {{json .Config.Labels}} {{.Config.Labels}} {{len .RootFS.Layers}}', 'filt:1'])).stdout, `${pushed} {"team":"core"} map[team:core] 2`);
  // prune asks; no answer is no
  // an image whose tag moved to a newer build is dangling (after a prune of what earlier tests left)
  await lbuildOk(root, ['prune', '-f']);
  await lbuildOk(root, ['build', '-q', '--label', 'v=1', '-t', 'dang:1', ctx]);
  await lbuildOk(root, ['build', '-q', '--label', 'v=2', '-t', 'dang:1', ctx]);
  const asked = await lbuild(root, ['prune'], { input: '' });
  assert.equal(asked.exitCode, 0);
  assert.match(asked.stderr, /^WARNING! This will remove dangling images, unused layers and stale build cache\.\nAre you sure you want to continue\? \[y\/N\] \nnothing was removed/);
  assert.equal(asked.stdout, '');
  const yes = await lbuildOk(root, ['prune'], { input: 'y\n' });
  assert.match(yes.stdout, /deleted 1 dangling image\(s\)/);
  assert.match((await lbuildOk(root, ['prune', '-f'])).stdout, /deleted 0 dangling image\(s\)/);
});

test('16.2: --build-context NAME=DIR|docker-image://REF; --ssh with RUN --mount=type=ssh, never stored', async () => {
  // a named directory for COPY --from, an image standing in for FROM's name
  const other = await writeContext(path.join(dir, 'named-other'), { 'o.txt': 'other v1\n' });
  const ctx = await writeContext(path.join(dir, 'named'), { Dockerfile: 'FROM base\nCOPY --from=project o.txt /o.txt\n' });
  const named = ['--build-context', 'base=docker-image://busybox:latest', '--build-context', `project=${other}`];
  await lbuildOk(root, ['build', '-q', ...named, '-t', 'named:1', ctx]);
  assert.equal((await lbuildOk(root, ['run', 'named:1', 'cat', '/o.txt'])).stdout, 'other v1');
  await fsp.writeFile(path.join(other, 'o.txt'), 'other v2\n');
  const again = await lbuildOk(root, ['build', '--progress', 'plain', ...named, '-t', 'named:1', ctx]);
  assert.match(again.stderr, /cache miss: source changed: o\.txt \(in the build context project\)/);
  const dirBase = await lbuild(root, ['build', '--build-context', `base=${other}`, ctx]);
  assert.match(dirBase.stderr, /^lbuild: Dockerfile:1: base: the build context base is a directory/);
  assert.equal((await lbuild(root, ['build', '--build-context', 'x=https://example.invalid/a.tar', ctx])).exitCode, 2);

  // --ssh: a key file (lbuild's own agent) and the user's agent; the RUN lists the key
  const keys = path.join(dir, 'ssh');
  await fsp.mkdir(keys, { recursive: true });
  const key = path.join(keys, 'id');
  assert.equal((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lbuild-test-key', '-f', key])).exitCode, 0);
  const tools = ['/usr/bin/ssh-add', ...(await run('sh', ['-c', "ldd /usr/bin/ssh-add | grep -o '/[^ ]*'"])).stdout.split('\n').filter((l) => l !== '')];
  const sshCtx = await writeContext(path.join(dir, 'sshctx'), {
    Dockerfile: 'FROM busybox\nCOPY tools/ /\nRUN --mount=type=ssh ssh-add -l > /listed && echo "$SSH_AUTH_SOCK" > /sock\nRUN --mount=type=ssh,id=deploy,uid=1000,mode=0600 stat -c "%u %a" /run/buildkit/ssh_agent.0 > /owner\n',
  });
  await copyHostTools(sshCtx, tools);
  await lbuildOk(root, ['build', '-q', '--ssh', `default=${key}`, '--ssh', `deploy=${key}`, '-t', 'ssh:1', sshCtx]);
  const listed = (await lbuildOk(root, ['run', 'ssh:1', 'cat', '/listed', '/sock', '/owner'])).stdout;
  assert.match(listed, /^256 SHA256:\S+ lbuild-test-key \(ED25519\)\n\/run\/buildkit\/ssh_agent\.0\n1000 600$/);
  // never stored: no socket, no key in any layer, nothing of the key in the store
  const [i] = JSON.parse((await lbuildOk(root, ['inspect', 'ssh:1'])).stdout) as { RootFS: { Layers: string[] } }[];
  for (const d of i?.RootFS.Layers.slice(1) ?? []) {
    const names = (await run('tar', ['-tf', path.join(root, 'blobs', 'sha256', d.slice(7))])).stdout;
    assert.doesNotMatch(names, /run\/buildkit|ssh_agent/);
  }
  const secretLine = (await fsp.readFile(key, 'utf8')).split('\n')[1] as string;
  const grep = await run('grep', ['-rlF', secretLine, root]);
  assert.equal(grep.stdout, '', 'the private key is nowhere in the store');
  // the user's agent, through $SSH_AUTH_SOCK: the key of the step holds no path, so it is a hit
  const agentSock = path.join(keys, 'agent.sock');
  const agent = execa('ssh-agent', ['-D', '-a', agentSock], { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
  try {
    for (let n = 0; n < 50 && !(await fsp.stat(agentSock).catch(() => undefined)); n++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await execa('ssh-add', ['-q', key], { env: { SSH_AUTH_SOCK: agentSock }, reject: false })).exitCode, 0);
    const viaAgent = await lbuildOk(root, ['build', '--progress', 'plain', '--ssh', 'default', '--ssh', `deploy=${agentSock}`, '-t', 'ssh:2', sshCtx], { env: { SSH_AUTH_SOCK: agentSock } });
    assert.match(viaAgent.stderr, /cache: 3\/3 steps hit/);
    const fresh = await lbuildOk(root, ['build', '-q', '--no-cache', '--ssh', 'default', '--ssh', `deploy=${agentSock}`, '-t', 'ssh:3', sshCtx], { env: { SSH_AUTH_SOCK: agentSock } });
    assert.match((await lbuildOk(root, ['run', fresh.stdout, 'cat', '/listed'])).stdout, /lbuild-test-key \(ED25519\)/);
  } finally {
    agent.kill('SIGTERM');
    await agent;
  }
  // required, and not given
  const req = await writeContext(path.join(dir, 'sshreq'), { Dockerfile: 'FROM busybox\nRUN --mount=type=ssh,required=true true\n' });
  assert.match((await lbuild(root, ['build', req])).stderr, /Dockerfile:2: ssh default is required but was not given \(--ssh default\)/);
});

test('17.2: start-up from the code cache: a missing or corrupt cache is rebuilt, the CLI works either way, nothing left behind', async () => {
  const app = path.join(dir, 'cache-app');
  await fsp.mkdir(path.join(app, 'bin'), { recursive: true });
  await fsp.mkdir(path.join(app, 'dist'));
  await fsp.copyFile(path.join(REPO, 'bin', 'lbuild.js'), path.join(app, 'bin', 'lbuild.js'));
  await fsp.copyFile(path.join(REPO, 'dist', 'lbuild.cjs'), path.join(app, 'dist', 'lbuild.cjs'));
  await fsp.writeFile(path.join(app, 'package.json'), '{"type":"module"}\n');
  const cache = path.join(app, 'dist', 'lbuild.cjs.cache');
  const cli = (args: string[]) => execa(process.execPath, [path.join(app, 'bin', 'lbuild.js'), ...args], { reject: false, stdin: 'ignore' });
  // none yet: compiled from source, and the cache written as the process exits
  const first = await cli(['version']);
  assert.equal(first.exitCode, 0, first.stderr);
  assert.match(first.stdout, /^lbuild \d+\.\d+\.\d+/);
  const made = await fsp.readFile(cache);
  assert.ok(made.length > 10_000, `a cache of ${made.length} bytes`);
  // the bundle's own cache (made by the build) is the same kind of file
  assert.ok((await fsp.stat(path.join(REPO, 'dist', 'lbuild.cjs.cache'))).size > 10_000);
  // a corrupt one (another Node's, or a torn file): rejected by V8, the command still right, the cache replaced
  await fsp.writeFile(cache, 'not a code cache');
  const images = await cli(['--root', root, 'images']);
  assert.equal(images.exitCode, 0, images.stderr);
  assert.match(images.stdout, /^busybox\s+latest\s+[0-9a-f]{12}\s/m);
  const rebuilt = await fsp.readFile(cache);
  assert.notEqual(rebuilt.toString('latin1'), 'not a code cache');
  assert.ok(rebuilt.length > 10_000);
  // with a good cache it is read, not rewritten
  const before = (await fsp.stat(cache)).mtimeMs;
  assert.equal((await cli(['version'])).exitCode, 0);
  assert.equal((await fsp.stat(cache)).mtimeMs, before);
  assert.deepEqual((await fsp.readdir(path.join(app, 'dist'))).sort(), ['lbuild.cjs', 'lbuild.cjs.cache'], 'no temp file left');
});
