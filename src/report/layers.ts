import { readLayerEntries } from '../analyze/layers.js';
import { analyzeWaste } from '../analyze/waste.js';
import { historyRows } from '../image/views.js';
import { loadBuildInfo } from '../store/buildinfo.js';
import { layerContentSizes } from '../store/layer-size.js';
import type { Store, StoredImage } from '../store/store.js';
import type { LayerRow } from './html.js';

/** The image's layers, bottom first, with history sizes and the bytes later layers hide. */
export async function layerRows(store: Store, img: StoredImage): Promise<LayerRow[]> {
  const entries = [];
  for (const d of img.config.rootfs.diff_ids) entries.push(await readLayerEntries(store.content.open(d)));
  const waste = analyzeWaste(entries);
  const info = await loadBuildInfo(store.root, img.id);
  const layerHistory = historyRows(img, await layerContentSizes(store, img.config.rootfs.diff_ids))
    .filter((r) => !r.emptyLayer)
    .reverse();
  return img.config.rootfs.diff_ids.map((d, i) => {
    const h = layerHistory[i];
    const b = info?.layers[i];
    return {
      index: i,
      diffId: d,
      size: h?.size ?? 0,
      wastedBytes: waste.files.filter((f) => f.addedIn === i).reduce((n, f) => n + f.bytes, 0),
      line: b?.line ?? null,
      instruction: b?.instruction ?? (h?.createdBy || h?.comment || '(base layer)').replace(/ # lbuild$/, ''),
    };
  });
}
