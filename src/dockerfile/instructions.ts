/** Typed Dockerfile instructions: what the front end hands to the planner and the builder. */

export type Command = { form: 'exec'; args: string[] } | { form: 'shell'; text: string };

export interface Heredoc {
  /** delimiter word (without quotes) */
  name: string;
  /** body with `<<-` tab stripping applied, newline-terminated */
  content: string;
  /** quoted delimiter: the body is not expanded */
  quoted: boolean;
  stripTabs: boolean;
}

interface Base {
  /** 1-based line of the keyword */
  line: number;
  /** 1-based last line of the instruction (continuations, heredocs) */
  endLine: number;
  /** the instruction as written, continuation lines joined (for history and messages) */
  text: string;
}

export interface FromInstr extends Base {
  kind: 'FROM';
  image: string;
  stageName?: string;
  platform?: string;
}

export interface MountSpec {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  options: Record<string, string>;
}

export interface RunInstr extends Base {
  kind: 'RUN';
  cmd: Command;
  heredocs: Heredoc[];
  mounts: MountSpec[];
  network?: 'default' | 'none' | 'host';
  security?: string;
}

export interface CmdInstr extends Base {
  kind: 'CMD';
  cmd: Command;
}
export interface EntrypointInstr extends Base {
  kind: 'ENTRYPOINT';
  cmd: Command;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvInstr extends Base {
  kind: 'ENV';
  /** unexpanded words */
  pairs: KeyValue[];
}
export interface LabelInstr extends Base {
  kind: 'LABEL';
  pairs: KeyValue[];
}
export interface ArgInstr extends Base {
  kind: 'ARG';
  args: { name: string; default?: string }[];
}

export interface CopyInstr extends Base {
  kind: 'COPY' | 'ADD';
  sources: string[];
  dest: string;
  heredocs: Heredoc[];
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  checksum?: string;
  keepGitDir: boolean;
  unpack?: boolean;
}

export interface MaintainerInstr extends Base {
  kind: 'MAINTAINER';
  name: string;
}
export interface ExposeInstr extends Base {
  kind: 'EXPOSE';
  ports: string[];
}
export interface VolumeInstr extends Base {
  kind: 'VOLUME';
  paths: string[];
}
export interface UserInstr extends Base {
  kind: 'USER';
  user: string;
}
export interface WorkdirInstr extends Base {
  kind: 'WORKDIR';
  path: string;
}
export interface StopsignalInstr extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}
export interface ShellInstr extends Base {
  kind: 'SHELL';
  shell: string[];
}
export interface OnbuildInstr extends Base {
  kind: 'ONBUILD';
  /** the trigger as written, e.g. `RUN echo hi`, stored in the image config */
  expression: string;
  trigger: Instruction;
}

export interface HealthcheckInstr extends Base {
  kind: 'HEALTHCHECK';
  /** `NONE` disables the base image's check */
  none: boolean;
  test?: Command;
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  startIntervalNs?: number;
  retries?: number;
}

export type Instruction =
  | FromInstr
  | RunInstr
  | CmdInstr
  | EntrypointInstr
  | EnvInstr
  | LabelInstr
  | ArgInstr
  | CopyInstr
  | MaintainerInstr
  | ExposeInstr
  | VolumeInstr
  | UserInstr
  | WorkdirInstr
  | StopsignalInstr
  | ShellInstr
  | OnbuildInstr
  | HealthcheckInstr;

export type InstructionKind = Instruction['kind'];

export interface ParsedDockerfile {
  /** the file name used in messages */
  file: string;
  escape: string;
  directives: Record<string, string>;
  instructions: Instruction[];
}
