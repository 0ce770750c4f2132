import type { KeyInputs } from './key.js';

/** A step as remembered in a build record. */
export interface RecordedStep {
  stage: string;
  index: number;
  line: number;
  instruction: string;
  key: string;
  inputs: KeyInputs;
  /** the selected files' descriptions, for COPY/ADD from the context: in memory only (saved once per sources digest beside the records) */
  files?: Record<string, string>;
  cache: 'hit' | 'miss';
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function withMore(first: string, n: number): string {
  return n > 1 ? `${first} (+${n - 1} more)` : first;
}

/** `source changed: src/app.ts (+2 more)`, `source added: x`, `source removed: y`, `mode changed: f`. */
export function explainFiles(prev: Record<string, string>, cur: Record<string, string>): string | undefined {
  const added = Object.keys(cur).filter((k) => !(k in prev)).sort();
  const removed = Object.keys(prev).filter((k) => !(k in cur)).sort();
  const changed: string[] = [];
  const modes: string[] = [];
  for (const k of Object.keys(cur).sort()) {
    const a = prev[k];
    const b = cur[k];
    if (a === undefined || b === undefined || a === b) continue;
    const [ta, ma, ...ra] = a.split(' ');
    const [tb, mb, ...rb] = b.split(' ');
    if (ta === tb && ma !== mb && sameJson(ra, rb)) modes.push(k);
    else changed.push(k);
  }
  if (changed.length) return withMore(`source changed: ${changed[0]}`, changed.length);
  if (added.length) return withMore(`source added: ${added[0]}`, added.length);
  if (removed.length) return withMore(`source removed: ${removed[0]}`, removed.length);
  if (modes.length) return withMore(`mode changed: ${modes[0]}`, modes.length);
  return undefined;
}

/**
 * Why a step missed, compared with the same step of the previous build of this Dockerfile and
 * target: the first cause found, most specific first.
 */
export function explainMiss(
  cur: Omit<RecordedStep, 'cache'>,
  prev: RecordedStep | undefined,
  ctx: { noCache: boolean; firstInStage: boolean; parentMissed?: { index: number } },
): string {
  if (ctx.noCache) return '--no-cache';
  if (!prev) return 'not built before';
  if (!sameJson(prev.inputs.args, cur.inputs.args)) {
    const names = [...new Set([...Object.keys(prev.inputs.args), ...Object.keys(cur.inputs.args)])].sort();
    for (const n of names) {
      const a = prev.inputs.args[n];
      const b = cur.inputs.args[n];
      if (a !== b) return `build-arg ${n} changed (${a ?? 'unset'} → ${b ?? 'unset'})`;
    }
  }
  if (!sameJson(prev.inputs.op, cur.inputs.op)) {
    const { from: a, ...restA } = prev.inputs.op;
    const { from: b, ...restB } = cur.inputs.op;
    if (a !== b && sameJson(restA, restB) && typeof b === 'string' && b.startsWith('stage:')) return 'source stage changed';
    if (a !== b && sameJson(restA, restB)) return 'source image changed';
    return 'instruction changed';
  }
  if (prev.inputs.sources !== cur.inputs.sources) {
    return explainFiles(prev.files ?? {}, cur.files ?? {}) ?? 'source changed';
  }
  if (prev.inputs.parent !== cur.inputs.parent) {
    if (ctx.firstInStage) return 'base image changed';
    if (ctx.parentMissed) return `parent changed (step ${ctx.parentMissed.index} missed)`;
    return 'parent changed';
  }
  return 'cache entry gone (pruned or its layer removed)';
}
