import type { CiLimits } from './dive-ci.js';
import type { StoredImage } from '../store/store.js';
import type { BuildInfo } from '../store/buildinfo.js';
import { humanSize } from '../util/fsx.js';
import type { LayerEntry } from './layers.js';
import { type Cause, type LayerStep, groupCauses, short } from './causes.js';
import { type StepRef, analyzeWaste, fixFor } from './waste.js';

export interface AnalyzeResult {
  image: string;
  imageSize: number;
  wastedBytes: number;
  efficiency: number;
  /** wasted bytes of files over the size of the non-base layers; files that came with the base are left out */
  wastedUserShare: number;
  /** how many leading layers came with the base image */
  baseLayers: number;
  /** wasted bytes of files that came with the base image (a package upgrade replacing them) */
  baseWastedBytes: number;
  layers: { index: number; size: number; step: StepRef }[];
  causes: Cause[];
  files: { path: string; bytes: number; how: 'deleted' | 'overwritten'; addedBy: StepRef; removedBy: StepRef; fix: string }[];
}

/** The step that made layer i: from the build info when lbuild built it, else the history text. */
function stepsOf(img: StoredImage, info: BuildInfo | undefined): LayerStep[] {
  const hist = (img.config.history ?? []).filter((h) => h.empty_layer !== true);
  return img.config.rootfs.diff_ids.map((_, i) => {
    const b = info?.layers[i];
    if (b) return { line: b.line, instruction: b.instruction, stage: b.stage };
    const h = hist[i];
    return { line: null, instruction: (h?.created_by || h?.comment || '(base layer)').replace(/ # (lbuild|buildkit)$/, '') };
  });
}

/**
 * The base image's layers: those lbuild's build info has no step for (before the first it has);
 * without build info, dive's rule: the first layer.
 */
function baseLayerCount(info: BuildInfo | undefined, layers: number): number {
  if (!info) return Math.min(1, layers);
  const first = info.layers.findIndex((l) => l !== null);
  return first < 0 ? layers : first;
}

export function analyzeLayers(img: StoredImage, layers: LayerEntry[][], info: BuildInfo | undefined, name = img.tags[0] ?? img.id): AnalyzeResult {
  const a = analyzeWaste(layers);
  const steps = stepsOf(img, info);
  const baseLayers = baseLayerCount(info, layers.length);
  const baseWastedBytes = a.files.filter((f) => f.addedIn < baseLayers).reduce((n, f) => n + f.bytes, 0);
  const userSize = a.layerSizes.slice(baseLayers).reduce((n, b) => n + b, 0);
  const ref = (i: number): StepRef => {
    const s = steps[i];
    return { line: s?.line ?? null, instruction: s?.instruction ?? '' };
  };
  return {
    image: name,
    imageSize: a.imageSize,
    wastedBytes: a.wastedBytes,
    efficiency: Math.round(a.efficiency * 10000) / 10000,
    wastedUserShare: userSize === 0 ? 0 : Math.round(((a.wastedBytes - baseWastedBytes) / userSize) * 10000) / 10000,
    baseLayers,
    baseWastedBytes,
    layers: a.layerSizes.map((size, index) => ({ index, size, step: ref(index) })),
    causes: groupCauses(a.files, steps, baseLayers),
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

function at(s: StepRef, max = 72): string {
  return s.line !== null ? `line ${s.line}: ${short(s.instruction, max)}` : short(s.instruction, max);
}

/** The report: totals, layers, the waste by cause; every wasted file only with `files`. */
export function analyzeText(r: AnalyzeResult, opts: { files?: boolean } = {}): string {
  const baseNote = r.baseWastedBytes > 0 ? ` (${humanSize(r.baseWastedBytes)} of it from the base image)` : '';
  const out = [
    `Image: ${r.image}`,
    `Total size: ${humanSize(r.imageSize)}   Wasted: ${humanSize(r.wastedBytes)}${baseNote}   Efficiency: ${(r.efficiency * 100).toFixed(1)}%   Wasted share of non-base layers: ${(r.wastedUserShare * 100).toFixed(1)}%`,
    '',
    'Layers:',
    ...r.layers.map((l) => `  ${String(l.index).padStart(3)}  ${humanSize(l.size).padStart(8)}  ${l.index < r.baseLayers ? '(base) ' : ''}${at(l.step)}`),
  ];
  if (r.files.length === 0) out.push('', 'No wasted space: no layer hides bytes of a lower one.');
  else {
    out.push('', `Wasted space by cause (${r.causes.length} cause${r.causes.length === 1 ? '' : 's'}, ${r.files.length} path${r.files.length === 1 ? '' : 's'}, largest first):`);
    for (const c of r.causes) {
      out.push(`  ${humanSize(c.bytes).padStart(8)}  ${c.files} file${c.files === 1 ? '' : 's'} ${c.how}${c.fromBase ? ' (from the base image)' : ''}`);
      out.push(`            added by ${at(c.addedBy)}`);
      out.push(`            ${c.how} by ${at(c.removedBy)}`);
      out.push(`            e.g. ${c.examples.join(', ')}${c.files > c.examples.length ? ', …' : ''}`);
      out.push(`            fix: ${c.fix}`);
    }
    if (opts.files) {
      out.push('', `Wasted files (${r.files.length}, largest first):`);
      for (const f of r.files) out.push(`  ${humanSize(f.bytes).padStart(8)}  ${f.path}  ${f.how} — added by ${at(f.addedBy, 40)}; ${f.how} by ${at(f.removedBy, 40)}`);
    } else out.push('', 'Every wasted file: --files (or --format json).');
  }
  return `${out.join('\n')}\n`;
}

/** The limits a result crosses, one sentence each (empty: the image passes). */
export function ciFailures(r: AnalyzeResult, l: Partial<CiLimits>): string[] {
  const out: string[] = [];
  if (typeof l.lowestEfficiency === 'number' && r.efficiency < l.lowestEfficiency) out.push(`efficiency ${(r.efficiency * 100).toFixed(1)}% is below the lowest allowed ${(l.lowestEfficiency * 100).toFixed(1)}%`);
  if (typeof l.highestWastedBytes === 'number' && r.wastedBytes > l.highestWastedBytes) out.push(`wasted ${humanSize(r.wastedBytes)} is over the highest allowed ${humanSize(l.highestWastedBytes)}`);
  if (typeof l.highestUserWastedPercent === 'number' && r.wastedUserShare > l.highestUserWastedPercent) out.push(`wasted share of non-base layers ${(r.wastedUserShare * 100).toFixed(1)}% is over the highest allowed ${(l.highestUserWastedPercent * 100).toFixed(1)}%`);
  return out;
}
