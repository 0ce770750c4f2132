import { UsageError } from '../errors.js';
import type { StoredImage } from '../store/store.js';
import type { BuildInfo } from '../store/buildinfo.js';
import { humanSize } from '../util/fsx.js';
import type { LayerEntry } from './layers.js';
import { type StepRef, analyzeWaste, fixFor } from './waste.js';

export interface AnalyzeResult {
  image: string;
  imageSize: number;
  wastedBytes: number;
  efficiency: number;
  wastedUserShare: number;
  layers: { index: number; size: number; step: StepRef }[];
  files: { path: string; bytes: number; how: 'deleted' | 'overwritten'; addedBy: StepRef; removedBy: StepRef; fix: string }[];
}

/** The step that made layer i: from the build info when lbuild built it, else the history text. */
function stepsOf(img: StoredImage, info: BuildInfo | undefined): (StepRef & { stage?: string })[] {
  const hist = (img.config.history ?? []).filter((h) => h.empty_layer !== true);
  return img.config.rootfs.diff_ids.map((_, i) => {
    const b = info?.layers[i];
    if (b) return { line: b.line, instruction: b.instruction, stage: b.stage };
    const h = hist[i];
    return { line: null, instruction: (h?.created_by || h?.comment || '(base layer)').replace(/ # (lbuild|buildkit)$/, '') };
  });
}

export function analyzeLayers(img: StoredImage, layers: LayerEntry[][], info: BuildInfo | undefined): AnalyzeResult {
  const a = analyzeWaste(layers);
  const steps = stepsOf(img, info);
  const ref = (i: number): StepRef => {
    const s = steps[i];
    return { line: s?.line ?? null, instruction: s?.instruction ?? '' };
  };
  return {
    image: img.tags[0] ?? img.id,
    imageSize: a.imageSize,
    wastedBytes: a.wastedBytes,
    efficiency: Math.round(a.efficiency * 10000) / 10000,
    wastedUserShare: Math.round(a.wastedUserShare * 10000) / 10000,
    layers: a.layerSizes.map((size, index) => ({ index, size, step: ref(index) })),
    files: a.files.map((f) => ({
      path: `/${f.path}`,
      bytes: f.bytes,
      how: f.how,
      addedBy: ref(f.addedIn),
      removedBy: ref(f.removedIn),
      fix: fixFor(f, ref(f.addedIn), steps[f.addedIn]?.stage !== undefined && steps[f.addedIn]?.stage === steps[f.removedIn]?.stage),
    })),
  };
}

function at(s: StepRef): string {
  return s.line !== null ? `line ${s.line}: ${s.instruction}` : s.instruction;
}

export function analyzeText(r: AnalyzeResult, limit = 20): string {
  const out = [
    `Image: ${r.image}`,
    `Total size: ${humanSize(r.imageSize)}   Wasted: ${humanSize(r.wastedBytes)}   Efficiency: ${(r.efficiency * 100).toFixed(1)}%   Wasted share of non-base layers: ${(r.wastedUserShare * 100).toFixed(1)}%`,
    '',
    'Layers:',
    ...r.layers.map((l) => `  ${String(l.index).padStart(3)}  ${humanSize(l.size).padStart(8)}  ${at(l.step)}`),
  ];
  if (r.files.length === 0) out.push('', 'No wasted space: no layer hides bytes of a lower one.');
  else {
    out.push('', `Wasted space (${r.files.length} path(s), largest first):`);
    for (const f of r.files.slice(0, limit)) {
      out.push(`  ${humanSize(f.bytes).padStart(8)}  ${f.path}  ${f.how} — added by ${at(f.addedBy)}; ${f.how} by ${at(f.removedBy)}`);
      out.push(`            fix: ${f.fix}`);
    }
    if (r.files.length > limit) out.push(`  … ${r.files.length - limit} more (--format json lists all)`);
  }
  return `${out.join('\n')}\n`;
}

/** `20MB`, `1GiB`, `512k`, `1000` → bytes (decimal and binary units, as dive's config). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$/i.exec(s);
  if (!m) throw new UsageError(`invalid size "${s}" (examples: 20MB, 1GiB, 512k)`);
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  const base = m[3] ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** pow);
}

export interface CiLimits {
  lowestEfficiency?: number;
  highestWastedBytes?: number;
  highestUserWastedPercent?: number;
}

/** The limits a result crosses, one sentence each (empty: the image passes). */
export function ciFailures(r: AnalyzeResult, l: CiLimits): string[] {
  const out: string[] = [];
  if (l.lowestEfficiency !== undefined && r.efficiency < l.lowestEfficiency) out.push(`efficiency ${(r.efficiency * 100).toFixed(1)}% is below the lowest allowed ${(l.lowestEfficiency * 100).toFixed(1)}%`);
  if (l.highestWastedBytes !== undefined && r.wastedBytes > l.highestWastedBytes) out.push(`wasted ${humanSize(r.wastedBytes)} is over the highest allowed ${humanSize(l.highestWastedBytes)}`);
  if (l.highestUserWastedPercent !== undefined && r.wastedUserShare > l.highestUserWastedPercent) out.push(`wasted share of non-base layers ${(r.wastedUserShare * 100).toFixed(1)}% is over the highest allowed ${(l.highestUserWastedPercent * 100).toFixed(1)}%`);
  return out;
}
