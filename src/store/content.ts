import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { DigestMismatchError, NotFoundError, isErrno } from '../errors.js';
import { type Digest, hexOf, isDigest, parseDigest } from '../oci/digest.js';
import { tempName } from '../util/fsx.js';

const WRITE_BATCH = 1 << 20;

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface StagedBlob extends BlobInfo {
  tmp: string;
}

/**
 * Content-addressed blobs under `blobs/sha256/<hex>`. Every write goes to a temp file in the
 * same filesystem, is hashed while written, checked against the expected digest and only then
 * renamed into place: a crash never leaves a partial blob under its final name.
 */
export class ContentStore {
  constructor(
    readonly dir: string,
    readonly tmpDir: string,
  ) {}

  /** Every store operation goes through here: a digest that is not one never becomes a path. */
  path(d: Digest): string {
    return path.join(this.dir, 'sha256', hexOf(parseDigest(d, 'content store')));
  }

  async has(d: Digest): Promise<boolean> {
    const p = this.path(d);
    try {
      await fsp.access(p);
      return true;
    } catch {
      return false;
    }
  }

  async size(d: Digest): Promise<number> {
    const p = this.path(d);
    try {
      return (await fsp.stat(p)).size;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new NotFoundError(`blob ${d}`);
      throw e;
    }
  }

  /** Store a stream or buffer. With `expected`, a mismatch throws and stores nothing. */
  async ingest(src: Readable | Uint8Array, expected?: Digest, what = 'blob'): Promise<BlobInfo> {
    if (expected && (await this.has(expected))) {
      if (!(src instanceof Uint8Array)) src.resume();
      return { digest: expected, size: await this.size(expected) };
    }
    const staged = await this.stage(src, expected, what);
    await this.commit(staged);
    return { digest: staged.digest, size: staged.size };
  }

  /**
   * Write a blob to a temp file and verify it, without making it visible yet: callers that must
   * add several blobs all-or-nothing stage them all, then commit them.
   */
  async stage(src: Readable | Uint8Array, expected?: Digest, what = 'blob'): Promise<StagedBlob> {
    const tmp = path.join(this.tmpDir, tempName('blob'));
    const hash = createHash('sha256');
    let size = 0;
    // listening from now on: a stream that fails while the file is being opened fails with its own error
    const chunks = src instanceof Uint8Array ? undefined : src[Symbol.asyncIterator]();
    const fh = await fsp.open(tmp, 'w', 0o644).catch(async (e: unknown) => {
      await chunks?.return?.();
      throw e;
    });
    try {
      if (src instanceof Uint8Array) {
        hash.update(src);
        size = src.length;
        await fh.writeFile(src);
      } else {
        // a tar stream comes in header-sized pieces: one write per MiB, not per piece
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        for await (const chunk of { [Symbol.asyncIterator]: () => chunks as AsyncIterator<unknown> }) {
          const buf = chunk as Buffer;
          hash.update(buf);
          size += buf.length;
          pending.push(buf);
          pendingBytes += buf.length;
          if (pendingBytes >= WRITE_BATCH) {
            await fh.writev(pending);
            pending = [];
            pendingBytes = 0;
          }
        }
        if (pending.length) await fh.writev(pending);
      }
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    const digest: Digest = `sha256:${hash.digest('hex')}`;
    if (expected && expected !== digest) {
      await fsp.rm(tmp, { force: true });
      throw new DigestMismatchError(what, expected, digest);
    }
    return { tmp, digest, size };
  }

  /** Hash a stream without storing it; throws on a mismatch. */
  async verify(src: Readable, expected: Digest, what = 'blob'): Promise<void> {
    const hash = createHash('sha256');
    for await (const chunk of src) hash.update(chunk as Buffer);
    const digest: Digest = `sha256:${hash.digest('hex')}`;
    if (digest !== expected) throw new DigestMismatchError(what, expected, digest);
  }

  async commit(staged: StagedBlob): Promise<void> {
    await this.adopt(staged.tmp, staged.digest);
  }

  async discard(staged: StagedBlob): Promise<void> {
    await fsp.rm(staged.tmp, { force: true });
  }

  /** Move an already verified temp file into place (the caller computed its digest). */
  async adopt(tmpFile: string, digest: Digest): Promise<void> {
    const final = this.path(digest);
    await fsp.mkdir(path.dirname(final), { recursive: true });
    await fsp.rename(tmpFile, final);
  }

  async putJson(value: unknown): Promise<BlobInfo & { bytes: Buffer }> {
    const bytes = Buffer.from(JSON.stringify(value));
    const info = await this.ingest(bytes);
    return { ...info, bytes };
  }

  async readBytes(d: Digest): Promise<Buffer> {
    const p = this.path(d);
    try {
      return await fsp.readFile(p);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new NotFoundError(`blob ${d}`);
      throw e;
    }
  }

  async readJson<T>(d: Digest): Promise<T> {
    return JSON.parse((await this.readBytes(d)).toString('utf8')) as T;
  }

  open(d: Digest): Readable {
    return createReadStream(this.path(d));
  }

  async delete(d: Digest): Promise<void> {
    await fsp.rm(this.path(d), { force: true });
  }

  async list(): Promise<Digest[]> {
    let names: string[];
    try {
      names = await fsp.readdir(path.join(this.dir, 'sha256'));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw e;
    }
    return names.map((n) => `sha256:${n}`).filter(isDigest);
  }
}
