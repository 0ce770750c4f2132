import type { LayerEntry } from './layers.js';

export interface StepRef {
  line: number | null;
  instruction: string;
}

export interface WastedFile {
  path: string;
  bytes: number;
  /** layer index (in the image) that added the hidden bytes, and the one that hid them */
  addedIn: number;
  removedIn: number;
  how: 'deleted' | 'overwritten';
}

export interface WasteAnalysis {
  /** sum of file sizes over all layers (what the image ships, uncompressed) */
  imageSize: number;
  wastedBytes: number;
  /** dive's efficiency: per path the smallest occurrence, summed, over the sum of all occurrences */
  efficiency: number;
  /** size of every layer but the first (dive's "user" layers) */
  userSize: number;
  wastedUserShare: number;
  layerSizes: number[];
  files: WastedFile[];
}

interface Live {
  layer: number;
  size: number;
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/**
 * The paths alive so far, with a tree of them beside the map: removing a directory's contents
 * walks only that directory's subtree, so the analysis is linear in the entries (scanning every
 * live path for each entry made two 20,000-file layers take 49 s).
 */
class LiveTree {
  private readonly live = new Map<string, Live>();
  /** path → the paths directly below it that are alive or have something alive below them */
  private readonly kids = new Map<string, Set<string>>();

  get(p: string): Live | undefined {
    return this.live.get(p);
  }

  set(p: string, v: Live): void {
    this.live.set(p, v);
    // link the path up to the root, stopping where an ancestor is linked already
    for (let c = p; c !== ''; c = parentOf(c)) {
      const par = parentOf(c);
      let set = this.kids.get(par);
      if (!set) this.kids.set(par, (set = new Set()));
      if (set.has(c)) break;
      set.add(c);
    }
  }

  /** Forget one path (what is below it stays). */
  delete(p: string): void {
    this.live.delete(p);
    this.unlinkIfEmpty(p);
  }

  /**
   * Remove every live path strictly below `dir` (everything for the root) except those added in
   * `keepLayer`; `each` sees each one removed.
   */
  removeBelow(dir: string, keepLayer: number, each: (p: string, l: Live) => void): void {
    const walk = (node: string): void => {
      const set = this.kids.get(node);
      if (!set) return;
      for (const c of [...set]) {
        walk(c);
        const l = this.live.get(c);
        if (l && l.layer !== keepLayer) {
          each(c, l);
          this.live.delete(c);
        }
        this.unlinkIfEmpty(c);
      }
    };
    walk(dir);
    if (dir !== '') this.unlinkIfEmpty(dir);
  }

  /** Drop a path from the tree once nothing alive is at or below it. */
  private unlinkIfEmpty(p: string): void {
    for (let c = p; c !== ''; c = parentOf(c)) {
      if (this.live.has(c) || (this.kids.get(c)?.size ?? 0) > 0) return;
      this.kids.delete(c);
      const par = this.kids.get(parentOf(c));
      par?.delete(c);
    }
  }
}

/**
 * Apply the layers in order and record every byte a later layer hides: a file deleted by a
 * whiteout or an opaque directory, or overwritten by a later copy of the same path. Those bytes
 * still ship in the lower layer. Linear in the number of entries.
 */
export function analyzeWaste(layers: readonly LayerEntry[][]): WasteAnalysis {
  const live = new LiveTree();
  const files: WastedFile[] = [];
  /** per path: the smallest and the sum of its sizes over the layers that hold it */
  const occurrences = new Map<string, { min: number; sum: number }>();
  const layerSizes: number[] = [];
  const note = (p: string, size: number): void => {
    const o = occurrences.get(p);
    if (o) {
      o.min = Math.min(o.min, size);
      o.sum += size;
    } else occurrences.set(p, { min: size, sum: size });
  };
  layers.forEach((entries, li) => {
    let layerSize = 0;
    const hide = (how: 'deleted' | 'overwritten') => (p: string, l: Live): number => {
      if (l.size > 0) files.push({ path: p, bytes: l.size, addedIn: l.layer, removedIn: li, how });
      return l.size;
    };
    /** delete what is below dir (kept: this layer's own entries), returning the bytes */
    const removeUnder = (dir: string, keepLayer: number): number => {
      let removed = 0;
      live.removeBelow(dir, keepLayer, (p, l) => {
        removed += hide('deleted')(p, l);
      });
      return removed;
    };
    // opaque markers apply first, whatever their position in the tar (OCI layer spec)
    for (const e of entries) if (e.kind === 'opaque') note(e.path, removeUnder(e.path, li));
    for (const e of entries) {
      if (e.kind === 'opaque') continue;
      if (e.kind === 'whiteout') {
        let removed = 0;
        const l = live.get(e.path);
        if (l) {
          removed += hide('deleted')(e.path, l);
          live.delete(e.path);
        }
        removed += removeUnder(e.path, -1);
        note(e.path, removed);
        continue;
      }
      layerSize += e.size;
      note(e.path, e.size);
      const prev = live.get(e.path);
      if (prev && e.kind !== 'dir') hide('overwritten')(e.path, prev);
      // a file replacing a directory hides everything below it
      if (e.kind !== 'dir') removeUnder(e.path, li);
      live.set(e.path, { layer: li, size: e.size });
    }
    layerSizes.push(layerSize);
  });
  const imageSize = layerSizes.reduce((a, b) => a + b, 0);
  const wastedBytes = files.reduce((a, f) => a + f.bytes, 0);
  let minSum = 0;
  let allSum = 0;
  for (const o of occurrences.values()) {
    minSum += o.min;
    allSum += o.sum;
  }
  const userSize = layerSizes.slice(1).reduce((a, b) => a + b, 0);
  return {
    imageSize,
    wastedBytes,
    efficiency: allSum === 0 ? 1 : minSum / allSum,
    userSize,
    wastedUserShare: userSize === 0 ? 0 : wastedBytes / userSize,
    layerSizes,
    files: files.sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : 1)),
  };
}

/** One sentence on how to stop shipping the bytes. */
export function fixFor(f: WastedFile, added: StepRef, sameStage: boolean): string {
  const addKind = added.instruction.split(/\s+/)[0]?.toUpperCase();
  if (f.how === 'overwritten') return `write /${f.path} once: later layers replace it, but the first copy still ships`;
  if (addKind === 'COPY' || addKind === 'ADD') return `do not copy /${f.path} into the image (.dockerignore or a narrower COPY), or use a multi-stage build`;
  if (addKind === 'RUN' && sameStage) return `create and delete /${f.path} in the same RUN (or use a multi-stage build)`;
  return `use a multi-stage build and copy only what the final image needs`;
}
