import { formatPlatform, hostPlatform } from '../oci/platform.js';
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

/** `source changed: src/app.ts (+2 more)`, `source added: x`, `source removed: y`, `mode changed: f`, `xattrs changed: f`. */
export function explainFiles(prev: Record<string, string>, cur: Record<string, string>): string | undefined {
  const added = Object.keys(cur).filter((k) => !(k in prev)).sort();
  const removed = Object.keys(prev).filter((k) => !(k in cur)).sort();
  const changed: string[] = [];
  const modes: string[] = [];
  const xattrs: string[] = [];
  const noXattr = (e: string): string => e.replace(/ xattr:[0-9a-f]+$/, '');
  for (const k of Object.keys(cur).sort()) {
    const a = prev[k];
    const b = cur[k];
    if (a === undefined || b === undefined || a === b) continue;
    if (noXattr(a) === noXattr(b)) {
      xattrs.push(k);
      continue;
    }
    const [ta, ma, ...ra] = a.split(' ');
    const [tb, mb, ...rb] = b.split(' ');
    if (ta === tb && ma !== mb && sameJson(ra, rb)) modes.push(k);
    else changed.push(k);
  }
  if (changed.length) return withMore(`source changed: ${changed[0]}`, changed.length);
  if (added.length) return withMore(`source added: ${added[0]}`, added.length);
  if (removed.length) return withMore(`source removed: ${removed[0]}`, removed.length);
  if (modes.length) return withMore(`mode changed: ${modes[0]}`, modes.length);
  if (xattrs.length) return withMore(`xattrs changed: ${xattrs[0]}`, xattrs.length);
  return undefined;
}

/**
 * Align the previous build's steps of a stage with this build's, as `diff` aligns lines: the
 * longest common subsequence of instruction texts are the same steps; between two such anchors,
 * the remaining steps pair up in order (an edited instruction). An inserted step has no partner,
 * so it does not shift the rest. Returns, per current step, the index of its previous step.
 */
export function alignSteps(prev: readonly string[], cur: readonly string[]): (number | undefined)[] {
  const n = prev.length;
  const m = cur.length;
  // lcs[i][j]: LCS length of prev[i..] and cur[j..]
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      const row = lcs[i] as Uint32Array;
      row[j] = prev[i] === cur[j] ? ((lcs[i + 1] as Uint32Array)[j + 1] as number) + 1 : Math.max((lcs[i + 1] as Uint32Array)[j] as number, row[j + 1] as number);
    }
  }
  const out: (number | undefined)[] = new Array<number | undefined>(m).fill(undefined);
  const anchors: [number, number][] = [];
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (prev[i] === cur[j]) {
      anchors.push([i, j]);
      out[j] = i;
      i++;
      j++;
    } else if (((lcs[i + 1] as Uint32Array)[j] as number) >= ((lcs[i] as Uint32Array)[j + 1] as number)) i++;
    else j++;
  }
  anchors.push([n, m]);
  let pi = 0;
  let cj = 0;
  for (const [ai, aj] of anchors) {
    // the gap before this anchor: unmatched steps on both sides pair up in order
    for (let k = 0; pi + k < ai && cj + k < aj; k++) out[cj + k] = pi + k;
    pi = ai + 1;
    cj = aj + 1;
  }
  return out;
}

function envMap(env: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of Array.isArray(env) ? (env as string[]) : []) {
    const eq = kv.indexOf('=');
    out.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
  }
  return out;
}

function changedPair(what: string, a: unknown, b: unknown): string {
  const show = (v: unknown): string => (v === undefined || v === null || v === '' ? 'unset' : typeof v === 'string' ? v : JSON.stringify(v));
  return `${what} changed (${show(a)} → ${show(b)})`;
}

