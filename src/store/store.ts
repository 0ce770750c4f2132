import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LbuildError, NotFoundError, UsageError } from '../errors.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { dirSize } from '../analyze/df.js';
import { traced } from '../util/trace.js';
import { normalizeTag } from '../oci/reference.js';
import { type Descriptor, type ImageConfig, type ImageIndex as OciIndex, type Manifest, MediaType } from '../oci/types.js';
import { CacheIndex } from './cache.js';
import { type Lease, gcRunning, liveLeases } from './leases.js';
import { pauseForTests } from '../util/testhooks.js';
import { ContentStore } from './content.js';
import { ImageIndex, type ImageIndexFile, taggedImages } from './images.js';
import { type Platform, configPlatform, hostPlatform, pickFor } from '../oci/platform.js';
import { SnapshotStore } from './snapshots.js';
import { PRIVATE_DIRS, layout } from './layout.js';
import { inUserNamespace } from '../runtime/rootless.js';
import { overlayXattrNamespace } from '../util/xattr.js';
import { sweepSideFiles } from './sweep.js';

export interface StoredImage {
  /** image ID: the config digest, as Docker's */
  id: Digest;
  manifestDigest: Digest;
  manifest: Manifest;
  config: ImageConfig;
  tags: string[];
  added: string;
  /** `repository@sha256:…` it was pushed as or pulled from */
  repoDigests: string[];
}

/** A multi-platform image of the store: its OCI index and the image of each platform. */
export interface StoredIndex {
  digest: Digest;
  index: OciIndex;
  images: StoredImage[];
  tags: string[];
  added: string;
}

export function defaultRoot(): string {
  if (process.env.LBUILD_ROOT) return process.env.LBUILD_ROOT;
  if (process.getuid?.() === 0 && !inUserNamespace()) return '/var/lib/lbuild';
  const data = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'lbuild');
}


/**
 * The store's own directories (layout.ts) are 0700 whatever the root's mode (Docker's
 * /var/lib/docker parts are 0700 too): snapshots and cache mounts hold files that RUN steps
 * made, setuid binaries among them, which no other host user may reach. `empty` (the lower of
 * FROM scratch, whose mode is the image root's) stays as it is: it holds nothing.
 */
/** A root another user owns or may write could have its parts swapped under us: refuse it. */
async function checkRootOwnership(abs: string): Promise<void> {
  const st = await fsp.stat(abs);
  const uid = process.getuid?.() ?? 0;
  if (st.uid !== uid) throw new LbuildError(`cannot use store ${abs}: owned by uid ${st.uid}, not by this user (uid ${uid})`);
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new LbuildError(`cannot use store ${abs}: it is writable by other users (mode ${(st.mode & 0o7777).toString(8)}); chmod go-w ${abs}`);
  }
}

/**
 * Snapshots made as root carry overlay's marks as trusted.* xattrs, rootless ones as user.*; a
 * store of one kind read by the other would show wrong images: refuse it.
 */
async function checkOverlayXattrs(abs: string): Promise<void> {
  const mine = overlayXattrNamespace();
  const file = layout.overlayXattrs(abs);
  const theirs = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
  if (theirs === '') {
    await fsp.writeFile(file, `${mine}\n`);
    return;
  }
  if (theirs !== mine) {
    const made = theirs === 'user' ? 'rootless' : 'as root';
    throw new LbuildError(`cannot use store ${abs}: it was made ${made}, and this lbuild runs ${mine === 'user' ? 'rootless' : 'as root'}; give it a store of its own (--root DIR)`);
  }
}

/** What a reference names as a tag (an image ID or an index digest), if it is a tag of the store. */
function tagTarget(idx: ImageIndexFile, ref: string): Digest | undefined {
  let key: string;
  try {
    key = normalizeTag(ref);
  } catch {
    return undefined;
  }
  return idx.tags[key];
}

/** The store: blobs, the image index and layer snapshots under one root directory. */
export class Store {
  readonly content: ContentStore;
  readonly images: ImageIndex;
  readonly snapshots: SnapshotStore;
  readonly tmpDir: string;

  private constructor(readonly root: string) {
    this.tmpDir = layout.tmp(root);
    this.content = new ContentStore(layout.blobs(root), this.tmpDir);
    this.images = new ImageIndex(root);
    this.snapshots = new SnapshotStore(root, this.tmpDir);
  }

