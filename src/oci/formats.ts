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

/** An image read from an archive: nothing verified yet except what `read` says it checked. */
export interface ArchivedImage {
  configBytes: Buffer;
  /** the digest the archive names for the config, if it names one */
  configDigest?: Digest;
  tags: string[];
  /** layer streams, already decompressed; their sha256 must equal the config's diff_ids */
  layers: { open(): Promise<Readable>; what: string }[];
}

/** One adapter per archive format: write a set of images, recognise and read an unpacked archive (never a host path). */
export interface ArchiveFormat {
  readonly name: 'docker' | 'oci';
  write(images: readonly ExportImage[], out: ArchiveOut, tmpDir: string): Promise<void>;
  recognizes(archive: UnpackedArchive): boolean;
  read(archive: UnpackedArchive): Promise<ArchivedImage[]>;
}