/** What differs between two normalized instructions of the same step, named as a user would. */
function explainOp(a: Record<string, unknown>, b: Record<string, unknown>, text: { prev: string; cur: string }): string {
  if (a.kind !== b.kind || text.prev !== text.cur) return 'instruction changed';
  if (!sameJson(a.env, b.env)) {
    const ea = envMap(a.env);
    const eb = envMap(b.env);
    for (const k of [...new Set([...ea.keys(), ...eb.keys()])].sort()) {
      if (ea.get(k) !== eb.get(k)) return changedPair(`env ${k}`, ea.get(k), eb.get(k));
    }
  }
  for (const [field, name] of [['user', 'user'], ['workdir', 'working directory'], ['network', 'network'], ['hosts', '--add-host'], ['security', 'security mode'], ['dir', 'directory']] as const) {
    if (!sameJson(a[field], b[field])) return changedPair(name, a[field], b[field]);
  }
  if (!sameJson(a.argv, b.argv)) return 'shell changed';
  if (!sameJson(a.from, b.from)) return changedPair('source', a.from, b.from);
  if (!sameJson(a.urls ?? null, b.urls ?? null)) {
    const pa = (Array.isArray(a.urls) ? a.urls : []) as unknown[][];
    const changed = ((Array.isArray(b.urls) ? b.urls : []) as unknown[][]).find((u, i) => !sameJson(u, pa[i]));
    return `source changed: ${String(changed?.[0] ?? 'a URL')} (its content)`;
  }
  if (!sameJson(a.git ?? null, b.git ?? null)) {
    const [remote, from] = (Array.isArray(a.git) ? a.git : []) as string[];
    const [, to] = (Array.isArray(b.git) ? b.git : []) as string[];
    return `source changed: ${remote ?? 'a git repository'} (commit ${String(from ?? 'unset').slice(0, 12)} → ${String(to ?? 'unset').slice(0, 12)})`;
  }
  if (!sameJson(a.mounts, b.mounts)) return 'mounts changed';
  if (!sameJson(a.bindSources ?? null, b.bindSources ?? null)) {
    const mounts = (Array.isArray(b.mounts) ? b.mounts : []) as { type?: string; from?: string; source?: string }[];
    const binds = mounts.filter((m) => m.type === 'bind');
    const pa = (a.bindSources ?? []) as unknown[];
    const pb = (b.bindSources ?? []) as unknown[];
    const i = pb.findIndex((x, k) => x !== pa[k]);
    const m = binds[i];
    if (m?.from) return `mount from ${m.from} changed (${m.source || '/'})`;
    return `mount source changed (${m?.source || '/'} in the build context)`;
  }
  // the same text, expanded differently (an ARG or ENV in a COPY source or destination)
  return 'instruction changed (after variable expansion)';
}

/**
 * Why a step missed, compared with its step in the previous build of this Dockerfile and target
 * (aligned by alignSteps): the first cause found, most specific first. Every reason names an
 * input that really differs between the two keys.
 */
export function explainMiss(
  cur: Omit<RecordedStep, 'cache'>,
  prev: RecordedStep | undefined,
  ctx: { noCache: boolean; firstInStage: boolean; parentMissed?: { index: number }; from?: string },
): string {
  if (ctx.noCache) return '--no-cache';
  if (!prev) return 'not built before';
  // first: a platform change also changes TARGETARCH and the like, which follow from it
  if ((prev.inputs.platform ?? null) !== (cur.inputs.platform ?? null)) {
    const host = formatPlatform(hostPlatform());
    return changedPair('platform', prev.inputs.platform ?? host, cur.inputs.platform ?? host);
  }
  if (!sameJson(prev.inputs.args, cur.inputs.args)) {
    const names = [...new Set([...Object.keys(prev.inputs.args), ...Object.keys(cur.inputs.args)])].sort();
    for (const n of names) {
      const a = prev.inputs.args[n];
      const b = cur.inputs.args[n];
      if (a !== b) return `build-arg ${n} changed (${a ?? 'unset'} → ${b ?? 'unset'})`;
    }
  }
  if ((prev.inputs.epoch ?? null) !== (cur.inputs.epoch ?? null)) return changedPair('SOURCE_DATE_EPOCH', prev.inputs.epoch, cur.inputs.epoch);
  if (!sameJson(prev.inputs.op, cur.inputs.op)) return explainOp(prev.inputs.op, cur.inputs.op, { prev: prev.instruction, cur: cur.instruction });
  if (prev.inputs.sources !== cur.inputs.sources) {
    const where = ctx.from ? ` (in ${ctx.from})` : '';
    const named = prev.files && cur.files ? explainFiles(prev.files, cur.files) : undefined;
    return `${named ?? 'source changed'}${where}`;
  }
  if (prev.inputs.parent !== cur.inputs.parent) {
    if (ctx.firstInStage) return 'base image changed';
    if (ctx.parentMissed) return `parent changed (step ${ctx.parentMissed.index} missed)`;
    return 'parent changed (the layers below differ from the last build\'s)';
  }
  return 'cache entry gone (pruned or its layer removed)';
}
