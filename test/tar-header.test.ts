import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { test } from 'node:test';
import tar from 'tar-stream';
import { ustarBlock } from '../src/diff/tar-header.js';
import { packTree } from '../src/diff/tarwriter.js';
import { removeDir, tempDir } from './helpers/cli.js';

/** The first block tar-stream writes for `h` (its header, or the PAX header before it). */
async function tarStreamBlock(h: tar.Header): Promise<Buffer> {
  const pack = tar.pack();
  const fileLike = h.type === 'file' || h.type === 'contiguous-file';
  // a file entry writes its header when opened, before any body
  pack.entry({ ...h }, fileLike ? undefined : () => undefined);
  for await (const c of pack as unknown as Readable) return (c as Buffer).subarray(0, 512);
  throw new Error('no block');
}

const base: tar.Header = { name: 'a', mode: 0o100644, uid: 0, gid: 0, size: 0, mtime: new Date(946684800000), type: 'file', linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, pax: null };
const long = (n: number, seg = 9): string => Array.from({ length: Math.ceil(n / (seg + 1)) }, (_, i) => `${String(i).padStart(seg, 'x')}`).join('/').slice(0, n);

const cases: [string, Partial<tar.Header>][] = [
  ['plain file', {}],
  ['size 1', { size: 1 }],
  ['size 511', { size: 511 }],
  ['size 8 GiB + 1 (base-256)', { size: 8 * 1024 ** 3 + 1 }],
  ['mode 0', { mode: 0 }],
  ['setuid', { mode: 0o104755 }],
  ['uid at the ustar limit', { uid: 0o777777, gid: 0o777777 }],
  ['uid past it', { uid: 0o1000000, gid: 3 }],
  ['mtime 0', { mtime: new Date(0) }],
  ['mtime after 2038', { mtime: new Date(2 ** 31 * 1000 + 5000) }],
  ['mtime before 1970', { mtime: new Date(-86400000) }],
  ['directory', { name: 'd/', type: 'directory', mode: 0o40755 }],
  ['directory mode 0', { name: 'd/', type: 'directory', mode: 0 }],
  ['symlink', { name: 'l', type: 'symlink', linkname: '../target', mode: 0o120777, size: 9 }],
  ['symlink target of 100', { name: 'l', type: 'symlink', linkname: 't'.repeat(100) }],
  ['symlink target of 101', { name: 'l', type: 'symlink', linkname: 't'.repeat(101) }],
  ['hard link', { name: 'h', type: 'link', linkname: 'a' }],
  ['char device', { name: 'null', type: 'character-device', mode: 0o20666, devmajor: 1, devminor: 3 }],
  ['block device', { name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }],
  ['fifo', { name: 'p', type: 'fifo', mode: 0o10644 }],
  ['user and group names', { uname: 'root', gname: 'wheel' }],
  ['name of 100', { name: 'n'.repeat(100) }],
  ['name of 101 without a slash', { name: 'n'.repeat(101) }],
  ['name of 150 with slashes', { name: long(150) }],
  ['name of 250 with slashes', { name: long(250) }],
  ['name of 300 with slashes', { name: long(300) }],
  ['prefix of 156', { name: `${'p'.repeat(156)}/file` }],
  ['non-ASCII name', { name: 'caf\u00e9' }],
  ['pax records', { pax: { uid: '3000000' } }],
  ['whiteout', { name: 'dir/.wh.gone', mode: 0o100000 }],
];

test('ustar header: byte for byte what tar-stream writes, or nothing where it writes PAX', async () => {
  let direct = 0;
  for (const [what, over] of cases) {
    const h: tar.Header = { ...base, ...over };
    const mine = ustarBlock({ ...h });
    const theirs = await tarStreamBlock(h);
    if (theirs[156] === 0x78) {
      assert.equal(mine, undefined, `${what}: tar-stream writes PAX, the direct header must not be used`);
      continue;
    }
    assert.ok(mine, `${what}: tar-stream writes a plain header`);
    assert.deepEqual(mine.toString('hex'), theirs.toString('hex'), what);
    direct++;
  }
  assert.equal(direct, 24);
});

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
  // the digest packTree gave for this tree when tar-stream wrote every entry (before the direct headers)
  assert.equal(hash.digest('hex'), 'c3161ef0833e13135a1ff3e186a38601e1b6f3f3547eac40fad4e96b0db17630');
});
