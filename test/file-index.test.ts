import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import xxhash from 'xxhash-wasm';
import { FileIndexWriter, readFileIndex, type IndexedFile } from '../src/diff/file-index.js';

/*
 * The file index (diff/file-index.ts) decides which files an incremental COPY takes over from
 * the previous layer: every line the writer makes must read back exactly, and a line it did
 * not make reads as JSON reads it, or as no entry.
 */

const dir = mkdtempSync(path.join(tmpdir(), 'lbuild-file-index-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const entries: [string, IndexedFile][] = [
  ['a.txt', { mode: 0o644, uid: 0, gid: 0, size: 0, mtimeMs: 0, hash: '0123456789abcdef', xattrs: false, offset: 0, length: 1024, tarMtime: 0 }],
  ['dir/b', { mode: 0o4755, uid: 4294967294, gid: 65534, size: 123456789012, mtimeMs: 1733246400123.4567, hash: 'ffffffffffffffff', xattrs: true, offset: 2 ** 40, length: 123457000000, tarMtime: 1733246400 }],
  ['sub sec', { mode: 0o600, uid: 1, gid: 2, size: 3, mtimeMs: 0.1 + 0.2, hash: '00000000000000a1', xattrs: false, offset: 512, length: 1536, tarMtime: 0 }],
  ['big digits', { mode: 0o600, uid: 1, gid: 2, size: 3, mtimeMs: 9007199254740993, hash: '00000000000000a2', xattrs: false, offset: 999999999999999, length: 1536, tarMtime: 1e15 }],
  ['q"uote\\d', { mode: 0o640, uid: 7, gid: 8, size: 9, mtimeMs: 1700000000000.0002, hash: 'abcdefabcdefabcd', xattrs: false, offset: 4096, length: 1024, tarMtime: 1700000000 }],
];

test('every line the writer makes reads back as written', async () => {
  const file = path.join(dir, 'written.jsonl');
  const w = new FileIndexWriter(file, await xxhash());
  for (const [rel, e] of entries) w.add(rel, e, e.hash, e.xattrs, e);
  w.close();
  const index = readFileIndex(file);
  assert.ok(index);
  for (const [rel, e] of entries) assert.deepEqual(index.get(rel), e, rel);
  assert.equal(index.get('missing'), undefined);
});

test('lines the writer does not make are read as JSON reads them, or not at all', () => {
  const header = readFileSync(path.join(dir, 'written.jsonl'), 'latin1').split('\n')[0] as string;
  const lines: [string, string, IndexedFile | undefined][] = [
    // JSON, not as the writer spells it: read all the same
    ['spaced', ', 420, 0, 0, 5, 1.5, "0123456789abcdef", 0, 0, 1024, 0]', { mode: 420, uid: 0, gid: 0, size: 5, mtimeMs: 1.5, hash: '0123456789abcdef', xattrs: false, offset: 0, length: 1024, tarMtime: 0 }],
    ['exponent', ',420,0,0,5,1.5e3,"0123456789abcdef",0,0,1024,0]', { mode: 420, uid: 0, gid: 0, size: 5, mtimeMs: 1500, hash: '0123456789abcdef', xattrs: false, offset: 0, length: 1024, tarMtime: 0 }],
    ['escaped hash', ',420,0,0,5,1,"\\u0030123456789abcdef",0,0,1024,0]', { mode: 420, uid: 0, gid: 0, size: 5, mtimeMs: 1, hash: '0123456789abcdef', xattrs: false, offset: 0, length: 1024, tarMtime: 0 }],
    ['negative', ',420,0,0,5,-1.25,"0123456789abcdef",0,-0,1024,0]', { mode: 420, uid: 0, gid: 0, size: 5, mtimeMs: -1.25, hash: '0123456789abcdef', xattrs: false, offset: -0, length: 1024, tarMtime: 0 }],
    // not JSON, or not an entry: no entry
    ['leading zero', ',0420,0,0,5,1,"0123456789abcdef",0,0,1024,0]', undefined],
    ['bare dot', ',420,0,0,5,1.,"0123456789abcdef",0,0,1024,0]', undefined],
    ['infinite', `,420,0,0,5,1${'0'.repeat(400)},"0123456789abcdef",0,0,1024,0]`, undefined],
    ['short hash', ',420,0,0,5,1,"0123456789abcde",0,0,1024,0]', undefined],
    ['eleven fields', ',420,0,0,5,1,"0123456789abcdef",0,0,1024,0,0]', undefined],
    ['string field', ',"420",0,0,5,1,"0123456789abcdef",0,0,1024,0]', undefined],
    ['trailing bytes', ',420,0,0,5,1,"0123456789abcdef",0,0,1024,0]x', undefined],
  ];
  const file = path.join(dir, 'hand.jsonl');
  writeFileSync(file, `${header}\n${lines.map(([name, t]) => `[${JSON.stringify(name)}${t}\n`).join('')}`, 'latin1');
  const index = readFileIndex(file);
  assert.ok(index);
  for (const [name, , want] of lines) {
    const got = index.get(name);
    assert.deepEqual(got, want, name);
    if (want && Object.is(want.offset, -0)) assert.ok(Object.is(got?.offset, -0), `${name}: -0 stays -0`);
  }
});
