import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { ContentStore } from '../store/content.js';
import { type PackOptions, packTree } from './tarwriter.js';

export interface LayerInfo {
  diffId: Digest;
  size: number;
}

/** Pack a directory into a layer tar stored in the content store; its sha256 is the diff_id. */
export async function storeTreeAsLayer(content: ContentStore, dir: string, opts: PackOptions = {}): Promise<LayerInfo> {
  const pack = packTree(dir, opts) as unknown as Readable;
  const { digest, size } = await content.ingest(pack);
  return { diffId: digest, size };
}
