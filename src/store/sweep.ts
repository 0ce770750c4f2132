import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type Digest, chainIds, isDigest } from '../oci/digest.js';
import { readJsonFile } from '../util/fsx.js';
import { layout } from './layout.js';

/*
 * What garbage collection removes besides blobs and snapshots: the per-layer and per-image
 * side files of what is gone, flattened chains no image uses, and (by age or count) the logs a
 * build leaves. Everything here can be made again; nothing here is a build's only copy.
 */

const KEEP_REPORTS = 100;
const KEEP_HISTORY_LINES = 2000;
const STALE_MS = 30 * 24 * 3600_000;

async function names(dir: string): Promise<string[]> {
  return fsp.readdir(dir).catch(() => [] as string[]);
}

export interface SweepInput {
  /** blobs (layers, configs, manifests) that stay */
  live: ReadonlySet<string>;
  images: readonly Digest[];
  /** the layers of each image, for the chains its flattened views belong to */
  imageLayers: readonly (readonly Digest[])[];
  /** a build is running: it may be using any flattened view */
  buildsRunning: boolean;
}

/** Side files of removed layers and images, unused flattened chains, stale views. Returns the count removed. */
export async function sweepSideFiles(root: string, s: SweepInput): Promise<number> {
  let removed = 0;
  const rm = async (p: string, recursive = false): Promise<void> => {
    await fsp.rm(p, { force: true, recursive });
    removed++;
  };
  for (const n of await names(layout.buildinfo(root))) {
    const id = `sha256:${n.replace(/\.json$/, '')}`;
    if (!s.images.includes(id as Digest)) await rm(path.join(layout.buildinfo(root), n));
  }
  for (const dir of [layout.origins(root), layout.compressed(root), layout.sizes(root), layout.lintFacts(root)]) {
    for (const n of await names(dir)) if (!s.live.has(`sha256:${n.replace(/\.json$/, '')}`)) await rm(path.join(dir, n));
  }
  for (const n of await names(layout.views(root))) {
    const f = path.join(layout.views(root), n);
    const v = await readJsonFile<{ top?: string }>(f).catch(() => undefined);
    // a view of layers of which the top one is gone cannot be used again
    if (!v?.top || !isDigest(v.top) || !s.live.has(v.top)) await rm(f);
  }
  if (!s.buildsRunning) {
    const chains = new Set<string>();
    for (const layers of s.imageLayers) for (const c of chainIds(layers)) chains.add(c.slice(7, 23));
    for (const n of await names(layout.flat(root))) if (!chains.has(n)) await rm(path.join(layout.flat(root), n), true);
  }
  return removed;
}

/** `prune`: build logs kept to a bounded size; with --all also cache mounts and stat caches. */
export async function pruneBuildState(root: string, all: boolean): Promise<number> {
  let removed = 0;
  const reports = await Promise.all(
    (await names(layout.reports(root))).map(async (n) => ({ n, t: (await fsp.stat(path.join(layout.reports(root), n)).catch(() => undefined))?.mtimeMs ?? 0 })),
  );
  reports.sort((a, b) => b.t - a.t);
  for (const r of reports.slice(all ? 0 : KEEP_REPORTS)) {
    await fsp.rm(path.join(layout.reports(root), r.n), { force: true });
    removed++;
  }
  const history = await fsp.readFile(layout.history(root), 'utf8').catch(() => '');
  const lines = history.split('\n').filter((l) => l !== '');
  if (all || lines.length > KEEP_HISTORY_LINES) {
    const kept = all ? [] : lines.slice(-KEEP_HISTORY_LINES);
    const tmp = path.join(layout.tmp(root), `history-${process.pid}`);
    await fsp.writeFile(tmp, kept.map((l) => `${l}\n`).join(''));
    await fsp.rename(tmp, layout.history(root));
    removed += lines.length - kept.length;
  }
  const now = Date.now();
  for (const n of await names(layout.stat(root))) {
    const st = await fsp.stat(path.join(layout.stat(root), n)).catch(() => undefined);
    if (all || (st && now - st.mtimeMs > STALE_MS)) {
      await fsp.rm(path.join(layout.stat(root), n), { force: true });
      removed++;
    }
  }
  if (all) {
    for (const n of await names(layout.mounts(root))) {
      await fsp.rm(path.join(layout.mounts(root), n), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}
