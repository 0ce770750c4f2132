import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createHash } from 'node:crypto';
import { decompress, sniffFile } from '../util/decompress.js';
import { tempName } from '../util/fsx.js';
import { type Digest, tapDigest } from './digest.js';
import { DigestMismatchError } from '../errors.js';

/** Open a layer file from an archive as an uncompressed tar stream, whatever its compression. */
export async function openLayerFile(file: string): Promise<Readable> {
  const kind = await sniffFile(file);
  return decompress(createReadStream(file), kind);
}

/**
 * gzip a file into tmpDir; returns the compressed file, digest and size. With `expected`, the
 * input is hashed on the way and a mismatch (a damaged store blob) is an error, not a push.
 */
export async function gzipFile(file: string, tmpDir: string, level = 6, expected?: Digest): Promise<{ file: string; digest: Digest; size: number }> {
  const out = path.join(tmpDir, tempName('gz'));
  const hash = createHash('sha256');
  let size = 0;
  const gz = createGzip({ level });
  gz.on('data', (c: Buffer) => {
    hash.update(c);
    size += c.length;
  });
  const src = createReadStream(file);
  const input = tapDigest(src);
  try {
    await pipeline(src, gz, createWriteStream(out));
    const got = input();
    if (expected && got !== expected) throw new DigestMismatchError(`the store's copy of ${expected} is damaged (lbuild fsck --repair)`, expected, got);
  } catch (e) {
    await fsp.rm(out, { force: true });
    throw e;
  }
  return { file: out, digest: `sha256:${hash.digest('hex')}`, size };
}

export async function removeFiles(files: readonly string[]): Promise<void> {
  await Promise.all(files.map((f) => fsp.rm(f, { force: true })));
}
