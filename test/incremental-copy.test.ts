import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { differentialStores } from './helpers/differential.js';
import { lbuildOk, run } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

/*
 * Incremental COPY (issue 17.3): a COPY that misses because some sources changed takes the
 * unchanged files over from its previous layer. Each case is checked the way the cache is
 * (issue 14): the image must be the one a --no-cache build makes in a store of its own, with
 * the same SOURCE_DATE_EPOCH, byte for byte (same digest); and the previous image must still
 * hold what it held (the files are shared between the two snapshots).
 */

const { store, build, coldImage, dir } = differentialStores();

function reusedCount(log: string): number | undefined {
  const m = /(\d+) unchanged file\(s\) taken from the previous build/.exec(log);
  return m ? Number(m[1]) : undefined;
}

test('an edit copies only what changed: the image is a cold build\'s, the previous image keeps its files', async () => {
  const root = await store('edit');
  const ctx = path.join(dir(), 'edit-ctx');
  const files: Record<string, string> = { Dockerfile: 'FROM busybox\nRUN mkdir -p /app && echo lower > /app/keep.txt\nCOPY . /app/\nCOPY --chmod=0640 --chown=7:8 data/ /data/\nCOPY keep.txt /etc/keep.txt\n', 'keep.txt': 'from the context\n' };
  for (let d = 0; d < 10; d++) for (let f = 0; f < 20; f++) files[`src/d${d}/f${f}.txt`] = `file ${d}/${f}\n`;
  for (let f = 0; f < 5; f++) files[`data/x${f}`] = `data ${f}\n`;
  // names whose index line escapes them (JSON text unlike the name) are looked up as well
  files['src/d2/ünï "q".txt'] = 'quoted\n';
  files['src/d2/back\\slash.txt'] = 'backslash\n';
  await writeContext(ctx, files);
  const first = await build(root, ctx, ['-t', 'v1']);
  assert.equal(reusedCount(first.log), undefined, 'a first build has nothing to take over');

  // one edit, one new file, one removed, one chmod; one data file edited
  await fsp.writeFile(path.join(ctx, 'src/d3/f7.txt'), 'edited\n');
  await fsp.writeFile(path.join(ctx, 'src/d9/new.txt'), 'new\n');
  await fsp.rm(path.join(ctx, 'src/d0/f0.txt'));
  await fsp.chmod(path.join(ctx, 'src/d5/f5.txt'), 0o755);
  await fsp.writeFile(path.join(ctx, 'data/x2'), 'data edited\n');
  // touched only: a cold build gives the new mtime, so the old copy will not do
  const touched = new Date('2025-06-01T12:00:00.123Z');
  await fsp.utimes(path.join(ctx, 'src/d1/f1.txt'), touched, touched);
  const second = await build(root, ctx, ['-t', 'v2']);
  // COPY . /app/: 209 files (Dockerfile, keep.txt, 202 src, 5 data) less the 5 changed; COPY data/
  // (on a new parent): 4 of 5; COPY keep.txt into /etc, a directory only the base has: 1
  const counts = [...second.log.matchAll(/(\d+) unchanged file\(s\) taken/g)].map((m) => Number(m[1]));
  assert.deepEqual(counts, [204, 4, 1], second.log);
  assert.doesNotMatch(second.log, /copying every file/);
  assert.equal(second.id, await coldImage('edit-cold', ctx), 'the incremental image differs from a cold build');

  // the shared files are intact in both images, and the store checks clean
  const v1 = await lbuildOk(root, ['run', '--rm', 'v1', 'sh', '-c', 'cat /app/src/d3/f7.txt /app/keep.txt; ls /app/src/d0 | wc -l; stat -c %a /app/src/d5/f5.txt']);
  assert.equal(v1.stdout, 'file 3/7\nfrom the context\n20\n644');
  const v2 = await lbuildOk(root, ['run', '--rm', 'v2', 'sh', '-c', 'cat /app/src/d3/f7.txt /app/keep.txt /app/src/d9/new.txt; ls /app/src/d0 | wc -l; stat -c %a /app/src/d5/f5.txt; stat -c "%a %u:%g" /data/x1']);
  assert.equal(v2.stdout, 'edited\nfrom the context\nnew\n19\n755\n640 7:8');
  await lbuildOk(root, ['fsck']);
});

