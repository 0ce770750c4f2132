import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Digest } from '../oci/digest.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { tarEntries } from '../util/tar-read.js';
import { layout } from './layout.js';
import type { Store } from './store.js';

/*
 * A layer's size as Docker counts it (`docker images`, `docker history`): what its files take once
 * unpacked, i.e. the sum of the sizes of everything but directories, a symlink counting its
 * target's length and a hard link nothing (moby's directory.Size over the layer's diff dir). Tar
 * bytes (headers, padding to 512, the end blocks) would make an 18-byte COPY 2.5 kB. Computed once
 * per layer from its tar and remembered in cache/sizes/.
 */

/** Docker's size of one layer tar. */
export async function tarContentSize(file: string): Promise<number> {
  let n = 0;
  for await (const e of tarEntries(createReadStream(file))) {
    const h = e.header;
    if (h.type === 'file' || h.type === 'contiguous-file') n += h.size ?? 0;
    else if (h.type === 'symlink') n += Buffer.byteLength(h.linkname ?? '');
    e.resume();
  }
  return n;
}

/** Remember a size counted while the layer was written (tarwriter's counter). */
export async function recordContentSize(store: Store, diffId: Digest, size: number): Promise<void> {
  const file = layout.sizes(store.root, diffId);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify({ size }));
}

/** Docker's sizes of the given layers (cached per layer). */
export async function layerContentSizes(store: Store, diffIds: readonly Digest[]): Promise<Map<Digest, number>> {
  const out = new Map<Digest, number>();
  for (const d of diffIds) {
    if (out.has(d)) continue;
    const file = layout.sizes(store.root, d);
    const known = await readJsonFile<{ size?: unknown }>(file).catch(() => undefined);
    if (typeof known?.size === 'number' && Number.isSafeInteger(known.size) && known.size >= 0) {
      out.set(d, known.size);
      continue;
    }
    const size = await tarContentSize(store.content.path(d));
    await recordContentSize(store, d, size);
    out.set(d, size);
  }
  return out;
}