  static async open(root: string): Promise<Store> {
    let abs = path.resolve(root);
    try {
      await fsp.mkdir(abs, { recursive: true, mode: 0o700 });
      // resolved once: runc refuses a rootfs path through a link, and crash recovery compares
      // mount points with /proc/mounts, which shows them resolved
      abs = await fsp.realpath(abs);
      await checkRootOwnership(abs);
      for (const d of PRIVATE_DIRS) {
        const p = path.join(abs, d);
        await fsp.mkdir(p, { recursive: true, mode: 0o700 });
        // a store made by an older lbuild, or under a umask, may have these open to other users
        const st = await fsp.lstat(p);
        if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? 0)) throw new LbuildError(`cannot use store ${abs}: ${d} is not a directory of this user`);
        if ((st.mode & 0o077) !== 0) await fsp.chmod(p, 0o700);
      }
      await fsp.mkdir(path.join(abs, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
      await checkOverlayXattrs(abs);
    } catch (e) {
      if (e instanceof LbuildError) throw e;
      throw new LbuildError(`cannot use store ${abs}: ${(e as Error).message}`);
    }
    return new Store(abs);
  }

  /** Layer descriptors for a config's diff_ids (layers are stored uncompressed: digest = diff_id). */
  async layerDescriptors(diffIds: readonly Digest[]): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const d of diffIds) out.push({ mediaType: MediaType.ociLayer, digest: d, size: await this.content.size(d) });
    return out;
  }

  /** Write config + manifest for layers already in the store and record the image (and tags). */
  async commitImage(config: ImageConfig, tags: readonly string[] = [], rawConfig?: Buffer): Promise<StoredImage> {
    const layers = await this.layerDescriptors(config.rootfs.diff_ids);
    const added = new Date().toISOString();
    const normalized = tags.map(normalizeTag);
    // config and manifest are written under the index lock: garbage collection (which holds it
    // too) never sees them before the image that refers to them
    return this.images.update(async (idx) => {
      // loaded images keep their config bytes exactly: the image ID is their digest
      const cfg = rawConfig ? await this.content.ingest(rawConfig) : await this.content.putJson(config);
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
        layers,
      };
      const man = await this.content.putJson(manifest);
      const prev = idx.images[cfg.digest];
      idx.images[cfg.digest] = { manifest: man.digest, added: prev?.added ?? added, ...(prev?.repoDigests ? { repoDigests: prev.repoDigests } : {}) };
      // an image that loses its tag stays as a dangling image, as in Docker
      for (const t of normalized) idx.tags[t] = cfg.digest;
      return { id: cfg.digest, manifestDigest: man.digest, manifest, config, tags: normalized, added, repoDigests: prev?.repoDigests ?? [] };
    });
  }

  /**
   * What a tag names as stored (an image ID, or an index digest), else a full image ID or an
   * unambiguous ID prefix.
   */
  private targetIn(idx: ImageIndexFile, ref: string): Digest {
    const byTag = tagTarget(idx, ref);
    if (byTag) return byTag;
    if (isDigest(ref) && idx.indexes?.[ref]) return ref;
    return this.resolveIn(idx, ref);
  }

  /** The image of a multi-platform index for a platform (this host's by default, else the first). */
  private async platformImage(idx: ImageIndexFile, digest: Digest, platform?: Platform): Promise<Digest> {
    const rec = idx.indexes?.[digest];
    if (!rec) return digest;
    const want = platform ?? hostPlatform();
    const configs = await Promise.all(rec.images.map(async (id) => ({ id, c: await this.content.readJson<ImageConfig>(id).catch(() => undefined) })));
    const hit = pickFor(configs, (x) => (x.c ? configPlatform(x.c) : undefined), want);
    if (hit) return hit.id;
    if (platform) throw new NotFoundError(`image for ${want.os}/${want.arch}${want.variant ? `/${want.variant}` : ''} in ${digest}`);
    return rec.images[0] as Digest;
  }

  /** A tag, a full image ID or an unambiguous ID prefix → image ID (a multi-platform tag: see platformImage). */
  resolveIn(idx: ImageIndexFile, ref: string): Digest {
    const byTag = tagTarget(idx, ref);
    if (byTag) return byTag;
    const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
    if (/^[0-9a-f]{4,64}$/.test(hex)) {
      const hits = Object.keys(idx.images).filter((id) => id.slice(7).startsWith(hex));
      if (hits.length === 1 && isDigest(hits[0] as string)) return hits[0] as Digest;
      if (hits.length > 1) throw new UsageError(`${ref}: ambiguous image ID prefix`);
    }
    throw new NotFoundError(`image ${ref}`);
  }

  async resolve(ref: string, platform?: Platform): Promise<Digest> {
    const idx = await this.images.read();
    return this.platformImage(idx, this.targetIn(idx, ref), platform);
  }

  /** The image a reference names; for a multi-platform one, the image of `platform` (default this host's, else the first). */
  async getImage(ref: string, platform?: Platform): Promise<StoredImage> {
    const idx = await this.images.read();
    const id = await this.platformImage(idx, this.targetIn(idx, ref), platform);
    return this.load(idx, id);
  }

  /** The multi-platform image a reference names, or undefined when it names a single image. */
  async getIndex(ref: string): Promise<StoredIndex | undefined> {
    const idx = await this.images.read();
    let digest: Digest;
    try {
      digest = this.targetIn(idx, ref);
    } catch {
      return undefined;
    }
    return idx.indexes?.[digest] ? this.loadIndex(idx, digest) : undefined;
  }

  /** The multi-platform images whose platform images are all there (prune takes untagged ones, fsck broken ones). */
  async listIndexes(): Promise<StoredIndex[]> {
    const idx = await this.images.read();
    const out: StoredIndex[] = [];
    for (const [d, rec] of Object.entries(idx.indexes ?? {})) {
      if (isDigest(d) && rec.images.every((id) => idx.images[id])) out.push(await this.loadIndex(idx, d));
    }
    return out;
  }

  private async loadIndex(idx: ImageIndexFile, digest: Digest): Promise<StoredIndex> {
    const rec = idx.indexes?.[digest];
    if (!rec) throw new NotFoundError(`image index ${digest}`);
    const images: StoredImage[] = [];
    for (const id of rec.images) images.push(await this.load(idx, id));
    const tags = Object.entries(idx.tags).filter(([, v]) => v === digest).map(([k]) => k).sort();
    return { digest, index: await this.content.readJson<OciIndex>(digest), images, tags, added: rec.added };
  }

  /**
   * Record a multi-platform image: an OCI index over images already committed (one per
   * platform, each with its platform in the index), tagged with `tags`.
   */
  async commitIndex(images: readonly StoredImage[], tags: readonly string[] = []): Promise<StoredIndex> {
    const normalized = tags.map(normalizeTag);
    const added = new Date().toISOString();
    const manifests: Descriptor[] = [];
    for (const img of images) {
      const p = configPlatform(img.config);
      manifests.push({
        mediaType: MediaType.ociManifest,
        digest: img.manifestDigest,
        size: await this.content.size(img.manifestDigest),
        platform: { architecture: p.arch, os: p.os, ...(p.variant ? { variant: p.variant } : {}) },
      });
    }
    const index: OciIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
    return this.images.update(async (idx) => {
      // the platform images are untagged until now: a prune in between would have taken them
      const gone = images.filter((i) => !idx.images[i.id]);
      if (gone.length) throw new LbuildError(`the image of ${gone.map((i) => configPlatform(i.config).arch).join(', ')} was removed (a prune?) before the index was written: build again`);
      const blob = await this.content.putJson(index);
      idx.indexes ??= {};
      const prev = idx.indexes[blob.digest];
      idx.indexes[blob.digest] = { images: images.map((i) => i.id), added: prev?.added ?? added };
      for (const t of normalized) idx.tags[t] = blob.digest;
      return { digest: blob.digest, index, images: [...images], tags: normalized, added: prev?.added ?? added };
    });
  }

  private async load(idx: ImageIndexFile, id: Digest): Promise<StoredImage> {
    const rec = idx.images[id];
    if (!rec) throw new NotFoundError(`image ${id}`);
    const manifest = await this.content.readJson<Manifest>(rec.manifest);
    const config = await this.content.readJson<ImageConfig>(id);
    const tags = Object.entries(idx.tags)
      .filter(([, v]) => v === id)
      .map(([k]) => k)
      .sort();
    return { id, manifestDigest: rec.manifest, manifest, config, tags, added: rec.added, repoDigests: rec.repoDigests ?? [] };
  }

  async listImages(): Promise<StoredImage[]> {
    const idx = await this.images.read();
    const out: StoredImage[] = [];
    for (const id of Object.keys(idx.images)) if (isDigest(id)) out.push(await this.load(idx, id));
    return out;
  }

  /** Remember that the image is `repository@digest` in a registry (after a push or a pull). */
  async addRepoDigest(id: Digest, repoDigest: string): Promise<void> {
    await this.images.update((idx) => {
      const rec = idx.images[id];
      if (!rec) return;
      // one digest per repository, the latest, as docker keeps them
      const repo = repoDigest.slice(0, repoDigest.indexOf('@'));
      rec.repoDigests = [...(rec.repoDigests ?? []).filter((r) => !r.startsWith(`${repo}@`)), repoDigest].sort();
    });
  }

  async tag(src: string, dst: string): Promise<void> {
    const key = normalizeTag(dst);
    await this.images.update((idx) => {
      // a multi-platform image is tagged as a whole
      idx.tags[key] = this.targetIn(idx, src);
    });
  }

  /**
   * Remove a tag; remove the image when it has no tag left (or when named by ID), then
   * collect blobs and snapshots nothing refers to. Returns what was untagged and deleted.
   */
  async removeImage(ref: string, force = false): Promise<{ untagged: string[]; deleted: Digest[] }> {
    const res = await this.images.update((idx) => {
      const id = this.targetIn(idx, ref);
      const tags = Object.keys(idx.tags).filter((t) => idx.tags[t] === id);
      let key: string | undefined;
      try {
        key = normalizeTag(ref);
      } catch {
        key = undefined;
      }
      const byTag = key !== undefined && idx.tags[key] === id;
      const untagged: string[] = [];
      if (byTag && key) {
        delete idx.tags[key];
        untagged.push(key);
      } else {
        if (tags.length > 1 && !force) throw new LbuildError(`image ${ref} is referenced by ${tags.length} tags (${tags.join(', ')}): remove them by name or use --force`);
        for (const t of tags) {
          delete idx.tags[t];
          untagged.push(t);
        }
      }
      const deleted: Digest[] = [];
      if (!Object.values(idx.tags).includes(id)) {
        const index = idx.indexes?.[id];
        if (index) {
          // a multi-platform image goes with the platform images no other tag keeps
          delete idx.indexes?.[id];
          const kept = taggedImages(idx);
          for (const img of index.images) {
            if (kept.has(img) || !idx.images[img]) continue;
            delete idx.images[img];
            deleted.push(img);
          }
          deleted.push(id);
        } else if (!taggedImages(idx).has(id)) {
          delete idx.images[id];
          deleted.push(id);
        }
      }
      return { untagged, deleted };
    });
    if (res.deleted.length) await this.collectGarbage();
    return res;
  }

  /** Mark everything the images refer to; delete other blobs and snapshots. */
  async collectGarbage(extraRoots: Iterable<Digest> = []): Promise<{ blobs: number; snapshots: number; bytes: number }> {
    return traced('gc', () =>
      this.images.locked(async () => {
        // before any lease is read: a build that does not see this marker has its lease read
        await writeFileAtomic(layout.gcRunning(this.root), String(process.pid));
        try {
          return await this.collectLocked(extraRoots);
        } finally {
          await fsp.rm(layout.gcRunning(this.root), { force: true });
        }
      }),
    );
  }

  private async collectLocked(extraRoots: Iterable<Digest>): Promise<{ blobs: number; snapshots: number; bytes: number }> {
    const idx = await this.images.read();
    const live = new Set<string>(extraRoots);
    // layers the build cache points at stay (as Docker keeps build cache on rmi); prune removes them
    for (const r of await new CacheIndex(this.root).list()) live.add(r.diffId);
    // and so do the layers of builds in flight, and anything made since the oldest of them began
    const leases = liveLeases(this.root);
    for (const d of leases.layers) live.add(d);
    const tooNew = async (p: string): Promise<boolean> => {
      if (!Number.isFinite(leases.oldestStart)) return false;
      const st = await fsp.stat(p).catch(() => undefined);
      return st !== undefined && st.mtimeMs >= leases.oldestStart - 1000;
    };
    // a multi-platform image's index blob (its platform images are in idx.images)
    for (const d of Object.keys(idx.indexes ?? {})) live.add(d);
    for (const [id, rec] of Object.entries(idx.images)) {
      live.add(id);
      live.add(rec.manifest);
      const m = await this.content.readJson<Manifest>(rec.manifest).catch(() => undefined);
      const c = await this.content.readJson<ImageConfig>(id as Digest).catch(() => undefined);
      for (const l of m?.layers ?? []) live.add(l.digest);
      for (const d of c?.rootfs.diff_ids ?? []) live.add(d);
    }
    // the gzip form of a live layer (made by push) stays with it
    for (const d of [...live]) {
      if (!isDigest(d)) continue;
      const gz = await readJsonFile<{ digest: Digest }>(layout.compressed(this.root, d)).catch(() => undefined);
      if (gz) live.add(gz.digest);
    }
    // LBUILD_TEST_GC_DELAY_MS: a slow collection, for the tests of builds racing it
    await pauseForTests('GC_DELAY');
    let blobs = 0;
    let bytes = 0;
    for (const d of await this.content.list()) {
      if (!live.has(d) && !(await tooNew(this.content.path(d)))) {
        bytes += await this.content.size(d).catch(() => 0);
        await this.content.delete(d);
        blobs++;
      }
    }
    let snapshots = 0;
    for (const hex of await this.snapshots.list()) {
      const d = `sha256:${hex}`;
      if (isDigest(d) && !live.has(d) && !(await tooNew(this.snapshots.dir(d)))) {
        await this.snapshots.remove(d);
        snapshots++;
      }
    }
    const images = Object.keys(idx.images).filter(isDigest);
    const imageLayers: Digest[][] = [];
    for (const id of images) imageLayers.push((await this.content.readJson<ImageConfig>(id).catch(() => undefined))?.rootfs.diff_ids ?? []);
    await sweepSideFiles(this.root, { live, images, imageLayers, buildsRunning: Number.isFinite(leases.oldestStart) });
    return { blobs, snapshots, bytes };
  }

  /**
   * Lease layers for a build and tell which of them are not in the store; `then` (making a new
   * layer visible) runs only once they are leased. The lease is written first, then the GC marker
   * is read: with no collection running, any collection that starts later reads this lease and
   * keeps the layers. While one runs, the rest waits for the lock it holds for its whole run
   * (containerd's lease + GC lock), so a collected layer is reported missing, never half there.
   */
  async holdLayers(lease: Lease, diffIds: readonly Digest[], then?: () => Promise<void>): Promise<Digest[]> {
    await lease.add(...diffIds);
    const finish = async (): Promise<Digest[]> => {
      const missing: Digest[] = [];
      for (const d of diffIds) if (!(await this.content.has(d))) missing.push(d);
      await then?.();
      return missing;
    };
    return gcRunning(this.root) ? this.images.locked(finish) : finish();
  }

  /** Layers no cache record is needed for: those of images and of builds in flight. */
  async pinnedLayers(): Promise<Set<string>> {
    const pinned = new Set<string>(liveLeases(this.root).layers);
    const idx = await this.images.read();
    for (const id of Object.keys(idx.images)) {
      if (!isDigest(id)) continue;
      for (const d of (await this.content.readJson<ImageConfig>(id).catch(() => undefined))?.rootfs.diff_ids ?? []) pinned.add(d);
    }
    return pinned;
  }

  /** The bytes a layer holds in the store: its blob, its gzip form for push, its snapshot. */
  async layerBytes(d: Digest): Promise<number> {
    let n = await this.content.size(d).catch(() => 0);
    const gz = await readJsonFile<{ digest: Digest }>(layout.compressed(this.root, d)).catch(() => undefined);
    if (gz) n += await this.content.size(gz.digest).catch(() => 0);
    return n + dirSize(this.snapshots.dir(d));
  }

  /** Make sure every layer of an image is extracted as a snapshot. */
  async ensureSnapshots(diffIds: readonly Digest[]): Promise<void> {
    for (const d of diffIds) await this.snapshots.ensure(d, () => this.content.open(d));
  }
}
