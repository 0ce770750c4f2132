import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { importBusybox, storeFixture } from './helpers/busybox.js';
import { BIN, lbuild, lbuildOk, run } from './helpers/cli.js';
import { mountsUnder, writeContext } from './helpers/context.js';

let dir: string;
let root: string;

async function storeState(r: string): Promise<string> {
  // images, blobs, layers and cache entries; build logs (reports, history, stat cache) may grow
  const out = await run('find', [r, '-not', '-path', `${r}/tmp/*`, '-not', '-path', `${r}/cache/reports*`, '-not', '-path', `${r}/cache/stat*`, '-not', '-path', `${r}/cache/builds*`, '-not', '-name', 'history.jsonl', '-not', '-path', `${r}/leases*`, '-not', '-name', '*.lock', '-not', '-type', 'd', '-printf', '%P %s\n']);
  return out.stdout.split('\n').sort().join('\n');
}
async function layerTexts(r: string, ref: string): Promise<string> {
  const [i] = JSON.parse((await lbuildOk(r, ['inspect', ref])).stdout) as { RootFS: { Layers: string[] } }[];
  let all = '';
  for (const d of i?.RootFS.Layers ?? []) {
    all += (await run('tar', ['-tvf', path.join(r, 'blobs', 'sha256', d.slice(7))])).stdout;
    all += (await fsp.readFile(path.join(r, 'blobs', 'sha256', d.slice(7)))).toString('latin1');
  }
  return all;
}

storeFixture((d, r) => {
  dir = d;
  root = r;
});

