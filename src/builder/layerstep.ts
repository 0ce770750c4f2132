import { lstatSync } from 'node:fs';
import * as path from 'node:path';
import { removeMountStubs, stageUpper, upperPackOptions } from '../diff/upper.js';
import { FILE_INDEX, FileIndexWriter } from '../diff/file-index.js';
import { loadHasher } from '../context/checksum.js';
import type { Lease } from '../store/leases.js';
import { readTreeXattrs, writeXattrs } from '../util/xattr.js';
import type { LayerInfo } from '../diff/layer.js';
import { recordContentSize } from '../store/layer-size.js';
import type { Digest } from '../oci/digest.js';
import { type ActiveSnapshot, Snapshotter } from '../snapshot/overlay.js';
import { resolveInRoot } from '../snapshot/rootpath.js';
import type { Store } from '../store/store.js';
import { traced } from '../util/trace.js';
import { type ReusedFiles, linkReused } from './reuse.js';

/**
 * Mount points for files (/etc/hosts, /etc/resolv.conf) that do not exist in the root yet,
 * relative to the root: the runtime creates empty files there, which are removed from the
 * upper dir after the step. Directories it creates as mount points (/proc, /dev, /sys, /etc in
 * an empty root) stay, as BuildKit leaves them.
 */
export function missingMountPoints(root: string, fileDestinations: readonly string[]): string[] {
  const out: string[] = [];
  for (const dest of fileDestinations) {
    const abs = resolveInRoot(root, dest, false);
    try {
      lstatSync(abs);
    } catch {
      out.push(path.relative(root, abs));
    }
  }
  return out;
}

/**
 * Run `work` over a fresh overlay on `parents`, then turn the upper dir into a layer: unmount,
 * drop mount stubs, diff into a tar in the content store, keep the upper dir as the layer's
 * snapshot. The mount and temp dir are released whatever happens.
 */
export async function withLayer(
  store: Store,
  snapshotter: Snapshotter,
  parents: readonly Digest[],
  mtimeClamp: number | undefined,
  work: (snap: ActiveSnapshot) => Promise<{ stubs: string[]; reused?: ReusedFiles } | void>,
  /** the build's lease: the new layer is on it before anyone can see the layer */
  lease: Lease,
  /** write the layer's file index (a COPY's, for the next build's incremental copy) */
  indexFiles = false,
): Promise<LayerInfo> {
  const snap = await traced('mount', () => snapshotter.prepare(parents));
  try {
    let stubs: string[] = [];
    let reused: ReusedFiles | undefined;
    try {
      const r = await traced('work', () => work(snap));
      stubs = r?.stubs ?? [];
      reused = r?.reused;
    } finally {
      await traced('unmount', () => snap.release());
    }
    if (reused) {
      const files = reused;
      await traced('link', async () => linkReused(snap.upper, files));
    }
    // one walk of the upper dir for extended attributes serves stub removal and the diff; a
    // linked file is not looked at: its index says it has none (and a previous layer's
    // attributes that do not ship were stripped before it was packed)
    const attrs = await traced('opaque', () => readTreeXattrs(snap.upper, reused?.files));
    await removeMountStubs(snap.upper, stubs, snap.lowers, attrs.opaque);
    // what does not ship is not kept in the snapshot either: lbuild run shows what the image has
    await writeXattrs(snap.upper, [...attrs.unshipped].flatMap(([rel, names]) => names.map((n): [string, string, null] => [rel, n, null])), store.tmpDir);
    const counter = { contentBytes: 0 };
    // a COPY's layer gets the index its next build takes unchanged files by (reuse.ts)
    const index = indexFiles ? new FileIndexWriter(path.join(snap.dir, FILE_INDEX), await loadHasher()) : undefined;
    const staged = await traced('diff', async () => {
      try {
        const linked = reused ? { reuse: { blob: reused.prev.blob, index: reused.prev.index, linked: reused.files } } : {};
        return await stageUpper(store.content, snap.upper, { ...upperPackOptions(attrs.opaque, mtimeClamp, attrs.shipped), counter, ...(index ? { index } : {}), ...linked });
      } finally {
        index?.close();
      }
    });
    const layer = { diffId: staged.digest, size: staged.size };
    try {
      // leased, then made visible (blob and snapshot), under the lock a collection holds: a prune
      // running now can neither take the new layer nor an old blob of the same digest under it
      await store.holdLayers(lease, [layer.diffId], async () => {
        await store.content.commit(staged);
        await traced('adopt', () => snapshotter.commit(snap, layer.diffId));
      });
      await recordContentSize(store, layer.diffId, counter.contentBytes);
    } finally {
      await store.content.discard(staged);
    }
    return layer;
  } finally {
    await snapshotter.discard(snap);
  }
}
