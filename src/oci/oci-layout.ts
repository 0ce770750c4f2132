import { DigestMismatchError, LbuildError } from '../errors.js';
import { type ArchiveEntry, type ArchiveOut, type UnpackedArchive, writeArchive } from './archive-io.js';
import { promises as fsp } from 'node:fs';
import { type Digest, fileDigest, hexOf, sha256 } from './digest.js';
import { type ArchiveFormat, type ArchivedImage, type ArchivedIndex, type ExportImage, type ExportItem, isExportIndex } from './formats.js';
import { gzipFile, openLayerFile, removeFiles } from './layer-file.js';
import { type Descriptor, type ImageIndex, type Manifest, MediaType } from './types.js';
import { parseManifestOrIndex } from './validate.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/** OCI image layout (image-layout.md) in a tar: `oci-layout`, `index.json`, `blobs/sha256/…`; layers gzip. */
export const ociLayout: ArchiveFormat = {
  name: 'oci',

  async write(items: readonly ExportItem[], out: ArchiveOut, tmpDir: string): Promise<void> {
    const temps: string[] = [];
    try {
      const entries: ArchiveEntry[] = [{ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }];
      const written = new Set<string>();
      const gz = new Map<Digest, { file: string; digest: Digest; size: number }>();
      const blob = (name: string, entry: () => ArchiveEntry): void => {
        if (written.has(name)) return;
        written.add(name);
        entries.push(entry());
      };
      /** an image's blobs into the layout; its manifest's descriptor */
      const addImage = async (img: ExportImage): Promise<Descriptor> => {
        const layers: Descriptor[] = [];
        for (const l of img.layers) {
          let c = gz.get(l.diffId);
          if (!c) {
            c = await gzipFile(l.file, tmpDir, 6, l.diffId);
            temps.push(c.file);
            gz.set(l.diffId, c);
          }
          layers.push({ mediaType: MediaType.ociLayerGzip, digest: c.digest, size: c.size });
          const done = c;
          blob(`blobs/sha256/${hexOf(c.digest)}`, () => ({ name: `blobs/sha256/${hexOf(done.digest)}`, file: done.file, size: done.size }));
        }
        const manifest: Manifest = {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: img.id, size: img.configBytes.length },
          layers,
        };
        const mbytes = Buffer.from(JSON.stringify(manifest));
        const mdigest = sha256(mbytes);
        blob(`blobs/sha256/${hexOf(img.id)}`, () => ({ name: `blobs/sha256/${hexOf(img.id)}`, data: img.configBytes }));
        blob(`blobs/sha256/${hexOf(mdigest)}`, () => ({ name: `blobs/sha256/${hexOf(mdigest)}`, data: mbytes }));
        return { mediaType: MediaType.ociManifest, digest: mdigest, size: mbytes.length };
      };
      const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
      for (const item of items) {
        let desc: Descriptor;
        if (isExportIndex(item)) {
          // a multi-platform image: an index blob over the platform manifests, which index.json names
          const sub: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
          for (const img of item.images) {
            const d = await addImage(img);
            sub.manifests.push({ ...d, platform: { architecture: img.config.architecture, os: img.config.os, ...(img.config.variant ? { variant: img.config.variant } : {}) } });
          }
          const ibytes = Buffer.from(JSON.stringify(sub));
          const idigest = sha256(ibytes);
          blob(`blobs/sha256/${hexOf(idigest)}`, () => ({ name: `blobs/sha256/${hexOf(idigest)}`, data: ibytes }));
          desc = { mediaType: MediaType.ociIndex, digest: idigest, size: ibytes.length };
        } else desc = await addImage(item);
        if (item.tags.length === 0) index.manifests.push(desc);
        for (const t of item.tags) {
          index.manifests.push({ ...desc, annotations: { [CONTAINERD_NAME]: t, [REF_NAME]: t.slice(t.lastIndexOf(':') + 1) } });
        }
      }
      entries.push({ name: 'index.json', data: Buffer.from(JSON.stringify(index)) });
      await writeArchive(out, entries);
    } finally {
      await removeFiles(temps);
    }
  },

  recognizes(archive: UnpackedArchive): boolean {
    return archive.has('index.json') && archive.has('oci-layout');
  },

  async read(archive: UnpackedArchive): Promise<ArchivedImage[]> {
    // descriptors come from parseManifestOrIndex: their digests are checked already
    const blobPath = (d: Digest): string | undefined => archive.file(`blobs/sha256/${hexOf(d)}`);
    const verified = async (desc: Descriptor, what: string): Promise<Buffer> => {
      const f = blobPath(desc.digest);
      if (f === undefined) throw new LbuildError(`OCI layout lacks ${what} ${desc.digest}`);
      const bytes = await fsp.readFile(f);
      const got = sha256(bytes);
      if (got !== desc.digest) throw new DigestMismatchError(what, desc.digest, got);
      return bytes;
    };
    const indexBytes = await archive.read('index.json');
    if (!indexBytes) throw new LbuildError('OCI layout lacks index.json');
    const top = parseManifestOrIndex(indexBytes, 'index.json of the OCI layout');
    if (!('index' in top)) throw new LbuildError('index.json of the OCI layout is not an index');
    const out: ArchivedImage[] = [];
    const byManifest = new Map<string, ArchivedImage>();
    const groups = new Map<string, ArchivedIndex>();
    /** `group`: the multi-platform image (an index named by index.json) being read, whose platforms take no tag of their own */
    const visit = async (desc: Descriptor, tag: string | undefined, depth: number, group: ArchivedIndex | undefined): Promise<void> => {
      if (depth > 8) throw new LbuildError('OCI layout: indexes nested too deep');
      const doc = parseManifestOrIndex(await verified(desc, 'manifest'), `manifest ${desc.digest}`);
      if ('index' in doc) {
        let g = group;
        if (!g && depth === 0) {
          g = groups.get(desc.digest) ?? { digest: desc.digest, tags: [] };
          groups.set(desc.digest, g);
          if (tag && !g.tags.includes(tag)) g.tags.push(tag);
        }
        for (const m of doc.index.manifests) await visit(m, g ? undefined : tag, depth + 1, g);
        return;
      }
      let img = byManifest.get(desc.digest);
      if (!img) {
        const configBytes = await verified(doc.manifest.config, 'config');
        const layers = doc.manifest.layers.map((l) => ({
          what: `layer ${l.digest}`,
          open: async () => {
            const file = blobPath(l.digest);
            if (file === undefined) throw new LbuildError(`OCI layout lacks layer ${l.digest}`);
            const got = await fileDigest(file);
            if (got !== l.digest) throw new DigestMismatchError(`layer ${l.digest}`, l.digest, got);
            return openLayerFile(file);
          },
        }));
        img = { configBytes, configDigest: doc.manifest.config.digest, tags: [], layers };
        byManifest.set(desc.digest, img);
        out.push(img);
      }
      if (group && !(img.groups ?? []).includes(group)) img.groups = [...(img.groups ?? []), group];
      if (tag) img.tags.push(tag);
    };
    for (const m of top.index.manifests) {
      const a = m.annotations ?? {};
      const full = a[CONTAINERD_NAME] ?? (a[REF_NAME]?.match(/[:/]/) ? a[REF_NAME] : undefined);
      await visit(m, typeof full === 'string' ? full : undefined, 0, undefined);
    }
    return out;
  },
};

