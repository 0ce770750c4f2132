import { readLayerEntries } from '../analyze/layers.js';
import type { Store } from '../store/store.js';
import type { BaseFacts } from './types.js';

const DOCKER_CLEAN = 'etc/apt/apt.conf.d/docker-clean';

/** Whether the image's filesystem, its layers applied in order, ends up with `file`. */
async function hasFile(store: Store, ref: string, file: string): Promise<boolean | undefined> {
  const img = await store.getImage(ref).catch(() => undefined);
  if (!img) return undefined;
  let present = false;
  for (const d of img.config.rootfs.diff_ids) {
    for (const e of await readLayerEntries(store.content.open(d))) {
      if (e.path === file) present = e.kind !== 'whiteout' && e.kind !== 'dir';
      else if ((e.kind === 'whiteout' || e.kind === 'opaque') && file.startsWith(`${e.path}/`)) present = false;
    }
  }
  return present;
}

/** What lint can tell of the base images it finds in the store (the others stay unknown). */
export async function baseFacts(store: Store, refs: Iterable<string>): Promise<Map<string, BaseFacts>> {
  const out = new Map<string, BaseFacts>();
  for (const ref of new Set(refs)) {
    if (ref.toLowerCase() === 'scratch' || ref.includes('$')) continue;
    const clean = await hasFile(store, ref, DOCKER_CLEAN);
    if (clean !== undefined) out.set(ref, { ref, aptDockerClean: clean });
  }
  return out;
}
