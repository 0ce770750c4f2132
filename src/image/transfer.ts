import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DigestMismatchError, LbuildError, UsageError } from '../errors.js';
import { dockerArchive } from '../oci/docker-archive.js';
import { type Digest, sha256 } from '../oci/digest.js';
import { normalizeTag } from '../oci/reference.js';
import type { ArchiveFormat, ArchivedIndex, ExportImage, ExportIndex, ExportItem } from '../oci/formats.js';
import { ociLayout } from '../oci/oci-layout.js';
import type { ImageConfig } from '../oci/types.js';
import { UnpackedArchive } from '../oci/archive-io.js';
import { parseImageConfig } from '../oci/validate.js';
import type { StagedBlob } from '../store/content.js';
import type { Store, StoredImage, StoredIndex } from '../store/store.js';
import { tempName } from '../util/fsx.js';

export const FORMATS: Record<'docker' | 'oci', ArchiveFormat> = { docker: dockerArchive, oci: ociLayout };

export async function exportImage(store: Store, img: StoredImage): Promise<ExportImage> {
  const configBytes = await store.content.readBytes(img.id);
  if (sha256(configBytes) !== img.id) throw new DigestMismatchError(`the store's copy of config ${img.id} is damaged (lbuild fsck --repair)`, img.id, sha256(configBytes));
  return {
    id: img.id,
    configBytes,
    config: img.config,
    tags: img.tags,
    layers: await Promise.all(
      img.config.rootfs.diff_ids.map(async (d) => ({ diffId: d, file: store.content.path(d), size: await store.content.size(d) })),
    ),
  };
}

/** A multi-platform image on its way out: its platform images, untagged, under the index's tags. */
export async function exportIndex(store: Store, index: StoredIndex, tags: string[] = index.tags): Promise<ExportIndex> {
  const images: ExportImage[] = [];
  for (const img of index.images) images.push({ ...(await exportImage(store, img)), tags: [] });
  return { tags, images };
}

/** `lbuild save`: images (by name or ID) into one archive of the chosen format. */
export async function saveImages(store: Store, refs: readonly string[], out: string, format: 'docker' | 'oci'): Promise<void> {
  const images: ExportItem[] = [];
  for (const r of refs) {
    const index = await store.getIndex(r);
    if (index) {
      const tag = tagOf(r);
      images.push(await exportIndex(store, index, tag && index.tags.includes(tag) ? [tag] : index.tags));
      continue;
    }
    const img = await store.getImage(r);
    const exp = await exportImage(store, img);
    // a save by tag carries that tag only; by ID, all of the image's tags (as docker save)
    const byTag = img.tags.find((t) => t === tagOf(r));
    images.push(byTag ? { ...exp, tags: [byTag] } : exp);
  }
  await FORMATS[format].write(images, out, store.tmpDir);
}

function tagOf(r: string): string | undefined {
  try {
    return normalizeTag(r);
  } catch {
    return undefined;
  }
}

/**
 * `lbuild load`: read an archive (either format), verify every digest (config names,
 * manifests, layer blobs, and each layer's uncompressed sha256 against the config's diff_ids)
 * before anything enters the store; then add all of it, or nothing.
 */
export async function loadArchive(store: Store, file: string, shown = file): Promise<StoredImage[]> {
  const st = await fsp.stat(file).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError(`${shown}: no such archive`);
  const dir = path.join(store.tmpDir, tempName('load'));
  await fsp.mkdir(dir, { recursive: true });
  const staged: StagedBlob[] = [];
  try {
    const archive = await UnpackedArchive.unpack(file, dir).catch((e: unknown) => {
      throw e instanceof LbuildError && shown !== file ? new LbuildError(e.message.split(file).join(shown)) : e;
    });
    const format = [dockerArchive, ociLayout].find((f) => f.recognizes(archive));
    if (!format) throw new LbuildError(`${shown}: neither a docker-archive (manifest.json) nor an OCI layout (index.json)`);
    const images = await format.read(archive).catch((e: unknown) => {
      throw e instanceof LbuildError ? new LbuildError(`${shown}: ${e.message}`) : e;
    });
    if (images.length === 0) throw new LbuildError(`${shown}: the archive holds no image`);
    const plan: { config: ImageConfig; raw: Buffer; tags: string[]; groups: ArchivedIndex[] }[] = [];
    for (const img of images) {
      const id = sha256(img.configBytes);
      if (img.configDigest && img.configDigest !== id) throw new LbuildError(`${shown}: config ${img.configDigest}: digest mismatch (got ${id})`);
      const config = parseImageConfig(img.configBytes, `${shown}: config ${id}`);
      const diffIds: Digest[] = config.rootfs.diff_ids;
      if (diffIds.length !== img.layers.length) throw new LbuildError(`${shown}: image ${id} lists ${diffIds.length} diff_ids but ${img.layers.length} layers`);
      for (const [i, l] of img.layers.entries()) {
        const expected = diffIds[i] as Digest;
        try {
          // a layer the store already has is still verified: the archive must be what it claims
          if (await store.content.has(expected)) await store.content.verify(await l.open(), expected, `${shown}: ${l.what}`);
          else staged.push(await store.content.stage(await l.open(), expected, `${shown}: ${l.what}`));
        } catch (e) {
          if (e instanceof LbuildError) throw e;
          throw new LbuildError(`${shown}: ${l.what} cannot be read (${(e as Error).message})`);
        }
      }
      staged.push(await store.content.stage(img.configBytes, id));
      plan.push({ config, raw: img.configBytes, tags: img.tags, groups: img.groups ?? [] });
    }
    for (const s of staged) await store.content.commit(s);
    staged.length = 0;
    const out: StoredImage[] = [];
    const members = new Map<ArchivedIndex, StoredImage[]>();
    for (const p of plan) {
      await store.ensureSnapshots(p.config.rootfs.diff_ids);
      const img = await store.commitImage(p.config, p.tags, p.raw);
      for (const g of p.groups) members.set(g, [...(members.get(g) ?? []), img]);
      if (p.groups.length === 0 || p.tags.length > 0) out.push(img);
    }
    // a multi-platform image comes back as one: an index over its platforms, under its names
    for (const [g, imgs] of members) {
      const index = await store.commitIndex(imgs, g.tags);
      out.push({ ...(imgs[0] as StoredImage), tags: index.tags });
    }
    return out;
  } finally {
    for (const s of staged) await store.content.discard(s);
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
