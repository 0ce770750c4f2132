import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { lbuild, lbuildOk, removeDir, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';
import { execa } from 'execa';

// issue 15.6: ADD <git URL>#ref:subdir with the system git, against a real `git daemon` (and a
// dumb-HTTP server) on 127.0.0.1; keyed by the commit the ref names

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

let daemon: ChildProcess;
let web: http.Server;
let repo: string;
let gdir: string;
let gitUrl: string;
let httpUrl: string;
const T1 = 1_600_000_000;

/** git in the test repository, with a fixed identity and commit time. */
async function g(args: string[], time = T1, cwd = repo): Promise<string> {
  const env = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid', GIT_AUTHOR_DATE: `@${time} +0000`, GIT_COMMITTER_DATE: `@${time} +0000` };
  return (await execa('git', args, { cwd, env })).stdout.trim();
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => (c.end(), r(true)));
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

before(async () => {
  // the store fixture's own before() may not have run yet: the served repositories live apart
  gdir = tempDir('lbuild-git-');
  const base = path.join(gdir, 'git-served');
  repo = path.join(base, 'repo.git');
  await writeContext(path.join(gdir, 'work'), { 'top.txt': 'top\n', 'sub/data.txt': 'data\n', 'sub/run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o775 }, 'sub/link': { symlink: 'data.txt' } });
  const work = path.join(gdir, 'work');
  await g(['init', '-q', '-b', 'main'], T1, work);
  await g(['add', '-A'], T1, work);
  await g(['commit', '-q', '-m', 'one'], T1, work);
  await g(['tag', '-a', 'v1', '-m', 'v1'], T1, work);
  await execa('git', ['clone', '-q', '--bare', work, repo]);
  await g(['update-server-info']);
  const port = await freePort();
  daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], { stdio: 'ignore' });
  await waitForPort(port);
  gitUrl = `git://127.0.0.1:${port}/repo.git`;
  // dumb HTTP: static files of the bare repository (git fetches it whole: no shallow fetches)
  web = http.createServer((req, res) => {
    const p = path.join(base, decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/'));
    if (!p.startsWith(base)) return void res.writeHead(403).end();
    fsp.readFile(p).then(
      (b) => res.writeHead(200).end(b),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  httpUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}/repo.git`;
});
after(async () => {
  daemon?.kill();
  web?.close();
  await removeDir(gdir);
});

async function build(ctx: string, tag: string, extra: string[] = []): Promise<{ id: string; steps: { cache: string; reason?: string }[] }> {
  const rep = path.join(dir, `r-${Math.random().toString(16).slice(2)}.json`);
  const r = await lbuildOk(root, ['build', '-t', tag, '--report', rep, ...extra, ctx], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  return { id: r.stdout.trim(), steps: (JSON.parse(await fsp.readFile(rep, 'utf8')) as { steps: { cache: string; reason?: string }[] }).steps };
}
const show = async (tag: string, cmd: string): Promise<string> => (await lbuildOk(root, ['run', '--rm', tag, 'sh', '-c', cmd])).stdout.trim();

test('15.6: ADD <git URL>#tag:subdir checks out the subdirectory: git modes, root owner, commit-time mtimes, no .git', async () => {
  const ctx = await writeContext(path.join(dir, 'tag'), { Dockerfile: `FROM busybox\nADD ${gitUrl}#v1:sub /app\nADD --keep-git-dir=true ${httpUrl}#main /src\n` });
  await build(ctx, 'git:tag');
  assert.equal(await show('git:tag', 'cd /app && ls -A && stat -c "%n %a %u:%g %Y" run.sh data.txt && readlink link'), `data.txt\nlink\nrun.sh\nrun.sh 755 0:0 ${T1}\ndata.txt 644 0:0 ${T1}\ndata.txt`);
  assert.equal(await show('git:tag', 'cat /src/top.txt && test -d /src/.git && echo kept'), 'top\nkept');
});

test('15.6: a git source is keyed by the commit its ref names: an unmoved ref hits, a moved branch misses and says which commits', async () => {
  const ctx = await writeContext(path.join(dir, 'branch'), { Dockerfile: `FROM busybox\nADD ${gitUrl}#main /repo\nADD ${gitUrl}#v1 /v1\n` });
  const first = await build(ctx, 'git:branch');
  assert.deepEqual(first.steps.map((s) => s.cache), ['miss', 'miss']);
  assert.deepEqual((await build(ctx, 'git:branch')).steps.map((s) => s.cache), ['hit', 'hit']);
  const before = await g(['rev-parse', 'main']);
  // a new commit on main, pushed into the served repository
  const work = path.join(gdir, 'work');
  await fsp.writeFile(path.join(work, 'new.txt'), 'new\n');
  await g(['add', '-A'], T1 + 100, work);
  await g(['commit', '-q', '-m', 'two'], T1 + 100, work);
  await g(['push', '-q', repo, 'main'], T1 + 100, work);
  const after = await g(['rev-parse', 'main']);
  const moved = await build(ctx, 'git:branch');
  assert.deepEqual(moved.steps.map((s) => s.cache), ['miss', 'miss']);
  assert.equal(moved.steps[0]?.reason, `source changed: ${gitUrl}#main (commit ${before.slice(0, 12)} → ${after.slice(0, 12)})`);
  assert.equal(moved.steps[1]?.reason, 'parent changed (step 2 missed)');
  assert.equal(await show('git:branch', 'cat /repo/new.txt; test -e /v1/new.txt || echo absent'), 'new\nabsent');
  // the cached image is the cold one
  const cold = await build(ctx, 'git:cold', ['--no-cache']);
  assert.equal(cold.id, (await build(ctx, 'git:branch')).id);
  // a full commit id needs no lookup; --checksum pins the commit
  const pinned = await writeContext(path.join(dir, 'pinned'), { Dockerfile: `FROM busybox\nADD --checksum=${before.slice(0, 12)} ${gitUrl}#${before} /p\n` });
  await build(pinned, 'git:pinned');
  assert.equal(await show('git:pinned', 'test -e /p/new.txt || echo absent'), 'absent');
  const wrong = await writeContext(path.join(dir, 'wrong'), { Dockerfile: `FROM busybox\nADD --checksum=${before.slice(0, 12)} ${gitUrl}#main /p\n` });
  const r = await lbuild(root, ['build', wrong]);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, new RegExp(`Dockerfile:2: ADD --checksum=${before.slice(0, 12)}: .* is at commit ${after}`));
});

test('15.6: hostile git sources: unknown refs, subdirs outside the repository, file:// submodules and ext:: are refused with one line', async () => {
  const unknown = await writeContext(path.join(dir, 'unknown'), { Dockerfile: `FROM busybox\nADD ${gitUrl}#nope /x\n` });
  let r = await lbuild(root, ['build', unknown]);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /Dockerfile:2: ADD: git:\/\/127\.0\.0\.1:\d+\/repo\.git#nope: no branch, tag or ref named nope/);
  const escape = await writeContext(path.join(dir, 'escape'), { Dockerfile: `FROM busybox\nADD ${gitUrl}#main:../../.. /x\n` });
  r = await lbuild(root, ['build', escape]);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /lbuild: Dockerfile:2: ADD git:.*#main:\.\.\/\.\.\/\.\.: the subdirectory \.\.\/\.\.\/\.\. is outside the repository\n?$/);
  // a submodule pointing at the host's files is not fetched
  const work = path.join(gdir, 'work');
  const hostRepo = path.join(gdir, 'host-secret');
  await writeContext(hostRepo, { 'secret.txt': 'host file\n' });
  await g(['init', '-q', '-b', 'main'], T1, hostRepo);
  await g(['add', '-A'], T1, hostRepo);
  await g(['commit', '-q', '-m', 's'], T1, hostRepo);
  await g(['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', `file://${hostRepo}`, 'mod'], T1 + 200, work);
  await g(['commit', '-q', '-m', 'submodule'], T1 + 200, work);
  await g(['push', '-q', repo, 'main:withmod'], T1 + 200, work);
  const sub = await writeContext(path.join(dir, 'sub'), { Dockerfile: `FROM busybox\nADD ${gitUrl}#withmod /x\n` });
  r = await lbuild(root, ['build', sub]);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /Dockerfile:2: ADD: git submodule: .*(transport 'file' not allowed|not allowed)/);
  assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('lbuild:')).length, 1);
  // ext:: would run a command on the host: it is not a git URL here, and git would not run it anyway
  const ext = await writeContext(path.join(dir, 'ext'), { Dockerfile: `FROM busybox\nADD ext::sh%%-c%%touch%%${dir}/pwned /x\n` });
  r = await lbuild(root, ['build', ext]);
  assert.equal(r.exitCode, 1);
  await assert.rejects(fsp.access(path.join(dir, 'pwned')));
});
