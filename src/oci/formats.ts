import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { ArchiveOut, UnpackedArchive } from './archive-io.js';
import type { ImageConfig } from './types.js';

/** An image on its way out of the store. Layer files are the store's uncompressed tars. */
export interface ExportImage {
  id: Digest;
  configBytes: Buffer;
  config: ImageConfig;
  tags: string[];
  layers: { diffId: Digest; file: string; size: number }[];
}

/** A multi-platform image on its way out: its platform images (untagged) under one index, which the tags name. */
export interface ExportIndex {
  tags: string[];
  images: ExportImage[];
}

export type ExportItem = ExportImage | ExportIndex;

export function isExportIndex(x: ExportItem): x is ExportIndex {
  return 'images' in x;
}

/** An image read from an archive: nothing verified yet except what `read` says it checked. */
export interface ArchivedImage {
  configBytes: Buffer;
  /** the digest the archive names for the config, if it names one */
  configDigest?: Digest;
  tags: string[];
  /** layer streams, already decompressed; their sha256 must equal the config's diff_ids */
  layers: { open(): Promise<Readable>; what: string }[];
  /** the multi-platform images (an OCI index that index.json names) this one is a platform of */
  groups?: ArchivedIndex[];
}

/** A multi-platform image in an archive: its digest and the names index.json gives it. */
export interface ArchivedIndex {
  digest: Digest;
  tags: string[];
}

/** One adapter per archive format: write a set of images, recognise and read an unpacked archive (never a host path). */
export interface ArchiveFormat {
  readonly name: 'docker' | 'oci';
  /** an index only where the format can hold one (OCI); docker-archive refuses it */
  write(images: readonly ExportItem[], out: ArchiveOut, tmpDir: string): Promise<void>;
  recognizes(archive: UnpackedArchive): boolean;
  read(archive: UnpackedArchive): Promise<ArchivedImage[]>;
}
