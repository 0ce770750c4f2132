import type { Digest } from '../oci/digest.js';
import type { StoredImage } from '../store/store.js';

export interface HistoryRow {
  /** the image ID on the newest row, as docker history; null (`<missing>`) below it */
  id: string | null;
  created: string | null;
  createdBy: string;
  comment: string;
  emptyLayer: boolean;
  /** the layer's size as Docker counts it (its files: store/layer-size.ts); 0 for metadata steps */
  size: number;
  diffId: Digest | null;
}

/** Docker's size of each layer, by diff_id (layerContentSizes). */
export type LayerSizes = ReadonlyMap<Digest, number>;

/** History entries matched with their layers, newest first (docker history's order). */
export function historyRows(img: StoredImage, sizes: LayerSizes): HistoryRow[] {
  const diffIds = img.config.rootfs.diff_ids;
  const rows: HistoryRow[] = [];
  let li = 0;
  for (const h of img.config.history ?? []) {
    const empty = h.empty_layer === true;
    const diffId = empty ? null : (diffIds[li] ?? null);
    if (!empty) li++;
    rows.push({
      id: null,
      created: h.created ?? null,
      createdBy: h.created_by ?? '',
      comment: h.comment ?? '',
      emptyLayer: empty,
      size: diffId ? (sizes.get(diffId) ?? 0) : 0,
      diffId,
    });
  }
  rows.reverse();
  if (rows[0]) rows[0].id = img.id;
  return rows;
}

/** What `docker images` shows: the sum of the layers' sizes as Docker counts them. */
export function imageSize(img: StoredImage, sizes: LayerSizes): number {
  return img.config.rootfs.diff_ids.reduce((n, d) => n + (sizes.get(d) ?? 0), 0);
}

/** `lbuild inspect`: docker image inspect's shape. */
export function inspectView(img: StoredImage, sizes: LayerSizes): Record<string, unknown> {
  const c = img.config.config;
  return {
    Id: img.id,
    RepoTags: img.tags,
    RepoDigests: img.repoDigests,
    Parent: '',
    Comment: img.config.history?.[img.config.history.length - 1]?.comment ?? '',
    Created: img.config.created ?? '',
    Author: img.config.author ?? '',
    Architecture: img.config.architecture,
    ...(img.config.variant ? { Variant: img.config.variant } : {}),
    Os: img.config.os,
    Size: imageSize(img, sizes),
    Config: {
      User: c.User ?? '',
      ExposedPorts: c.ExposedPorts ?? null,
      Env: c.Env ?? null,
      Cmd: c.Cmd ?? null,
      Healthcheck: c.Healthcheck ?? null,
      Volumes: c.Volumes ?? null,
      WorkingDir: c.WorkingDir ?? '',
      Entrypoint: c.Entrypoint ?? null,
      OnBuild: c.OnBuild ?? null,
      Labels: c.Labels ?? null,
      StopSignal: c.StopSignal ?? '',
      Shell: c.Shell ?? null,
    },
    RootFS: { Type: 'layers', Layers: img.config.rootfs.diff_ids },
    History: img.config.history ?? [],
    Metadata: { ManifestDigest: img.manifestDigest, Added: img.added },
  };
}
