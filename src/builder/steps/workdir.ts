import type { WorkdirInstr } from '../../dockerfile/instructions.js';
import { resolveUser } from '../../runtime/user.js';
import { makeWorkdir } from '../copy.js';
import type { PreparedStep, StepState } from './step.js';

/**
 * WORKDIR that makes a layer (any directory but `/`): keyed on the directory and the user who
 * owns it; executed by creating it. The caller has already applied the instruction to the config.
 */
export function prepareWorkdir(_instr: WorkdirInstr, state: StepState): PreparedStep {
  const dir = state.config.config.WorkingDir || '/';
  const user = state.config.config.User;
  return {
    inputs: { parent: state.parent, epoch: state.epoch, op: { kind: 'WORKDIR', dir, user: user ?? '' }, args: {} },
    createdBy: `WORKDIR ${dir}`,
    execute: async (snap) => {
      makeWorkdir(snap.merged, dir, resolveUser(snap.merged, user));
      return {};
    },
  };
}
