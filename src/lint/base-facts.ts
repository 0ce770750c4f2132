import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { readLayerEntries } from '../analyze/layers.js';
import type { Digest } from '../oci/digest.js';
import { layout } from '../store/layout.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import type { Store } from '../store/store.js';
import type { BaseFacts } from './types.js';

const DOCKER_CLEAN = 'etc/apt/apt.conf.d/docker-clean';

/** What one layer does to a file: adds it, removes it (a whiteout of it or an opaque parent), or neither. */
type LayerEffect = 'added' | 'removed' | 'none';

async function layerEffect(store: Store, diffId: Digest, file: string): Promise<LayerEffect> {
  // layers never change: what a layer does is read from its tar once and remembered
  const memo = layout.lintFacts(store.root, diffId);
  const known = await readJsonFile<Record<string, LayerEffect>>(memo).catch(() => undefined);
  const had = known?.[file];
  if (had === 'added' || had === 'removed' || had === 'none') return had;
  // an opaque directory hides what is below it in lower layers, not the layer's own entries
  let added = false;
  let removed = false;
  for (const e of await readLayerEntries(store.content.open(diffId))) {
    if (e.path === file) {
      if (e.kind === 'whiteout') removed = true;
      else if (e.kind !== 'dir') added = true;
    } else if ((e.kind === 'whiteout' || e.kind === 'opaque') && file.startsWith(`${e.path}/`)) removed = true;
  }
  const effect: LayerEffect = added ? 'added' : removed ? 'removed' : 'none';
  // a store lint may not write to (read-only, another user's) only loses the memo
  await fsp
    .mkdir(path.dirname(memo), { recursive: true })
    .then(() => writeFileAtomic(memo, JSON.stringify({ ...known, [file]: effect })))
    .catch(() => undefined);
  return effect;
}

/** Whether the image's filesystem, its layers applied in order, ends up with `file`. */
async function hasFile(store: Store, ref: string, file: string): Promise<boolean | undefined> {
  const img = await store.getImage(ref).catch(() => undefined);
  if (!img) return undefined;
  let present = false;
  for (const d of img.config.rootfs.diff_ids) {
    const effect = await layerEffect(store, d, file);
    if (effect !== 'none') present = effect === 'added';
  }
  return present;
}

/** What lint can tell of the base images it finds in the store (the others stay unknown). */
export async function baseFacts(store: Store, refs: Iterable<string>): Promise<Map<string, BaseFacts>> {
  const out = new Map<string, BaseFacts>();
  for (const ref of new Set(refs)) {
    if (ref.toLowerCase() === 'scratch' || ref.includes('$')) continue;
    // a base lint cannot read (a layer blob gone) stays unknown: no finding is guessed from it
    const clean = await hasFile(store, ref, DOCKER_CLEAN).catch(() => undefined);
    if (clean !== undefined) out.set(ref, { ref, aptDockerClean: clean });
  }
  return out;
}
