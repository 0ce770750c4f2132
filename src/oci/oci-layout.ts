import { DigestMismatchError, LbuildError } from '../errors.js';
import { type ArchiveEntry, type ArchiveOut, type UnpackedArchive, writeArchive } from './archive-io.js';
import { promises as fsp } from 'node:fs';
import { type Digest, fileDigest, hexOf, sha256 } from './digest.js';
import type { ArchiveFormat, ArchivedImage, ExportImage } from './formats.js';
import { gzipFile, openLayerFile, removeFiles } from './layer-file.js';
import { type Descriptor, type ImageIndex, type Manifest, MediaType } from './types.js';
import { parseManifestOrIndex } from './validate.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/** OCI image layout (image-layout.md) in a tar: `oci-layout`, `index.json`, `blobs/sha256/…`; layers gzip. */
export const ociLayout: ArchiveFormat = {
  name: 'oci',

  async write(images: readonly ExportImage[], out: ArchiveOut, tmpDir: string): Promise<void> {
    const temps: string[] = [];
    try {
      const entries: ArchiveEntry[] = [{ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }];
      const written = new Set<string>();
      const gz = new Map<Digest, { file: string; digest: Digest; size: number }>();
      const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
      for (const img of images) {
        const layers: Descriptor[] = [];
        for (const l of img.layers) {
          let c = gz.get(l.diffId);
          if (!c) {
            c = await gzipFile(l.file, tmpDir, 6, l.diffId);
            temps.push(c.file);
            gz.set(l.diffId, c);
          }
          layers.push({ mediaType: MediaType.ociLayerGzip, digest: c.digest, size: c.size });
          const name = `blobs/sha256/${hexOf(c.digest)}`;
          if (!written.has(name)) {
            written.add(name);
            entries.push({ name, file: c.file, size: c.size });
          }
        }
        const manifest: Manifest = {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: img.id, size: img.configBytes.length },
          layers,
        };
        const mbytes = Buffer.from(JSON.stringify(manifest));
        const mdigest = sha256(mbytes);
        for (const [name, data] of [
          [`blobs/sha256/${hexOf(img.id)}`, img.configBytes],
          [`blobs/sha256/${hexOf(mdigest)}`, mbytes],
        ] as const) {
          if (!written.has(name)) {
            written.add(name);
            entries.push({ name, data });
          }
        }
        const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: mdigest, size: mbytes.length };
        if (img.tags.length === 0) index.manifests.push(desc);
        for (const t of img.tags) {
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
    const visit = async (desc: Descriptor, tag: string | undefined, depth: number): Promise<void> => {
      if (depth > 8) throw new LbuildError('OCI layout: indexes nested too deep');
      const doc = parseManifestOrIndex(await verified(desc, 'manifest'), `manifest ${desc.digest}`);
      if ('index' in doc) {
        for (const m of doc.index.manifests) await visit(m, tag, depth + 1);
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
      if (tag) img.tags.push(tag);
    };
    for (const m of top.index.manifests) {
      const a = m.annotations ?? {};
      const full = a[CONTAINERD_NAME] ?? (a[REF_NAME]?.match(/[:/]/) ? a[REF_NAME] : undefined);
      await visit(m, typeof full === 'string' ? full : undefined, 0);
    }
    return out;
  },
};

