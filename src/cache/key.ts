import { sha256 } from '../oci/digest.js';

/** Bump when the meaning of a key changes: old records then simply stop matching. */
export const KEY_VERSION = 1;

/**
 * What a step's key is made of. Kept per build so that a miss can name what changed.
 * `op` is the instruction after expansion, normalized; `args` the build args it sees.
 */
export interface KeyInputs {
  parent: string;
  op: Record<string, unknown>;
  args: Record<string, string>;
  /** digest of the selected context files (COPY/ADD from the context) */
  sources?: string;
}

/** key = H(version, parent key, normalized instruction, sources) */
export function stepKey(inputs: KeyInputs): string {
  return sha256(JSON.stringify({ v: KEY_VERSION, parent: inputs.parent, op: inputs.op, args: inputs.args, sources: inputs.sources ?? null })).slice(7);
}
