import * as path from 'node:path';
import type { Digest } from '../oci/digest.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { withLock } from './lock.js';

export interface ImageRecord {
  /** the manifest as stored (layers uncompressed) */
  manifest: Digest;
  /** when it entered the store */
  added: string;
  /** `repository@digest` of manifests it was pushed as or pulled from (docker's RepoDigests) */
  repoDigests?: string[];
}

/** A multi-platform image: an OCI image index over images of the store, one per platform. */
export interface IndexRecord {
  /** the platform images (image IDs), in the index's order */
  images: Digest[];
  added: string;
}

/** On-disk shape of `images.json`, version 1. Image IDs are config digests, as Docker's. */
export interface ImageIndexFile {
  version: 1;
  images: Record<string, ImageRecord>;
  /** `name:tag` → image ID, or the digest of an index in `indexes` */
  tags: Record<string, Digest>;
  /** multi-platform images by the digest of their OCI index (absent in stores that never had one) */
  indexes?: Record<string, IndexRecord>;
}

/** Image IDs a tag keeps: those tagged, and the platform images of tagged indexes. */
export function taggedImages(idx: ImageIndexFile): Set<Digest> {
  const out = new Set<Digest>();
  for (const t of Object.values(idx.tags)) {
    const index = idx.indexes?.[t];
    if (index) for (const id of index.images) out.add(id);
    else out.add(t);
  }
  return out;
}

const EMPTY: ImageIndexFile = { version: 1, images: {}, tags: {} };

/** The name:tag → image table. Every change is a locked read-modify-write with an atomic rename. */
export class ImageIndex {
  private readonly file: string;
  private readonly lockFile: string;

  constructor(dir: string) {
    this.file = path.join(dir, 'images.json');
    this.lockFile = path.join(dir, 'images.lock');
  }

  async read(): Promise<ImageIndexFile> {
    const f = await readJsonFile<ImageIndexFile>(this.file);
    return f ?? structuredClone(EMPTY);
  }

  /** Run `fn` holding the index lock without changing the index (garbage collection). */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.lockFile, fn);
  }

  async update<T>(fn: (idx: ImageIndexFile) => T | Promise<T>): Promise<T> {
    return withLock(this.lockFile, async () => {
      const idx = await this.read();
      const out = await fn(idx);
      await writeFileAtomic(this.file, JSON.stringify(idx, null, 1));
      return out;
    });
  }
}
