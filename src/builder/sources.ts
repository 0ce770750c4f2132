import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type SourcesDigest, plainHasher, sourcesDigest } from '../context/checksum.js';
import { makeMatcher } from '../context/ignore.js';
import type { CopySource, Selection } from '../context/select.js';
import { type Digest, sha256 } from '../oci/digest.js';
import type { Snapshotter } from '../snapshot/overlay.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { layout } from '../store/layout.js';

/**
 * Where a COPY --from / RUN --mount from= reads: the layers of a stage or an image. Layers are
 * immutable, so what a selection takes from them is keyed by content and remembered for good
 * (per chain of layers and selection) in `cache/views/`: a warm build mounts nothing.
 */
export interface LayerSource {
  /** `stage:<name>`, `image:<ref>` or `scratch`: the identity a miss names */
  id: string;
  what: string;
  layers: readonly Digest[];
  /** chain ID of the layers ('' for none) */
  chain: string;
}

export interface OpenedSource {
  source: CopySource;
  release(): Promise<void>;
}

export class LayerSources {
  constructor(
    private readonly root: string,
    private readonly snapshotter: Snapshotter,
  ) {}

  open(src: LayerSource): Promise<OpenedSource> {
    return this.snapshotter.view(src.layers).then((v) => ({ source: { root: v.root, keepOwner: true, what: src.what }, release: v.release }));
  }

  private file(src: LayerSource, patterns: readonly string[], sel: { exclude?: readonly string[] }): string {
    const id = sha256(JSON.stringify({ v: 2, chain: src.chain, patterns, exclude: sel.exclude ?? [] })).slice(7);
    return path.join(layout.views(this.root), `${id}.json`);
  }

  /** The digest of what `patterns` select from the layers; `files` only when it was computed now. */
  async digest(src: LayerSource, patterns: readonly string[], exclude: readonly string[]): Promise<SourcesDigest | { digest: string; files?: undefined }> {
    const f = this.file(src, patterns, { exclude });
    const sel: Selection = exclude.length ? { exclude: makeMatcher([...exclude]) } : {};
    const known = await readJsonFile<{ digest: string }>(f).catch(() => undefined);
    if (known && typeof known.digest === 'string') return { digest: known.digest };
    const opened = await this.open(src);
    try {
      const d = await sourcesDigest(opened.source, patterns, sel, plainHasher);
      await fsp.mkdir(path.dirname(f), { recursive: true });
      await writeFileAtomic(f, JSON.stringify({ digest: d.digest, top: src.layers[src.layers.length - 1] ?? null }));
      return d;
    } finally {
      await opened.release();
    }
  }
}
