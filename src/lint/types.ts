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

export interface LintContext {
  dockerfile: ParsedDockerfile;
  stages: LintStage[];
  /** names of earlier stages (FROM of a stage is not an image reference) */
  stageNames: Set<string>;
}

/** One rule per module: id, severity, a one-line description for docs, and the check. */
export interface Rule {
  id: string;
  severity: Severity;
  title: string;
  check(ctx: LintContext): RuleHit[];
}

export const SEVERITY_RANK: Record<Severity | 'none', number> = { info: 1, warning: 2, error: 3, none: 99 };

export type RuleHit = Omit<Finding, 'rule' | 'severity'>;
