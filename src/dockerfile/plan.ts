import { DockerfileError } from './errors.js';
import type { ArgInstr, FromInstr, Instruction, ParsedDockerfile } from './instructions.js';
import { PROXY_ARGS, type Scope, globalScope } from './scope.js';
import { type Platform, platformArgs } from '../oci/platform.js';

export type StageBase = { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface Stage {
  index: number;
  /** the `AS` name, lowercased */
  name?: string;
  from: FromInstr;
  base: StageBase;
  /** the instructions after FROM up to the next FROM */
  instructions: Instruction[];
  /** stages this one needs: its base and every `COPY --from` / `RUN --mount from=` stage */
  deps: number[];
}

export interface BuildPlan {
  file: string;
  escape: string;
  globalArgs: ArgInstr[];
  stages: Stage[];
  /** index of the stage whose image is the result */
  target: number;
  /** stages to build, dependencies first */
  order: number[];
  buildArgs: Map<string, string>;
  /** the scope FROM lines were expanded in (global ARGs, platform ARGs) */
  globals: Scope;
}

export interface PlanOptions {
  target?: string;
  buildArgs?: ReadonlyMap<string, string>;
  /** the platform built for (TARGETPLATFORM…); default this host's */
  platform?: Platform;
}

/** Display name of a stage as BuildKit prints it (`build`, or `stage-2`). */
export function stageLabel(s: Pick<Stage, 'index' | 'name'>): string {
  return s.name ?? `stage-${s.index}`;
}

/** Resolve a `--from` value: stage name or index, else an image reference. */
export function resolveFromRef(stages: readonly Stage[], value: string, current: number, file: string, line: number): StageBase {
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n >= current) throw new DockerfileError(file, line, `--from=${value}: stage index must refer to an earlier stage`);
    return { kind: 'stage', index: n };
  }
  const lower = value.toLowerCase();
  const hit = stages.find((s) => s.name === lower);
  if (hit) {
    if (hit.index === current) throw new DockerfileError(file, line, `--from=${value}: a stage cannot copy from itself (circular dependency)`);
    return { kind: 'stage', index: hit.index };
  }
  if (value === 'scratch') return { kind: 'scratch' };
  return { kind: 'image', ref: value };
}

export function planBuild(parsed: ParsedDockerfile, opts: PlanOptions = {}): BuildPlan {
  const file = parsed.file;
  const buildArgs = new Map(opts.buildArgs ?? []);
  const globalArgs: ArgInstr[] = [];
  const stages: Stage[] = [];
  let current: Stage | undefined;
  for (const ins of parsed.instructions) {
    if (ins.kind === 'FROM') {
      current = { index: stages.length, from: ins, base: { kind: 'scratch' }, instructions: [], deps: [] };
      if (ins.stageName) {
        if (stages.some((s) => s.name === ins.stageName)) throw new DockerfileError(file, ins.line, `duplicate stage name "${ins.stageName}"`);
        current.name = ins.stageName;
      }
      stages.push(current);
    } else if (!current) {
      if (ins.kind !== 'ARG') throw new DockerfileError(file, ins.line, `${ins.kind} before the first FROM`);
      globalArgs.push(ins);
    } else current.instructions.push(ins);
  }

  const globals = globalScope(file, parsed.escape, buildArgs, globalArgs, opts.platform);
  for (const s of stages) {
    const image = globals.expand(s.from.image, s.from.line);
    if (image === '') throw new DockerfileError(file, s.from.line, `base name (${s.from.image}) should not be blank`);
    const lower = image.toLowerCase();
    const prev = stages.slice(0, s.index).find((p) => p.name === lower);
    if (prev) s.base = { kind: 'stage', index: prev.index };
    else if (lower === 'scratch') s.base = { kind: 'scratch' };
    else s.base = { kind: 'image', ref: image };
    if (s.base.kind === 'stage') s.deps.push(s.base.index);
  }
  for (const s of stages) {
    for (const ins of s.instructions) {
      const refs: string[] = [];
      if (ins.kind === 'COPY' && ins.from !== undefined) refs.push(ins.from);
      if (ins.kind === 'RUN') for (const m of ins.mounts) if (m.options.from !== undefined) refs.push(m.options.from);
      for (const r of refs) {
        if (r.includes('$')) continue; // expanded at build time, resolved there
        const b = resolveFromRef(stages, r, s.index, file, ins.line);
        if (b.kind === 'stage' && !s.deps.includes(b.index)) s.deps.push(b.index);
      }
    }
  }

  let target = stages.length - 1;
  if (opts.target !== undefined) {
    const t = opts.target.toLowerCase();
    const hit = stages.find((s) => s.name === t) ?? (/^\d+$/.test(t) ? stages[Number(t)] : undefined);
    if (!hit) throw new DockerfileError(file, 1, `target stage "${opts.target}" could not be found`);
    target = hit.index;
  }

  const order: number[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (i: number, from: Stage | undefined): void => {
    const st = state.get(i);
    if (st === 'done') return;
    const stage = stages[i] as Stage;
    if (st === 'visiting') throw new DockerfileError(file, from?.from.line ?? stage.from.line, `circular dependency detected on stage: ${stageLabel(stage)}`);
    state.set(i, 'visiting');
    for (const d of stage.deps) visit(d, stage);
    state.set(i, 'done');
    order.push(i);
  };
  visit(target, undefined);
  return { file, escape: parsed.escape, globalArgs, stages, target, order, buildArgs, globals };
}

/** A stable, human-readable rendering of the plan (`lbuild build --print-plan`). */
export function renderPlan(plan: BuildPlan): string {
  const lines: string[] = [];
  lines.push(`# ${plan.file}: ${plan.stages.length} stage(s), target ${stageLabel(plan.stages[plan.target] as Stage)}, build order ${plan.order.map((i) => stageLabel(plan.stages[i] as Stage)).join(' -> ')}`);
  for (const a of plan.globalArgs) lines.push(`global ${a.text}`);
  for (const s of plan.stages) {
    const built = plan.order.includes(s.index) ? '' : ' (not built)';
    const base = s.base.kind === 'stage' ? `stage ${stageLabel(plan.stages[s.base.index] as Stage)}` : s.base.kind === 'image' ? `image ${s.base.ref}` : 'scratch';
    lines.push(`stage ${s.index} ${stageLabel(s)}${built}: FROM ${base}${s.deps.length ? ` deps=[${s.deps.join(',')}]` : ''}`);
    for (const ins of s.instructions) lines.push(`  ${String(ins.line).padStart(4)}  ${ins.text}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `--build-arg` names no ARG line of the built stages (or the global ARGs) declares: Docker warns about them. */
export function unusedBuildArgs(plan: BuildPlan): string[] {
  const declared = new Set<string>([...PROXY_ARGS, ...Object.keys(platformArgs())]);
  for (const a of plan.globalArgs) for (const x of a.args) declared.add(x.name);
  for (const i of plan.order) {
    for (const ins of plan.stages[i]?.instructions ?? []) if (ins.kind === 'ARG') for (const x of ins.args) declared.add(x.name);
  }
  return [...plan.buildArgs.keys()].filter((k) => !declared.has(k)).sort();
}
