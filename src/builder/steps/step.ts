import type { ExtraHost } from '../../runtime/runc.js';
import type { KeyInputs } from '../../cache/key.js';
import type { StatCache } from '../../context/checksum.js';
import type { CopySource } from '../../context/select.js';
import type { SshAgents } from '../ssh-agent.js';
import type { Instruction } from '../../dockerfile/instructions.js';
import type { Stage } from '../../dockerfile/plan.js';
import { commandArgv } from '../metadata.js';
import type { Scope } from '../../dockerfile/scope.js';
import type { ImageConfig } from '../../oci/types.js';
import type { Platform } from '../../oci/platform.js';
import type { ActiveSnapshot } from '../../snapshot/overlay.js';
import type { Store } from '../../store/store.js';
import type { SecretSource } from '../mounts.js';
import type { LayerSource, LayerSources } from '../sources.js';
import type { PreviousLayer, ReusedFiles } from '../reuse.js';
import type { SourcesPrefetch } from '../prefetch.js';

/*
 * A layer step is keyed and executed by its kind's module (run, copy, workdir): `prepare`
 * computes the key's inputs without touching the snapshot; `execute` runs over the mounted
 * snapshot only on a miss and says what it really consumed where that can differ from what was
 * keyed (a context file edited in between), so the solver records the step under what it read.
 */

/** What the step modules need from the build around them. */
export interface StepEnv {
  /** the Dockerfile's name, for messages */
  file: string;
  store: Store;
  statCache: StatCache;
  /** the build context with its .dockerignore */
  context(): Promise<CopySource>;
  /** a stage, image or scratch named by --from / from= */
  layerSource(from: string, line: number, stage: Stage): Promise<LayerSource>;
  layerSources: LayerSources;
  /** --ssh agents for RUN --mount=type=ssh */
  ssh: SshAgents;
  /** a --build-context NAME=DIR that COPY --from=NAME copies from */
  namedDir(name: string): CopySource | undefined;
  network: 'default' | 'none' | 'host';
  extraHosts: readonly ExtraHost[];
  secrets: ReadonlyMap<string, SecretSource>;
  allowInsecure: boolean;
  /** hides --secret values in what a RUN prints */
  redact(text: string): string;
  /** COPY walks of the context made ahead, while the step before ran */
  prefetch?: SourcesPrefetch;
}

/** The state a step runs in: the stage's config so far and its variable scope. */
export interface StepState {
  config: ImageConfig;
  scope: Scope;
  /** parentId() of the layers so far */
  parent: string;
  epoch: string | null;
  /** what the stage runs as (FROM --platform, else the build's platform) */
  platform: Platform;
}

export interface StepOutcome {
  /** mount points the runtime created that are not part of the layer */
  stubs?: string[];
  /** inputs that turned out different from the keyed ones (what was really read) */
  consumed?: Partial<Pick<KeyInputs, 'sources'>> & { bindSources?: string[] };
  /** files an incremental COPY left to be linked from the previous snapshot after the unmount */
  reused?: ReusedFiles;
}

export interface PreparedStep {
  inputs: KeyInputs;
  /** the selected files' descriptions, for naming a changed file in a miss */
  files?: Record<string, string>;
  /** where the sources come from, for messages (`stage builder`) */
  from?: string;
  createdBy: string;
  /** `reuseFrom`: the previous build of this instruction (its sources or parent changed), for an incremental COPY */
  execute(snap: ActiveSnapshot, log: (line: string) => void, reuseFrom?: PreviousLayer): Promise<StepOutcome>;
  /** the step can take `reuseFrom` */
  incremental?: boolean;
}

/** The history `created_by` of an instruction, as BuildKit writes it. */
export function createdBy(instr: Instruction, shell: readonly string[] | undefined, scope: Scope): string {
  if (instr.kind === 'RUN') {
    const args = scope.runArgs();
    const prefix = args.length ? `|${args.length} ${args.map(([k, v]) => `${k}=${v}`).join(' ')} ` : '';
    const argv = commandArgv(instr.cmd, shell);
    return `RUN ${prefix}${instr.cmd.form === 'exec' ? JSON.stringify(argv) : argv.join(' ')} # lbuild`;
  }
  if (instr.kind === 'COPY' || instr.kind === 'ADD') return `${instr.text} # lbuild`;
  return instr.text;
}
