import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { DigestMismatchError } from '../src/errors.js';
import { chainIds, sha256 } from '../src/oci/digest.js';
import { parseReference, normalizeTag } from '../src/oci/reference.js';
import { Store } from '../src/store/store.js';
import { removeDir, tempDir } from './helpers/cli.js';

test('content store: ingest is content-addressed and verified', async () => {
  const dir = tempDir();
  try {
    const store = await Store.open(dir);
    const data = Buffer.from('hello layer');
    const info = await store.content.ingest(Readable.from([data.subarray(0, 5), data.subarray(5)]));
    assert.equal(info.digest, sha256(data));
    assert.equal(info.size, data.length);
    assert.deepEqual(await store.content.readBytes(info.digest), data);
    // a wrong expected digest stores nothing and leaves no temp file behind
    const wrong = sha256('something else');
    await assert.rejects(store.content.ingest(Buffer.from('not it'), wrong), DigestMismatchError);
    assert.equal(await store.content.has(wrong), false);
    assert.deepEqual(await fsp.readdir(path.join(dir, 'tmp')), []);
    assert.deepEqual(await store.content.list(), [info.digest]);
  } finally {
    await removeDir(dir);
  }
});

test('content store: staged blobs are invisible until committed', async () => {
  const dir = tempDir();
  try {
    const store = await Store.open(dir);
    const staged = await store.content.stage(Buffer.from('x'));
    assert.equal(await store.content.has(staged.digest), false);
    await store.content.commit(staged);
    assert.equal(await store.content.has(staged.digest), true);
  } finally {
    await removeDir(dir);
  }
});

test('chain IDs follow the OCI definition', () => {
  const a = sha256('a');
  const b = sha256('b');
  const c = sha256('c');
  const ids = chainIds([a, b, c]);
  assert.equal(ids[0], a);
  assert.equal(ids[1], sha256(`${a} ${b}`));
  assert.equal(ids[2], sha256(`${ids[1]} ${c}`));
});

test('image references parse like Docker', () => {
  assert.deepEqual(parseReference('busybox'), { name: 'busybox' });
  assert.deepEqual(parseReference('127.0.0.1:5000/busybox:latest'), { name: '127.0.0.1:5000/busybox', tag: 'latest' });
  assert.deepEqual(parseReference('localhost/a/b:1.0'), { name: 'localhost/a/b', tag: '1.0' });
  const d = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(parseReference(`x@${d}`), { name: 'x', digest: d });
  assert.equal(normalizeTag('app'), 'app:latest');
  assert.throws(() => parseReference('Bad/Name'), /invalid reference/);
  assert.throws(() => parseReference('a:b:c'), /invalid reference/);
  assert.throws(() => parseReference(''), /invalid reference/);
});
