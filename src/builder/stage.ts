import type { Instruction } from '../dockerfile/instructions.js';
import { parseTrigger } from '../dockerfile/parse.js';
import type { BuildPlan, Stage } from '../dockerfile/plan.js';
import { type Scope, expandInstruction } from '../dockerfile/scope.js';
import { clearOnBuild, resolveWorkdir, withEnv, withHistory, withLayer } from '../oci/config.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import { DEFAULT_PATH } from '../runtime/runc.js';
import { applyMetadata, type MetadataState } from './metadata.js';
import { createdBy } from './steps/step.js';

/*
 * The pure part of a stage: how its config, variable scope and history evolve instruction by
 * instruction. No filesystem, no store: the builder feeds it and asks it; tests call it directly.
 */

export const LAYER_KINDS: ReadonlySet<string> = new Set(['RUN', 'COPY', 'ADD', 'WORKDIR']);

export interface StageEval {
  config: ImageConfig;
  scope: Scope;
  meta: MetadataState;
  /** the base image's ONBUILD triggers, then the stage's own instructions */
  instructions: Instruction[];
}

/** A stage on its base's config: ONBUILD triggers taken out to run first, PATH set as BuildKit does. */
export function startStage(plan: BuildPlan, stage: Stage, baseConfig: ImageConfig): StageEval {
  let config: ImageConfig = structuredClone(baseConfig);
  const triggers = (config.config.OnBuild ?? []).map((t) => parseTrigger(t, plan.file, stage.from.line, plan.escape));
  config = clearOnBuild(config);
  if (!(config.config.Env ?? []).some((e) => e.startsWith('PATH='))) config = withEnv(config, [`PATH=${DEFAULT_PATH}`, ...(config.config.Env ?? [])]);
  const scope = plan.globals.child();
  scope.loadEnv(config.config.Env);
  return { config, scope, meta: { cmdSetInStage: false }, instructions: [...triggers, ...stage.instructions] };
}

/** RUN, COPY and ADD always make a layer; WORKDIR does unless it resolves to `/` (as BuildKit). */
export function makesLayer(s: StageEval, instr: Instruction): boolean {
  if (instr.kind !== 'WORKDIR') return LAYER_KINDS.has(instr.kind);
  const x = expandInstruction(instr, s.scope);
  return resolveWorkdir(s.config.config.WorkingDir, x.path) !== '/';
}

/** A metadata-only instruction: the config change and its `empty_layer` history entry. */
export function applyMetadataStep(s: StageEval, instr: Instruction, file: string, created: string): void {
  const text = createdBy(instr, s.config.config.Shell, s.scope);
  s.config = applyMetadata(s.config, instr, s.scope, s.meta, file);
  if (instr.kind !== 'ONBUILD') s.config = withHistory(s.config, { created, created_by: text, empty_layer: true });
}

/** Before a layer step is keyed: WORKDIR changes the config first (its directory is keyed). */
export function beforeLayerStep(s: StageEval, instr: Instruction, file: string): void {
  if (instr.kind === 'WORKDIR') s.config = applyMetadata(s.config, instr, s.scope, s.meta, file);
}

/** After a layer step: its layer and history entry. */
export function afterLayerStep(s: StageEval, diffId: Digest, created: string, by: string): void {
  s.config = withLayer(s.config, diffId, { created, created_by: by });
}
