import type { Command, Instruction } from '../dockerfile/instructions.js';
import { expandInstruction, type Scope } from '../dockerfile/scope.js';
import { DockerfileError } from '../dockerfile/errors.js';
import {
  DEFAULT_SHELL,
  resolveWorkdir,
  withAuthor,
  withCmd,
  withEntrypoint,
  withEnv,
  withExposedPorts,
  withHealthcheck,
  withLabels,
  withOnBuild,
  withShell,
  withStopSignal,
  withUser,
  withVolumes,
  withWorkdir,
} from '../oci/config.js';
import type { HealthConfig, ImageConfig } from '../oci/types.js';

export type MetadataKind = 'CMD' | 'ENTRYPOINT' | 'ENV' | 'LABEL' | 'MAINTAINER' | 'EXPOSE' | 'VOLUME' | 'USER' | 'WORKDIR' | 'STOPSIGNAL' | 'SHELL' | 'ONBUILD' | 'HEALTHCHECK' | 'ARG';

const METADATA: ReadonlySet<string> = new Set<MetadataKind>(['CMD', 'ENTRYPOINT', 'ENV', 'LABEL', 'MAINTAINER', 'EXPOSE', 'VOLUME', 'USER', 'WORKDIR', 'STOPSIGNAL', 'SHELL', 'ONBUILD', 'HEALTHCHECK', 'ARG']);

export function isMetadataOnly(i: Instruction): boolean {
  return METADATA.has(i.kind);
}

/** A command as the config stores it: shell form runs through the image's SHELL. */
export function commandArgv(cmd: Command, shell: readonly string[] | undefined): string[] {
  return cmd.form === 'exec' ? [...cmd.args] : [...(shell && shell.length ? shell : DEFAULT_SHELL), cmd.text];
}

export interface MetadataState {
  /** CMD set in this stage (ENTRYPOINT then keeps it; otherwise ENTRYPOINT resets an inherited CMD) */
  cmdSetInStage: boolean;
}

/**
 * The config change of a metadata-only instruction (pure: returns a new config). ENV updates
 * the scope too, since later instructions expand against it; ARG only changes the scope.
 */
export function applyMetadata(cfg: ImageConfig, instr: Instruction, scope: Scope, state: MetadataState, file: string): ImageConfig {
  const x = expandInstruction(instr, scope);
  const shell = cfg.config.Shell;
  switch (x.kind) {
    case 'ARG':
      scope.declare(x);
      return cfg;
    case 'ENV':
      scope.setEnv(x.pairs, x.line);
      return withEnv(cfg, scope.envList());
    case 'CMD':
      state.cmdSetInStage = true;
      return withCmd(cfg, commandArgv(x.cmd, shell));
    case 'ENTRYPOINT':
      return withEntrypoint(cfg, commandArgv(x.cmd, shell), !state.cmdSetInStage);
    case 'LABEL':
      return withLabels(cfg, x.pairs.map((p) => [p.key, p.value]));
    case 'MAINTAINER':
      return withAuthor(cfg, x.name);
    case 'EXPOSE':
      try {
        return withExposedPorts(cfg, x.ports);
      } catch (e) {
        throw new DockerfileError(file, x.line, (e as Error).message);
      }
    case 'VOLUME':
      return withVolumes(cfg, x.paths);
    case 'USER':
      return withUser(cfg, x.user);
    case 'WORKDIR':
      return withWorkdir(cfg, resolveWorkdir(cfg.config.WorkingDir, x.path));
    case 'STOPSIGNAL':
      return withStopSignal(cfg, x.signal);
    case 'SHELL':
      return withShell(cfg, x.shell);
    case 'ONBUILD':
      return withOnBuild(cfg, x.expression);
    case 'HEALTHCHECK': {
      if (x.none) return withHealthcheck(cfg, { Test: ['NONE'] });
      const test = x.test as Command;
      const hc: HealthConfig = { Test: test.form === 'exec' ? ['CMD', ...test.args] : ['CMD-SHELL', test.text] };
      if (x.intervalNs) hc.Interval = x.intervalNs;
      if (x.timeoutNs) hc.Timeout = x.timeoutNs;
      if (x.startPeriodNs) hc.StartPeriod = x.startPeriodNs;
      if (x.startIntervalNs) hc.StartInterval = x.startIntervalNs;
      if (x.retries) hc.Retries = x.retries;
      return withHealthcheck(cfg, hc);
    }
    default:
      throw new DockerfileError(file, x.line, `${x.kind} is not a metadata instruction`);
  }
}
