import { lstatSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import type { Digest } from '../oci/digest.js';
import type { CacheRecord } from '../store/cache.js';
import type { Store, StoredImage } from '../store/store.js';

/** Bytes of the files under a directory (apparent sizes; a hardlinked inode counts once). */
export function dirSize(dir: string): number {
  let total = 0;
  const seen = new Set<string>();
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        const k = `${st.dev}:${st.ino}`;
        if (st.nlink > 1) {
          if (seen.has(k)) continue;
          seen.add(k);
        }
        total += st.size;
      }
    }
  };
  walk(dir);
  return total;
}

export interface DiskUsage {
  images: { image: StoredImage; size: number; shared: number; unique: number; containers: 0 }[];
  imagesTotal: number;
  imagesReclaimable: number;
  layers: { count: number; size: number };
  cache: { records: number; size: number; reclaimable: number };
}

/**
 * `lbuild df`: sizes from the real snapshot directories. A layer shared by several images is
 * counted once in totals, as SHARED SIZE for each of them, and as UNIQUE SIZE only where one
 * image alone uses it (docker system df -v's columns).
 */
export async function diskUsage(store: Store, records: CacheRecord[]): Promise<DiskUsage> {
  const images = await store.listImages();
  const sizes = new Map<Digest, number>();
  const sizeOf = async (d: Digest): Promise<number> => {
    let s = sizes.get(d);
    if (s === undefined) {
      s = (await store.snapshots.has(d)) ? dirSize(store.snapshots.diffDir(d)) : 0;
      sizes.set(d, s);
    }
    return s;
  };
  const users = new Map<Digest, number>();
  for (const img of images) for (const d of new Set(img.config.rootfs.diff_ids)) users.set(d, (users.get(d) ?? 0) + 1);
  const rows: DiskUsage['images'] = [];
  for (const img of images) {
    let size = 0;
    let shared = 0;
    let unique = 0;
    for (const d of new Set(img.config.rootfs.diff_ids)) {
      const s = await sizeOf(d);
      size += s;
      if ((users.get(d) ?? 0) > 1) shared += s;
      else unique += s;
    }
    rows.push({ image: img, size, shared, unique, containers: 0 });
  }
  let imagesTotal = 0;
  for (const d of users.keys()) imagesTotal += await sizeOf(d);
  const tagged = new Set<Digest>();
  for (const img of images) if (img.tags.length) for (const d of img.config.rootfs.diff_ids) tagged.add(d);
  let imagesReclaimable = 0;
  for (const d of users.keys()) if (!tagged.has(d)) imagesReclaimable += await sizeOf(d);
  const all = (await store.snapshots.list()).map((h) => `sha256:${h}` as Digest);
  let layerBytes = 0;
  for (const d of all) layerBytes += await sizeOf(d);
  let cacheOnly = 0;
  const counted = new Set<Digest>();
  for (const r of records) {
    if (users.has(r.diffId) || counted.has(r.diffId)) continue;
    counted.add(r.diffId);
    cacheOnly += await sizeOf(r.diffId);
  }
  return {
    images: rows,
    imagesTotal,
    imagesReclaimable,
    layers: { count: all.length, size: layerBytes },
    cache: { records: records.length, size: cacheOnly, reclaimable: cacheOnly },
  };
}
