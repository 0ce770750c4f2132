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

function under(p: string, dir: string): boolean {
  return dir === '' || p === dir || p.startsWith(`${dir}/`);
}

/**
 * Apply the layers in order and record every byte a later layer hides: a file deleted by a
 * whiteout or an opaque directory, or overwritten by a later copy of the same path. Those bytes
 * still ship in the lower layer.
 */
export function analyzeWaste(layers: readonly LayerEntry[][]): WasteAnalysis {
  const live = new Map<string, Live>();
  const files: WastedFile[] = [];
  const occurrences = new Map<string, number[]>();
  const layerSizes: number[] = [];
  const note = (p: string, size: number): void => {
    const list = occurrences.get(p) ?? [];
    list.push(size);
    occurrences.set(p, list);
  };
  layers.forEach((entries, li) => {
    let layerSize = 0;
    // opaque markers apply first, whatever their position in the tar (OCI layer spec)
    const removeUnder = (dir: string, how: 'deleted', exceptLayer: number): number => {
      let removed = 0;
      for (const [p, l] of [...live]) {
        if (l.layer !== exceptLayer && under(p, dir) && (p !== dir || dir === '')) {
          if (l.size > 0) files.push({ path: p, bytes: l.size, addedIn: l.layer, removedIn: li, how });
          removed += l.size;
          live.delete(p);
        }
      }
      return removed;
    };
    for (const e of entries) if (e.kind === 'opaque') note(e.path, removeUnder(e.path, 'deleted', li));
    for (const e of entries) {
      if (e.kind === 'opaque') continue;
      if (e.kind === 'whiteout') {
        let removed = 0;
        const l = live.get(e.path);
        if (l) {
          if (l.size > 0) files.push({ path: e.path, bytes: l.size, addedIn: l.layer, removedIn: li, how: 'deleted' });
          removed += l.size;
          live.delete(e.path);
        }
        removed += removeUnder(`${e.path}`, 'deleted', -1);
        note(e.path, removed);
        continue;
      }
      layerSize += e.size;
      note(e.path, e.size);
      const prev = live.get(e.path);
      if (prev && prev.size > 0 && e.kind !== 'dir') files.push({ path: e.path, bytes: prev.size, addedIn: prev.layer, removedIn: li, how: 'overwritten' });
      // a file replacing a directory hides everything below it
      if (e.kind !== 'dir') removeUnder(e.path, 'deleted', li);
      live.set(e.path, { layer: li, size: e.size });
    }
    layerSizes.push(layerSize);
  });
  const imageSize = layerSizes.reduce((a, b) => a + b, 0);
  const wastedBytes = files.reduce((a, f) => a + f.bytes, 0);
  let minSum = 0;
  let allSum = 0;
  for (const sizes of occurrences.values()) {
    minSum += Math.min(...sizes);
    allSum += sizes.reduce((a, b) => a + b, 0);
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
