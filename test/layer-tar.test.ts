import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import tar from 'tar-stream';
import { packTree } from '../src/diff/tarwriter.js';
import { PathEscapeError } from '../src/errors.js';
import { applyLayer } from '../src/snapshot/apply.js';
import { makeWhiteout, markOpaque, readTreeXattrs } from '../src/util/xattr.js';
import { removeDir, run, tempDir } from './helpers/cli.js';

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

type E = Partial<tar.Header> & { name: string; body?: string };
async function makeTar(entries: E[]): Promise<Buffer> {
  const pack = tar.pack();
  const out = collect(pack as unknown as Readable);
  for (const e of entries) {
    const { body, ...h } = e;
    await new Promise<void>((res, rej) => {
      if (body !== undefined) pack.entry(h, body, (err) => (err ? rej(err) : res()));
      else pack.entry(h, (err) => (err ? rej(err) : res()));
    });
  }
  pack.finalize();
  return out;
}

async function listTar(buf: Buffer): Promise<tar.Header[]> {
  const ex = tar.extract();
  const heads: tar.Header[] = [];
  const done = (async () => {
    for await (const e of ex) {
      heads.push(e.header);
      e.resume();
    }
  })();
  Readable.from([buf]).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return heads;
}

async function sampleTree(root: string): Promise<void> {
  await fsp.mkdir(path.join(root, 'etc/deep/er'), { recursive: true });
  await fsp.writeFile(path.join(root, 'etc/b.txt'), 'bee');
  await fsp.writeFile(path.join(root, 'etc/a.txt'), 'ay');
  await fsp.writeFile(path.join(root, 'etc/deep/er/x'), 'x'.repeat(5000));
  await fsp.symlink('../etc/a.txt', path.join(root, 'link'));
  await fsp.link(path.join(root, 'etc/a.txt'), path.join(root, 'hard'));
  await fsp.writeFile(path.join(root, 'zero-mode'), 'z');
  await fsp.chmod(path.join(root, 'zero-mode'), 0o000);
  await fsp.writeFile(path.join(root, 'suid'), 's');
  await fsp.chmod(path.join(root, 'suid'), 0o4755);
  const long = 'd'.repeat(120);
  await fsp.mkdir(path.join(root, long));
  await fsp.writeFile(path.join(root, long, 'f'.repeat(110)), 'long');
}

test('layer writer: the same tree always gives the same bytes', async () => {
  const dir = tempDir();
  try {
    const a = path.join(dir, 'a');
    await sampleTree(a);
    const one = await collect(packTree(a) as unknown as Readable);
    const two = await collect(packTree(a) as unknown as Readable);
    assert.ok(one.length > 0);
    assert.equal(createHash('sha256').update(one).digest('hex'), createHash('sha256').update(two).digest('hex'));
    // a copy of the tree with the same metadata gives the same digest too
    const b = path.join(dir, 'b');
    const cp = await run('cp', ['-a', a, b]);
    assert.equal(cp.exitCode, 0, cp.stderr);
    const three = await collect(packTree(b) as unknown as Readable);
    assert.ok(one.equals(three), 'a copied tree (same modes, owners, mtimes) packs to the same bytes');

    const heads = await listTar(one);
    const names = heads.map((h) => h.name);
    assert.equal(new Set(names).size, names.length, 'no duplicate paths');
    const etc = names.indexOf('etc/');
    assert.deepEqual(names.slice(etc, etc + 3), ['etc/', 'etc/a.txt', 'etc/b.txt'], 'a directory comes before its sorted contents');
    const hard = heads.find((h) => h.name === 'hard');
    assert.equal(hard?.type, 'link');
    assert.equal(hard?.linkname, 'etc/a.txt');
    assert.equal(heads.find((h) => h.name === 'link')?.linkname, '../etc/a.txt');
    assert.equal((heads.find((h) => h.name === 'zero-mode')?.mode ?? -1) & 0o7777, 0);
    assert.equal((heads.find((h) => h.name === 'suid')?.mode ?? 0) & 0o7777, 0o4755);
    assert.ok(names.includes(`${'d'.repeat(120)}/${'f'.repeat(110)}`), 'long names survive (PAX)');
  } finally {
    await removeDir(dir);
  }
});

test('layer writer: overlay whiteouts and opaque dirs become OCI markers before their siblings', async () => {
  const dir = tempDir();
  try {
    await fsp.mkdir(path.join(dir, 'd/sub'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'd/a'), 'a');
    await makeWhiteout(path.join(dir, 'd/zz'));
    await markOpaque(path.join(dir, 'd/sub'));
    await fsp.writeFile(path.join(dir, 'd/sub/new'), 'n');
    const { opaque } = await readTreeXattrs(dir);
    assert.deepEqual([...opaque], ['d/sub']);
    const heads = await listTar(await collect(packTree(dir, { overlay: true, opaqueDirs: opaque }) as unknown as Readable));
    assert.deepEqual(
      heads.map((h) => h.name),
      ['d/', 'd/.wh.zz', 'd/a', 'd/sub/', 'd/sub/.wh..wh..opq', 'd/sub/new'],
    );
  } finally {
    await removeDir(dir);
  }
});