test('secrets: readable during the RUN only; never in a layer, the config, the history or the key', async () => {
  const secretFile = path.join(dir, 'token.txt');
  await fsp.writeFile(secretFile, 's3cr3t-value');
  const ctx = await writeContext(path.join(dir, 'secret'), {
    // the RUNs prove they could read the secrets (by length) without naming their values
    Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=tok test "$(wc -c < /run/secrets/tok)" = 12 && echo ok > /ok\nRUN --mount=type=secret,id=env_tok,target=/tmp/t test "$(wc -c < /tmp/t)" = 8 && echo ok2 > /ok2\n',
  });
  const rep = path.join(dir, 'secret.json');
  await lbuildOk(root, ['build', '-t', 'sec:1', '--report', rep, '--secret', `id=tok,src=${secretFile}`, '--secret', 'id=env_tok,env=LB_TEST_TOKEN', ctx], { env: { LB_TEST_TOKEN: 'from-env' } });
  const layers = await layerTexts(root, 'sec:1');
  assert.doesNotMatch(layers, /s3cr3t-value|from-env/);
  assert.doesNotMatch(layers, /run\/secrets|tmp\/t\b/, 'no mount stub of the secret either');
  const inspect = (await lbuildOk(root, ['inspect', 'sec:1'])).stdout;
  assert.doesNotMatch(inspect, /s3cr3t-value|from-env/);
  // a changed secret value does not change the key (keyed on the id only)
  await fsp.writeFile(secretFile, 'other-value');
  const again = await lbuild(root, ['build', '-t', 'sec:2', '--report', rep, '--secret', `id=tok,src=${secretFile}`, '--secret', 'id=env_tok,env=LB_TEST_TOKEN', ctx], { env: { LB_TEST_TOKEN: 'from-env' } });
  assert.equal(again.exitCode, 0, again.stderr);
  assert.deepEqual((JSON.parse(await fsp.readFile(rep, 'utf8')) as { steps: { cache: string }[] }).steps.map((s) => s.cache), ['hit', 'hit']);
  const keys = await run('grep', ['-rl', 's3cr3t-value', root]);
  assert.equal(keys.stdout.trim(), '', 'the secret is nowhere in the store');
  const missing = await writeContext(path.join(dir, 'secret2'), { Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=nope,required=true true\n' });
  const m = await lbuild(root, ['build', missing]);
  assert.equal(m.exitCode, 1);
  assert.match(m.stderr, /Dockerfile:2: secret nope is required but was not given/);
});

test('cache and bind mounts: persistent per store, never in a layer; bind sources are keyed', async () => {
  const ctx = await writeContext(path.join(dir, 'mounts'), {
    Dockerfile: [
      'FROM busybox',
      "RUN --mount=type=cache,target=/var/cache/x sh -c 'n=$(cat /var/cache/x/n 2>/dev/null || echo 0); echo $((n+1)) > /var/cache/x/n; cp /var/cache/x/n /seen'",
      'RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/x > /from-bind',
      'RUN --mount=type=tmpfs,target=/scratch sh -c "echo t > /scratch/t && test -f /scratch/t"',
    ].join('\n'),
    'data/x': 'bound-1\n',
  });
  await lbuildOk(root, ['build', '--no-cache', '-t', 'm:1', ctx]);
  await lbuildOk(root, ['build', '--no-cache', '-t', 'm:2', ctx]);
  assert.equal((await lbuildOk(root, ['run', 'm:2', 'cat', '/seen'])).stdout, '2', 'the cache dir persisted between builds');
  assert.equal((await lbuildOk(root, ['run', 'm:2', 'cat', '/from-bind'])).stdout, 'bound-1');
  const layers = await layerTexts(root, 'm:2');
  assert.doesNotMatch(layers, /var\/cache\/x\/n|mnt\/data|scratch/);
  const rep = path.join(dir, 'm.json');
  await fsp.writeFile(path.join(ctx, 'data/x'), 'bound-2\n');
  await lbuildOk(root, ['build', '--report', rep, '-t', 'm:3', ctx]);
  const steps = (JSON.parse(await fsp.readFile(rep, 'utf8')) as { steps: { cache: string }[] }).steps.map((s) => s.cache);
  assert.deepEqual(steps, ['hit', 'miss', 'miss'], 'the bind source changed: that RUN misses');
});

test("RUN gets Docker's default capability set and no more", async () => {
  const ctx = await writeContext(path.join(dir, 'caps'), { Dockerfile: 'FROM busybox\nRUN grep -E "^Cap(Eff|Bnd)" /proc/self/status > /caps\n' });
  await lbuildOk(root, ['build', '-t', 'caps:1', ctx]);
  const caps = (await lbuildOk(root, ['run', 'caps:1', 'cat', '/caps'])).stdout;
  // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
  assert.match(caps, /CapEff:\s+00000000a80425fb/);
  assert.match(caps, /CapBnd:\s+00000000a80425fb/);
});

test('COPY and WORKDIR through symlinks in the image stay inside the image root', async () => {
  const ctx = await writeContext(path.join(dir, 'esc'), {
    Dockerfile: 'FROM busybox\nRUN ln -s / /escape && ln -s /proc/self/cwd /selfcwd\nCOPY f /escape/tmp/lbuild-escape-test\nWORKDIR /selfcwd/../../lbuild-wd\nRUN pwd > /wd',
    f: 'x',
  });
  await lbuildOk(root, ['build', '-t', 'esc:1', ctx]);
  await assert.rejects(fsp.access('/tmp/lbuild-escape-test'), 'nothing written to the host /tmp');
  await assert.rejects(fsp.access('/lbuild-wd'));
  assert.equal((await lbuildOk(root, ['run', 'esc:1', 'cat', '/tmp/lbuild-escape-test'])).stdout, 'x');
});

test('disk full: a clear error, the step cleaned up, the store consistent and usable', async () => {
  const small = path.join(dir, 'small');
  await fsp.mkdir(small);
  const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', small]);
  assert.equal(m.exitCode, 0, m.stderr);
  try {
    const r = path.join(small, 'store');
    await importBusybox(r, 'busybox:latest');
    const ctx = await writeContext(path.join(dir, 'full'), { Dockerfile: 'FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=64\n' });
    const out = await lbuild(r, ['build', ctx]);
    assert.equal(out.exitCode, 1);
    assert.match(out.stderr.trim().split('\n').pop() ?? '', /no space left on the store's disk/);
    assert.deepEqual(mountsUnder(r), []);
    assert.deepEqual(await fsp.readdir(path.join(r, 'tmp')), []);
    // a RUN that fits, whose layer tar then does not: the step's line and words, not an errno
    const tarFull = await writeContext(path.join(dir, 'full-tar'), { Dockerfile: 'FROM busybox\nRUN head -c 12000000 /dev/urandom > /big\n' });
    const out2 = await lbuild(r, ['build', '--progress', 'plain', tarFull]);
    assert.equal(out2.exitCode, 1);
    assert.match(out2.stderr, /#2 ERROR: Dockerfile:2: no space left on the store's disk \(/);
    assert.match(out2.stderr.trim().split('\n').pop() ?? '', /^lbuild: Dockerfile:2: no space left on the store's disk \(/);
    assert.doesNotMatch(out2.stderr, /ENOSPC/);
    assert.deepEqual(await fsp.readdir(path.join(r, 'tmp')), []);
    const f = await lbuild(r, ['fsck']);
    assert.equal(f.exitCode, 0, f.stdout + f.stderr);
    const ok = await writeContext(path.join(dir, 'fits'), { Dockerfile: 'FROM busybox\nRUN echo small > /s\n' });
    await lbuildOk(r, ['build', '-t', 'fits:1', ok]);
  } finally {
    await run('umount', ['-l', small]);
  }
});

test('fsck finds a corrupt blob and a missing snapshot; --repair fixes the store', async () => {
  const r = path.join(dir, 'fsck-store');
  await importBusybox(r, 'busybox:latest');
  const ctx = await writeContext(path.join(dir, 'fsckctx'), { Dockerfile: 'FROM busybox\nRUN echo data > /d\n' });
  // clamped times: the layer cannot be written again from its snapshot, so the image is lost
  await lbuildOk(r, ['build', '-t', 'f:1', ctx], { env: { SOURCE_DATE_EPOCH: '1000' } });
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
  const [i] = JSON.parse((await lbuildOk(r, ['inspect', 'f:1'])).stdout) as { RootFS: { Layers: string[] } }[];
  const top = (i?.RootFS.Layers.at(-1) ?? '').slice(7);
  await fsp.appendFile(path.join(r, 'blobs', 'sha256', top), 'garbage');
  await fsp.rm(path.join(r, 'snapshots', (i?.RootFS.Layers[0] ?? '').slice(7)), { recursive: true });
  const bad = await lbuild(r, ['fsck']);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stdout, /problem: blob sha256:[0-9a-f]+: content does not match its digest/);
  assert.match(bad.stdout, /problem: image [0-9a-f]{12}: missing layer/);
  assert.match(bad.stdout, /problem: layer sha256:[0-9a-f]+: snapshot missing/);
  const fixed = await lbuild(r, ['fsck', '--repair']);
  assert.equal(fixed.exitCode, 0, fixed.stderr);
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
  assert.equal((await lbuild(r, ['inspect', 'f:1'])).exitCode, 1, 'the broken image is gone');
  await lbuildOk(r, ['build', '-t', 'f:2', ctx]);
});

test('22.4: fsck finds a damaged snapshot against its layer and extracts it again; a damaged blob is written again from an intact snapshot', async () => {
  const r = path.join(dir, 'fsck2-store');
  await importBusybox(r, 'busybox:latest');
  const ctx = await writeContext(path.join(dir, 'fsck2ctx'), { Dockerfile: 'FROM busybox\nRUN seq 1 20000 > /numbers && mkdir /d && ln -s numbers /link\n' });
  await lbuildOk(r, ['build', '-t', 'g:1', ctx]);
  const [i] = JSON.parse((await lbuildOk(r, ['inspect', 'g:1'])).stdout) as { RootFS: { Layers: string[] } }[];
  const top = (i?.RootFS.Layers.at(-1) ?? '').slice(7);
  const numbers = path.join(r, 'snapshots', top, 'diff', 'numbers');
  const size = (await fsp.stat(numbers)).size;
  await fsp.truncate(numbers, 1000);
  const bad = await lbuild(r, ['fsck']);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stdout, new RegExp(`problem: layer sha256:${top}: snapshot differs from the layer \\(numbers: 1000 bytes, the layer says ${size}\\)`));
  // same size, other bytes
  await lbuildOk(r, ['fsck', '--repair']);
  await fsp.writeFile(numbers, Buffer.alloc(size, 0x41));
  assert.match((await lbuild(r, ['fsck'])).stdout, /numbers: content differs from the layer's/);
  const fixed = await lbuild(r, ['fsck', '--repair']);
  assert.match(fixed.stdout, /snapshot differs from the layer .*; extracted again/);
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
  assert.equal((await lbuildOk(r, ['run', 'g:1', 'sh', '-c', 'tail -1 /numbers; readlink /link'])).stdout, '20000\nnumbers');
  // the blob damaged: lbuild wrote this layer, so its snapshot gives the same bytes again
  await fsp.truncate(path.join(r, 'blobs', 'sha256', top), 2048);
  const regen = await lbuild(r, ['fsck', '--repair']);
  assert.match(regen.stdout, new RegExp(`blob sha256:${top}: content does not match its digest .*; written again from its snapshot`));
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
  await lbuildOk(r, ['inspect', 'g:1']);
  await lbuildOk(r, ['save', 'g:1', '-o', path.join(dir, 'g1.tar')]);
});

test('snapshots left to writeback: markers settle after it; after a crash of the machine, snapshots are re-extracted', async () => {
  const r = path.join(dir, 'sync-store');
  await importBusybox(r, 'busybox:latest');
  const ctx = await writeContext(path.join(dir, 'syncctx'), { Dockerfile: 'FROM busybox\nRUN echo data > /d\n' });
  await lbuildOk(r, ['build', '-t', 's:1', ctx]);
  const [i] = JSON.parse((await lbuildOk(r, ['inspect', 's:1'])).stdout) as { RootFS: { Layers: string[] } }[];
  const top = (i?.RootFS.Layers.at(-1) ?? '').slice(7);
  const bottom = (i?.RootFS.Layers[0] ?? '').slice(7);
  const boot = (await fsp.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim().replace(/-/g, '');
  const markers = path.join(r, 'unsynced');
  assert.deepEqual((await fsp.readdir(markers)).sort(), [`${bottom}.${boot}`, `${top}.${boot}`].sort(), 'each new snapshot is marked until written back');
  // this boot, older than the writeback window: dropped, the snapshot stays
  const old = new Date(Date.now() - 10 * 60_000);
  await fsp.utimes(path.join(markers, `${bottom}.${boot}`), old, old);
  // an earlier boot: the machine went down before writeback, the snapshot may be torn and goes
  await fsp.rename(path.join(markers, `${top}.${boot}`), path.join(markers, `${top}.${'0'.repeat(32)}`));
  await lbuildOk(r, ['images']);
  assert.deepEqual(await fsp.readdir(markers), []);
  assert.ok(await fsp.stat(path.join(r, 'snapshots', bottom)), 'the written-back snapshot stays');
  await assert.rejects(fsp.stat(path.join(r, 'snapshots', top)), 'the possibly torn snapshot is removed');
  // the next build that needs the layer extracts it again from its verified blob
  const ctx2 = await writeContext(path.join(dir, 'syncctx2'), { Dockerfile: 'FROM s:1\nRUN cat /d > /e\n' });
  await lbuildOk(r, ['build', '-t', 's:2', ctx2]);
  assert.equal(await fsp.readFile(path.join(r, 'snapshots', top, 'diff', 'd'), 'utf8'), 'data\n');
  assert.ok((await fsp.readdir(markers)).includes(`${top}.${boot}`), 'the re-extracted snapshot is marked in turn');
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
});

test('prune removes dangling images and unused layers; --all the build cache too; LRU down to --keep-storage', async () => {
  const r = path.join(dir, 'prune-store');
  await importBusybox(r, 'busybox:latest');
  const ctx = await writeContext(path.join(dir, 'prunectx'), { Dockerfile: 'FROM busybox\nRUN head -c 2000000 /dev/urandom > /r\n' });
  await lbuildOk(r, ['build', '-t', 'p:1', ctx]);
  await lbuildOk(r, ['build', '--no-cache', '-t', 'p:1', ctx]); // the first image is now dangling
  const p = await lbuildOk(r, ['prune', '-f']);
  assert.match(p.stdout, /deleted 1 dangling image\(s\)/);
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
  await lbuildOk(r, ['rmi', 'p:1']);
  const all = await lbuildOk(r, ['prune', '-f', '--all']);
  assert.match(all.stdout, /cache record\(s\), [1-9]\d* blob\(s\)/);
  assert.match(all.stdout, /Total reclaimed space: [1-9]/);
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
  await lbuildOk(r, ['run', 'busybox:latest', 'true']);
});

test('22.9: prune --keep-storage removes the least recently used records until the store fits, with one size walk and one collection', async () => {
  const r = path.join(dir, 'keep-store');
  await importBusybox(r, 'busybox:latest');
  const ctxs: string[] = [];
  for (let k = 0; k < 6; k++) {
    const c = await writeContext(path.join(dir, `keep${k}`), { Dockerfile: `FROM busybox\nRUN head -c 1000000 /dev/urandom > /r${k}\n` });
    ctxs.push(c);
    await lbuildOk(r, ['build', '-t', `keep:${k}`, c]);
    await lbuildOk(r, ['rmi', `keep:${k}`]); // only the build cache holds the layer now
  }
  const du = async (): Promise<number> => Number((await run('du', ['-sb', r])).stdout.split('\t')[0]);
  const size = await du();
  // each record's layer is ~2 MB (its blob and its snapshot): 5 MB less needs the 3 oldest gone
  const limit = size - 5_000_000;
  const p = await lbuildOk(r, ['prune', '-f', '--keep-storage', String(limit)], { env: { LBUILD_TRACE: '1' } });
  assert.match(p.stdout, /deleted 0 dangling image\(s\), 3 cache record\(s\), 3 blob\(s\), 3 layer snapshot\(s\)/);
  assert.equal(p.stderr.split('\n').filter((l) => l.startsWith('trace: gc ')).length, 2, 'one collection before, one after the LRU pass');
  assert.ok((await du()) <= limit, `${await du()} <= ${limit}`);
  const cacheOf = async (c: string): Promise<string> => {
    const rep = path.join(dir, `keep-${Math.random()}.json`);
    await lbuildOk(r, ['build', '--report', rep, c]);
    return (JSON.parse(await fsp.readFile(rep, 'utf8')) as { steps: { cache: string }[] }).steps.map((s) => s.cache).join();
  };
  assert.deepEqual([await cacheOf(ctxs[5] as string), await cacheOf(ctxs[3] as string), await cacheOf(ctxs[0] as string)], ['hit', 'hit', 'miss']);
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
});

test('22.3: a prune collecting a layer while a build makes that layer again takes nothing the build uses', async () => {
  const r = path.join(dir, 'lease-store');
  await importBusybox(r, 'busybox:latest');
  const ctx = await writeContext(path.join(dir, 'leasectx'), { Dockerfile: 'FROM busybox\nRUN echo same > /f\n' });
  const epoch = { SOURCE_DATE_EPOCH: '1700000000' }; // the same layer, byte for byte, each time
  await lbuildOk(r, ['build', '-t', 'l:1', ctx], { env: epoch });
  await lbuildOk(r, ['rmi', 'l:1']); // its layer is now only the build cache's
  // a slow prune --all: the record goes, the layer is judged garbage, then 4 s pass before deleting
  const prune = lbuild(r, ['prune', '-f', '--all'], { env: { LBUILD_TEST_GC_DELAY_MS: '4000' } });
  await new Promise((res) => setTimeout(res, 1000));
  // meanwhile a build misses (no record now) and makes that layer again
  const built = await lbuild(r, ['build', '-t', 'l:2', ctx], { env: epoch });
  const pruned = await prune;
  assert.equal(built.exitCode, 0, built.stderr);
  assert.equal(pruned.exitCode, 0, pruned.stderr);
  assert.match(pruned.stdout, /1 cache record\(s\), [1-9]\d* blob\(s\)/, 'the prune did collect the old layer');
  assert.equal((await lbuildOk(r, ['run', 'l:2', 'cat', '/f'])).stdout, 'same');
  const fsck = await lbuild(r, ['fsck']);
  assert.equal(fsck.exitCode, 0, fsck.stdout);
  await lbuildOk(r, ['save', 'l:2', '-o', path.join(dir, 'l2.tar')]);
});

test('concurrent builds, pulls of the index and prune on one store stay consistent', async () => {
  const r = path.join(dir, 'conc-store');
  await importBusybox(r, 'busybox:latest');
  const ctxs = await Promise.all([0, 1, 2].map((k) => writeContext(path.join(dir, `conc${k}`), { Dockerfile: `FROM busybox\nRUN echo ${k} > /k && sleep 1\nRUN echo done-${k} > /d\n` })));
  const jobs = [
    ...ctxs.map((c, k) => lbuild(r, ['build', '-t', `c:${k}`, c])),
    (async () => {
      for (let i = 0; i < 4; i++) await lbuild(r, ['prune', '-f', '--all']);
      return { exitCode: 0, stdout: '', stderr: '' };
    })(),
  ];
  const results = await Promise.all(jobs);
  for (const x of results) assert.equal(x.exitCode, 0, x.stderr);
  for (const k of [0, 1, 2]) assert.equal((await lbuildOk(r, ['run', `c:${k}`, 'cat', '/d'])).stdout, `done-${k}`);
  assert.equal((await lbuild(r, ['fsck'])).exitCode, 0);
});

test('bad input: one clear line, exit 1 or 2, no stack trace, the store unchanged', async () => {
  const r = path.join(dir, 'bad-store');
  await importBusybox(r, 'busybox:latest');
  const before0 = await storeState(r);
  const bad = path.join(dir, 'badin');
  await fsp.mkdir(bad, { recursive: true });
  const notTar = path.join(bad, 'not.tar');
  await fsp.writeFile(notTar, 'this is not a tar archive at all'.repeat(40));
  const empty = path.join(bad, 'empty.tar');
  await fsp.writeFile(empty, '');
  const cases: [string, Record<string, string | Buffer> | null, string[]][] = [
    ['empty Dockerfile', { Dockerfile: '' }, ['build']],
    ['binary Dockerfile', { Dockerfile: Buffer.from([0, 1, 2, 3, 255, 254, 0, 10]) }, ['build']],
    ['invalid UTF-8', { Dockerfile: Buffer.concat([Buffer.from('FROM busybox\nLABEL x='), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('\nCOPY nope /x\n')]) }, ['build']],
    ['huge line', { Dockerfile: `FROM busybox\nLABEL a=${'x'.repeat(1_000_000)}\nCOPY missing /x\n` }, ['build']],
    ['deep continuation', { Dockerfile: `FROM busybox\nENV A=1 ${'\\\n  B=2 '.repeat(5000)}\nCOPY missing /x\n` }, ['build']],
    ['missing file', { Dockerfile: 'FROM busybox\nCOPY does-not-exist /x\n' }, ['build']],
    ['unknown image', { Dockerfile: 'FROM 127.0.0.1:1/nosuch:1\n' }, ['build']],
    ['bad flag', { Dockerfile: 'FROM busybox\n' }, ['build', '--frobnicate']],
    ['bad build-arg', { Dockerfile: 'FROM busybox\n' }, ['build', '--build-arg', '=x']],
    ['bad tag', { Dockerfile: 'FROM busybox\n' }, ['build', '-t', 'UPPER/Case:tag']],
    ['load of a non-tar', null, ['load', '-i', notTar]],
    ['load of an empty file', null, ['load', '-i', empty]],
    ['import of a non-tar', null, ['import', notTar, 'x:1']],
    ['missing context', null, ['build', path.join(bad, 'no-such-dir')]],
  ];
  for (const [name, files, args] of cases) {
    let cmd = args;
    if (files) {
      const c = path.join(bad, name.replace(/\W+/g, '-'));
      await fsp.mkdir(c, { recursive: true });
      for (const [f, content] of Object.entries(files)) await fsp.writeFile(path.join(c, f), content);
      cmd = [...args, c];
    }
    const res = await execa(process.execPath, [BIN, '--root', r, ...cmd], { reject: false, stdin: 'ignore', timeout: 60_000 });
    assert.ok(res.exitCode === 1 || res.exitCode === 2, `${name}: exit ${res.exitCode}\n${res.stderr}`);
    const errLines = String(res.stderr).trim().split('\n').filter((l) => l.startsWith('lbuild:'));
    assert.equal(errLines.length, 1, `${name}: one error line:\n${res.stderr}`);
    assert.doesNotMatch(String(res.stderr), /\n\s+at .*\(/, `${name}: no stack trace`);
    assert.ok((errLines[0] ?? '').length < 600, `${name}: a short line`);
  }
  const after0 = await storeState(r);
  const a = new Set(after0.split('\n'));
  const b = new Set(before0.split('\n'));
  assert.deepEqual([...a].filter((x) => !b.has(x)), [], 'nothing added to the store');
  assert.deepEqual([...b].filter((x) => !a.has(x)), [], 'nothing removed from the store');
});

test('22.8: messages name the place: -f DIR, a non-UTF-8 file name, a user that does not exist, cache uid=abc', async () => {
  const r = path.join(dir, 'msg-store');
  await importBusybox(r, 'busybox:latest');
  const base = path.join(dir, 'msgs');
  const cases: [string, Record<string, string>, string[], RegExp][] = [
    ['f-dir', { Dockerfile: 'FROM busybox\n' }, ['build', '-f', '.'], /^lbuild: \. is a directory: -f takes the Dockerfile itself \(e\.g\. \.\/Dockerfile\)$/],
    ['chown', { Dockerfile: 'FROM busybox\nCOPY --chown=nope x /x\n', x: '' }, ['build'], /^lbuild: Dockerfile:2: --chown=nope: unable to find user nope/],
    ['user', { Dockerfile: 'FROM busybox\nUSER ghost\nRUN true\n' }, ['build'], /^lbuild: Dockerfile:3: unable to find user ghost/],
    ['cache-uid', { Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c,uid=abc true\n' }, ['build'], /^lbuild: Dockerfile:2: --mount uid=abc: a number is required$/],
    ['bad-name', { Dockerfile: 'FROM busybox\nCOPY . /x\n' }, ['build'], /^lbuild: Dockerfile:2: bad\uFFFDname: the file name is not valid UTF-8, which lbuild cannot copy \(rename it, or leave it out in \.dockerignore\)$/],
  ];
  for (const [name, files, args, want] of cases) {
    const c = await writeContext(path.join(base, name), files);
    // a name with the byte 0xff (Node cannot write such a name itself)
    if (name === 'bad-name') await execa('sh', ['-c', `printf x > "$(printf 'bad\\377name')"`], { cwd: c });
    const res = await execa(process.execPath, [BIN, '--root', r, ...args, '.'], { reject: false, stdin: 'ignore', cwd: c });
    const errLines = String(res.stderr).trim().split('\n').filter((l) => l.startsWith('lbuild:'));
    assert.equal(errLines.length, 1, `${name}: one error line:\n${res.stderr}`);
    assert.match(errLines[0] ?? '', want, name);
  }
  // the same name left out by .dockerignore is no error
  await fsp.writeFile(path.join(base, 'bad-name', '.dockerignore'), 'bad*\n');
  const ok = await execa(process.execPath, [BIN, '--root', r, 'build', '.'], { reject: false, stdin: 'ignore', cwd: path.join(base, 'bad-name') });
  assert.equal(ok.exitCode, 0, ok.stderr);
});
