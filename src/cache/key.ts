import { sha256 } from '../oci/digest.js';

/** Bump when the meaning of a key changes: old records then simply stop matching. */
export const KEY_VERSION = 2;

/**
 * What a step's key is made of. Kept per build so that a miss can name what changed.
 * `op` is the instruction after expansion, normalized; `args` the build args it sees.
 */
export interface KeyInputs {
  /**
   * The content the step runs on: `chain:<chain ID of its layers>` (or `empty`), never the
   * parent's key, so a child is never stacked on a parent it was not built on.
   */
  parent: string;
  /** SOURCE_DATE_EPOCH when set: it changes layer bytes (mtimes clamped) */
  epoch?: string | null;
  op: Record<string, unknown>;
  args: Record<string, string>;
  /** digest of the selected context files (COPY/ADD from the context) */
  sources?: string;
  /** the platform the step runs as, when it is not the host's (a host build's keys are as before) */
  platform?: string;
}

/** key = H(version, parent content, normalized instruction, build args, epoch, sources[, platform]), as JSON */
export function stepKey(inputs: KeyInputs): string {
  return sha256(
    JSON.stringify({
      v: KEY_VERSION, parent: inputs.parent, op: inputs.op, args: inputs.args, epoch: inputs.epoch ?? null, sources: inputs.sources ?? null,
      ...(inputs.platform !== undefined ? { platform: inputs.platform } : {}),
    }),
  ).slice(7);
}

/** The parent a step's key names: the chain ID of the layers it runs on. */
export function parentId(chain: string): string {
  return chain === '' ? 'empty' : `chain:${chain}`;
}