test('layer apply: modes, owners, hardlinks, symlinks, whiteouts and opaque markers', async () => {
  const dir = tempDir();
  try {
    const buf = await makeTar([
      { name: 'bin/', type: 'directory', mode: 0o755 },
      { name: 'bin/tool', body: 'tool', mode: 0o4711, uid: 1000, gid: 2000 },
      { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
      { name: 'bin/sym', type: 'symlink', linkname: '/bin/tool' },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
      { name: 'etc/.wh.gone', body: '' },
      { name: 'var/.wh..wh..opq', body: '' },
      { name: 'var/kept', body: 'k' },
    ]);
    await applyLayer(Readable.from([buf]), dir);
    const tool = await fsp.lstat(path.join(dir, 'bin/tool'));
    assert.equal(tool.mode & 0o7777, 0o4711);
    assert.equal(tool.uid, 1000);
    assert.equal(tool.gid, 2000);
    assert.equal(tool.nlink, 2);
    assert.equal((await fsp.lstat(path.join(dir, 'bin/alias'))).ino, tool.ino);
    assert.equal(await fsp.readlink(path.join(dir, 'bin/sym')), '/bin/tool');
    assert.equal((await fsp.stat(path.join(dir, 'tmp'))).mode & 0o7777, 0o1777);
    const wh = await fsp.lstat(path.join(dir, 'etc/gone'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0/0 char device');
    assert.deepEqual([...(await readTreeXattrs(dir)).opaque], ['var']);
  } finally {
    await removeDir(dir);
  }
});

test('layer apply: no entry writes outside the snapshot dir', async () => {
  const outer = tempDir();
  try {
    const dest = path.join(outer, 'snap');
    await fsp.mkdir(dest);
    const cases: [string, E[]][] = [
      ['dotdot', [{ name: '../x', body: 'evil' }]],
      ['nested dotdot', [{ name: 'a/../../x', body: 'evil' }]],
      ['absolute', [{ name: '/abs', body: 'evil' }]],
      ['symlink parent', [{ name: 'link', type: 'symlink', linkname: '/' }, { name: 'link/x', body: 'evil' }]],
      ['relative symlink parent', [{ name: 'up', type: 'symlink', linkname: '..' }, { name: 'up/x', body: 'evil' }]],
      ['hardlink out', [{ name: 'h', type: 'link', linkname: '../outside' }]],
      ['whiteout through symlink', [{ name: 'l2', type: 'symlink', linkname: '/tmp' }, { name: 'l2/.wh.x', body: '' }]],
    ];
    for (const [what, entries] of cases) {
      await fsp.rm(dest, { recursive: true, force: true });
      await fsp.mkdir(dest);
      await assert.rejects(applyLayer(Readable.from([await makeTar(entries)]), dest), PathEscapeError, what);
    }
    // nothing appeared next to the snapshot, at the root, or under /tmp
    assert.deepEqual((await fsp.readdir(outer)).sort(), ['snap']);
    await assert.rejects(fsp.access('/abs'));
    await assert.rejects(fsp.access('/x'));
  } finally {
    await removeDir(outer);
  }
});

const long = (n: number, seg = 9): string => Array.from({ length: Math.ceil(n / (seg + 1)) }, (_, i) => `${String(i).padStart(seg, 'x')}`).join('/').slice(0, n);

test('layer writer: a tree of every entry kind packs to the bytes it always has', async (t) => {
  const dir = tempDir('tarhdr-');
  t.after(() => removeDir(dir));
  const root = path.join(dir, 'root');
  await fsp.mkdir(path.join(root, 'sub/deeper'), { recursive: true });
  const files: [string, number][] = [['empty', 0], ['one', 1], ['block', 512], ['odd', 513], ['big', 70_000], [`${long(180)}`, 3], ['caf\u00e9', 4], ['sub/x', 600], ['sub/deeper/y', 1]];
  for (const [name, size] of files) {
    await fsp.mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await fsp.writeFile(path.join(root, name), Buffer.alloc(size, name.length % 251));
  }
  await fsp.symlink('../one', path.join(root, 'sub/link'));
  await fsp.symlink('t'.repeat(120), path.join(root, 'longlink'));
  await fsp.link(path.join(root, 'one'), path.join(root, 'sub/hard'));
  await fsp.chmod(path.join(root, 'odd'), 0o4755);
  await fsp.chown(path.join(root, 'block'), 3_000_000, 7);
  await fsp.chown(path.join(root, 'sub/x'), 1000, 1000);
  const walk = async (d: string): Promise<string[]> => {
    const out = [d];
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) out.push(...(await walk(p)));
      else out.push(p);
    }
    return out;
  };
  for (const p of await walk(root)) await fsp.lutimes(p, 1_000_000_000, 1_000_000_000);
  const hash = createHash('sha256');
  for await (const c of packTree(root, { xattrs: new Map([['big', [['user.note', Buffer.from([0, 1, 2])]]]]) }) as unknown as Readable) hash.update(c as Buffer);
  // the digest packTree gave for this tree before small pieces were pushed together: the bytes must not change
  assert.equal(hash.digest('hex'), 'c3161ef0833e13135a1ff3e186a38601e1b6f3f3547eac40fad4e96b0db17630');
});