test('what the incremental copy cannot vouch for is copied in full, and still gives a cold build\'s image', async () => {
  const root = await store('conflict');
  const ctx = path.join(dir(), 'conflict-ctx');
  // a/ and b/ both hold x.txt, the same file: b's lands; once b's is edited, a's still matches
  // the previous layer's, but must not stand in the layer
  await writeContext(ctx, { Dockerfile: 'FROM busybox\nCOPY a b /out/\n', 'a/x.txt': 'same\n', 'a/y.txt': 'y\n', 'a/z.txt': 'z\n', 'b/x.txt': 'same\n' });
  const t = new Date('2024-01-01T00:00:00Z');
  for (const f of ['a/x.txt', 'b/x.txt']) await fsp.utimes(path.join(ctx, f), t, t);
  await build(root, ctx);
  await fsp.writeFile(path.join(ctx, 'b/x.txt'), 'b edited\n');
  const twice = await build(root, ctx);
  assert.match(twice.log, /copying every file: out\/x\.txt is written twice/);
  assert.equal(twice.id, await coldImage('conflict-cold-1', ctx));

  // an attribute added to an unchanged file: the layer must carry it (a linked file cannot get it)
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY a /out/\n');
  await build(root, ctx);
  const set = await run('setfattr', ['-n', 'user.note', '-v', 'kept', path.join(ctx, 'a/z.txt')]);
  assert.equal(set.exitCode, 0, set.stderr);
  await fsp.writeFile(path.join(ctx, 'a/y.txt'), 'y edited again\n');
  const attrs = await build(root, ctx);
  // z.txt copied: found at the copy (the stat cache knew the new state's attributes) or after it
  // (it did not yet: the attribute was set in the second the build started), then in full
  assert.ok(reusedCount(attrs.log) === 1 || /copying every file: a\/z\.txt has extended attributes/.test(attrs.log), attrs.log);
  assert.equal(attrs.id, await coldImage('conflict-cold-2', ctx));
});

test('a previous layer whose file index does not match its tar is not trusted', async () => {
  const root = await store('index');
  const ctx = path.join(dir(), 'index-ctx');
  await writeContext(ctx, { Dockerfile: 'FROM busybox\nCOPY . /c/\n', 'one.txt': '1\n', 'two.txt': '2\n', 'three.txt': '3\n' });
  await build(root, ctx);
  // the offsets of two entries swapped: every other field still matches
  const snaps = path.join(root, 'snapshots');
  let indexFile: string | undefined;
  for (const n of await fsp.readdir(snaps)) {
    const f = path.join(snaps, n, 'files.jsonl');
    if (await fsp.access(f).then(() => true, () => false)) indexFile = f;
  }
  assert.ok(indexFile, 'the COPY layer has a file index');
  const lines = (await fsp.readFile(indexFile, 'utf8')).trimEnd().split('\n');
  const rows = lines.slice(1).map((l) => JSON.parse(l) as unknown[]);
  const one = rows.find((r) => r[0] === 'c/one.txt');
  const three = rows.find((r) => r[0] === 'c/three.txt');
  assert.ok(one && three);
  [one[8], three[8]] = [three[8], one[8]];
  await fsp.writeFile(indexFile, `${[lines[0], ...rows.map((r) => JSON.stringify(r))].join('\n')}\n`);
  await fsp.writeFile(path.join(ctx, 'two.txt'), '2 edited\n');
  const b = await build(root, ctx);
  assert.match(b.log, /copying every file: the previous layer's file index does not match its tar at c\/(one|three)\.txt/);
  assert.equal(b.id, await coldImage('index-cold', ctx));
});
