import type { Instruction, ParsedDockerfile } from '../dockerfile/instructions.js';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  rule: string;
  severity: Severity;
  line: number;
  column: number;
  message: string;
  fix: string;
}

/** A stage as the rules see it: its instructions in order. */
export interface LintStage {
  index: number;
  name?: string;
  from: Instruction;
  instructions: Instruction[];
}

/** What lint knows of a base image it found in the store. */
export interface BaseFacts {
  ref: string;
  /** the image has /etc/apt/apt.conf.d/docker-clean: apt deletes its downloaded .deb files itself */
  aptDockerClean: boolean;
}

export interface LintContext {
  dockerfile: ParsedDockerfile;
  stages: LintStage[];
  /** names of earlier stages (FROM of a stage is not an image reference) */
  stageNames: Set<string>;
  /** stages whose layers the target image is made of (the target and the stages it is FROM) */
  shipped: Set<LintStage>;
  /** stages building the target runs at all (shipped, and those it copies or mounts from) */
  used: Set<LintStage>;
  /** the build context directory, when known: lets a rule see which `[ -f FILE ]` branches run */
  context?: string;
  /** the store's facts about a stage's base image (the FROM chain's root), when the store has it */
  baseOf(stage: LintStage): BaseFacts | undefined;
}

/** One rule per module: id, severity, a one-line description for docs, and the check. */
export interface Rule {
  id: string;
  severity: Severity;
  title: string;
  /**
   * `size`: about bytes the image ships, judged only in the stages the target image is made of;
   * `build`: about build time and the cache, judged in every stage (a finding in a stage the
   * target does not use says so).
   */
  scope: 'size' | 'build';
  check(ctx: LintContext): RuleHit[];
}

export const SEVERITY_RANK: Record<Severity | 'none', number> = { info: 1, warning: 2, error: 3, none: 99 };

export type RuleHit = Omit<Finding, 'rule' | 'severity'>;

/** The stages a rule of this scope judges. */
export function stagesFor(ctx: LintContext, scope: Rule['scope']): LintStage[] {
  return scope === 'size' ? ctx.stages.filter((s) => ctx.shipped.has(s)) : ctx.stages;
}
