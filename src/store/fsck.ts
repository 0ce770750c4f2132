import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type Digest, fileDigest, isDigest } from '../oci/digest.js';
import type { ImageConfig, Manifest } from '../oci/types.js';
import { isPidAlive, ownerPid } from '../util/fsx.js';
import { CacheIndex } from './cache.js';
import { clearStaleLock, inspectLock } from './lock.js';
import type { Store } from './store.js';
import { layout } from './layout.js';
import { snapshotDifference } from './verify-snapshot.js';
import { packTree } from '../diff/tarwriter.js';
import { upperPackOptions } from '../diff/upper.js';
import type { Readable } from 'node:stream';
import { readTreeXattrs } from '../util/xattr.js';

export interface FsckProblem {
  what: string;
  repaired: boolean;
}

/**
 * Check the store: every blob against its digest, every image's manifest, config and layers,
 * every layer's snapshot, every cache record's layer, leftovers of dead processes. With repair,
 * remove what is broken (and re-extract missing snapshots from their blobs).
 */
export async function fsck(store: Store, repair: boolean): Promise<FsckProblem[]> {
  const problems: FsckProblem[] = [];
  const report = (what: string, repaired: boolean): void => {
    problems.push({ what, repaired });
  };
  // a lock left by an owner that is gone would make every write command wait and fail
  const lockFile = path.join(store.root, 'images.lock');
  const lock = await inspectLock(lockFile);
  if (lock.state === 'stale') {
    if (repair) await clearStaleLock(lockFile);
    report(`images.lock: stale (${lock.why})`, repair);
  }
  for (const n of await fsp.readdir(store.root).catch(() => [] as string[])) {
    // writeFileAtomic's temp files beside images.json, from writers that died before the rename
    if (!(n.startsWith('.images.json-') || n.startsWith('images.lock.')) || n === 'images.lock.break' || isPidAlive(ownerPid(n))) continue;
    if (repair) await fsp.rm(path.join(store.root, n), { force: true });
    report(`temp ${n}: left by a process that is gone`, repair);
  }
  const bad = new Set<string>();
  for (const d of await store.content.list()) {
    const got = await fileDigest(store.content.path(d)).catch(() => undefined);
    if (got !== d) {
      if (repair) await store.content.delete(d);
      // a layer lbuild wrote can often be written again, byte for byte, from its intact snapshot
      const regenerated = repair && (await regenerateFromSnapshot(store, d));
      if (!regenerated) bad.add(d);
      report(`blob ${d}: content does not match its digest${got ? ` (${got})` : ''}${regenerated ? '; written again from its snapshot' : ''}`, repair);
    }
  }
  const has = async (d: Digest): Promise<boolean> => !bad.has(d) && (await store.content.has(d));
  const idx = await store.images.read();
  const broken: string[] = [];
  const verified = new Set<string>();
  for (const [id, rec] of Object.entries(idx.images)) {
    if (!isDigest(id)) continue;
    const missing: string[] = [];
    if (!(await has(rec.manifest))) missing.push(`manifest ${rec.manifest}`);
    if (!(await has(id))) missing.push(`config ${id}`);
    let config: ImageConfig | undefined;
    let manifest: Manifest | undefined;
    if (missing.length === 0) {
      manifest = await store.content.readJson<Manifest>(rec.manifest).catch(() => undefined);
      config = await store.content.readJson<ImageConfig>(id).catch(() => undefined);
      if (!manifest || !config) missing.push('unreadable manifest or config');
    }
    for (const l of manifest?.layers ?? []) if (!(await has(l.digest))) missing.push(`layer ${l.digest}`);
    if (missing.length) {
      broken.push(id);
      report(`image ${id.slice(7, 19)}: missing ${missing.join(', ')}`, repair);
      continue;
    }
    for (const d of config?.rootfs.diff_ids ?? []) {
      if (verified.has(d)) continue;
      verified.add(d);
      if (await store.snapshots.has(d)) {
        // a snapshot damaged on disk (a truncated or edited file) is found against its layer
        const diff = await snapshotDifference(store.content.open(d), store.snapshots.diffDir(d)).catch((e: unknown) => `unreadable (${(e as Error).message})`);
        if (diff === undefined) continue;
        if (repair) {
          await store.snapshots.remove(d);
          await store.snapshots.ensure(d, () => store.content.open(d));
        }
        report(`layer ${d}: snapshot differs from the layer (${diff})${repair ? '; extracted again' : ''}`, repair);
        continue;
      }
      if (repair) await store.snapshots.ensure(d, () => store.content.open(d));
      report(`layer ${d}: snapshot missing`, repair);
    }
  }
  // a multi-platform image is broken with its index blob or any of its platform images
  const brokenIndexes: string[] = [];
  for (const [d, rec] of Object.entries(idx.indexes ?? {})) {
    if (!isDigest(d)) continue;
    const missing = [...(!(await has(d)) ? [`index ${d}`] : []), ...rec.images.filter((id) => broken.includes(id) || !idx.images[id]).map((id) => `image ${id.slice(7, 19)}`)];
    if (missing.length === 0) continue;
    brokenIndexes.push(d);
    report(`multi-platform image ${d.slice(7, 19)}: missing ${missing.join(', ')}`, repair);
  }
  if (repair && (broken.length || brokenIndexes.length)) {
    await store.images.update((i) => {
      for (const id of broken) delete i.images[id];
      for (const d of brokenIndexes) delete i.indexes?.[d];
      for (const [t, id] of Object.entries(i.tags)) if (broken.includes(id) || brokenIndexes.includes(id)) delete i.tags[t];
    });
  }
  const cache = new CacheIndex(store.root);
  for (const r of await cache.list()) {
    if (await has(r.diffId)) continue;
    if (repair) await cache.remove(r.key);
    report(`cache record ${r.key.slice(0, 12)}: layer ${r.diffId} missing`, repair);
  }
  for (const n of await fsp.readdir(store.tmpDir).catch(() => [] as string[])) {
    if (isPidAlive(ownerPid(n))) continue;
    if (repair) await fsp.rm(path.join(store.tmpDir, n), { recursive: true, force: true });
    report(`temp ${n}: left by a process that is gone`, repair);
  }
  for (const n of await fsp.readdir(layout.snapshots(store.root)).catch(() => [] as string[])) {
    const link = await fsp.readFile(path.join(layout.snapshots(store.root), n, 'link'), 'utf8').catch(() => undefined);
    if (link !== undefined) continue;
    if (repair) await fsp.rm(path.join(layout.snapshots(store.root), n), { recursive: true, force: true });
    report(`snapshot ${n.slice(0, 12)}: incomplete`, repair);
  }
  return problems;
}

/**
 * Write a damaged layer blob again from its snapshot with lbuild's layer writer (deterministic
 * for the same tree). Kept only if it hashes to the digest the blob should have: a layer written
 * by another tool, or with a SOURCE_DATE_EPOCH clamp, does not come out the same and stays lost.
 */
async function regenerateFromSnapshot(store: Store, d: Digest): Promise<boolean> {
  if (!(await store.snapshots.has(d))) return false;
  const dir = store.snapshots.diffDir(d);
  const attrs = await readTreeXattrs(dir).catch(() => undefined);
  if (!attrs) return false;
  // staged, and committed only under the right digest: nothing else in the store is touched
  const pack = packTree(dir, upperPackOptions(attrs.opaque, undefined, attrs.shipped)) as unknown as Readable;
  const staged = await store.content.stage(pack, undefined, `layer ${d}`).catch(() => undefined);
  if (!staged) return false;
  if (staged.digest !== d) {
    await store.content.discard(staged);
    return false;
  }
  await store.content.commit(staged);
  return true;
}
