import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import { loadIgnore } from '../context/ignore.js';
import { DockerfileError } from '../dockerfile/errors.js';
import type { CopyInstr, Instruction, RunInstr } from '../dockerfile/instructions.js';
import { parseDockerfile, parseTrigger } from '../dockerfile/parse.js';
import { type BuildPlan, type Stage, planBuild, resolveFromRef, stageLabel, unusedBuildArgs } from '../dockerfile/plan.js';
import { type Scope, expandInstruction, hostPlatform } from '../dockerfile/scope.js';
import { LbuildError } from '../errors.js';
import { creationTime } from '../image/import.js';
import { clearOnBuild, emptyConfig, resolveWorkdir, withCreated, withEnv, withHistory, withLabels, withLayer as configWithLayer, withWorkdir } from '../oci/config.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import type { Progress, Vertex } from '../report/progress.js';
import { DEFAULT_PATH, runContainer, sandboxMounts } from '../runtime/runc.js';
import { resolveUser } from '../runtime/user.js';
import { Snapshotter } from '../snapshot/overlay.js';
import type { Store, StoredImage } from '../store/store.js';
import { type CopySource, executeCopy, makeWorkdir } from './copy.js';
import { withLayer, missingMountPoints } from './layerstep.js';
import { applyMetadata, commandArgv, type MetadataState } from './metadata.js';

export interface BuildOptions {
  store: Store;
  contextDir: string;
  dockerfilePath: string;
  /** the Dockerfile's name in messages (`Dockerfile`, or the -f value) */
  dockerfileName: string;
  dockerfileText: string;
  tags: string[];
  buildArgs: Map<string, string>;
  target?: string;
  network: 'default' | 'none' | 'host';
  labels: Map<string, string>;
  progress: Progress;
}

/** One executed (or metadata) step, for reports. */
export interface StepRecord {
  stage: string;
  index: number;
  total: number;
  line: number;
  instruction: string;
  durationMs: number;
  layer: { diffId: Digest; size: number } | null;
}

interface StageResult {
  config: ImageConfig;
  layers: Digest[];
}

interface StageState extends StageResult {
  scope: Scope;
  meta: MetadataState;
}

export interface BuildResult {
  image: StoredImage;
  steps: StepRecord[];
  plan: BuildPlan;
}

function createdBy(instr: Instruction, shell: readonly string[] | undefined, scope: Scope): string {
  if (instr.kind === 'RUN') {
    const args = scope.runArgs();
    const prefix = args.length ? `|${args.length} ${args.map(([k, v]) => `${k}=${v}`).join(' ')} ` : '';
    const argv = commandArgv(instr.cmd, shell);
    return `RUN ${prefix}${instr.cmd.form === 'exec' ? JSON.stringify(argv) : argv.join(' ')} # lbuild`;
  }
  if (instr.kind === 'COPY' || instr.kind === 'ADD') return `${instr.text} # lbuild`;
  return instr.text;
}

const LAYER_KINDS = new Set(['RUN', 'COPY', 'ADD', 'WORKDIR']);

export class Builder {
  private readonly snapshotter: Snapshotter;
  private readonly results = new Map<number, StageResult>();
  private readonly steps: StepRecord[] = [];
  private plan!: BuildPlan;
  private created!: string;
  private mtimeClamp: number | undefined;
  private contextRoot!: string;

  constructor(private readonly opts: BuildOptions) {
    this.snapshotter = new Snapshotter(opts.store);
  }

  async build(): Promise<BuildResult> {
    const o = this.opts;
    const parsed = parseDockerfile(o.dockerfileText, o.dockerfileName);
    this.plan = planBuild(parsed, { ...(o.target ? { target: o.target } : {}), buildArgs: o.buildArgs });
    for (const a of unusedBuildArgs(this.plan)) o.progress.warn(`build-arg ${a} was not consumed by any stage`);
    const sde = o.buildArgs.get('SOURCE_DATE_EPOCH') ?? process.env.SOURCE_DATE_EPOCH;
    this.created = creationTime(sde !== undefined ? { SOURCE_DATE_EPOCH: sde } : {});
    this.mtimeClamp = sde !== undefined && sde !== '' ? Number(sde) : undefined;
    this.contextRoot = realpathSync(o.contextDir);
    await this.snapshotter.recoverStale();
    for (const idx of this.plan.order) {
      const stage = this.plan.stages[idx] as Stage;
      this.results.set(idx, await this.buildStage(stage));
    }
    const final = this.results.get(this.plan.target) as StageResult;
    let config = withCreated(final.config, this.created);
    if (o.labels.size) config = withLabels(config, [...o.labels]);
    const image = await o.store.commitImage(config, o.tags);
    return { image, steps: this.steps, plan: this.plan };
  }

  private async baseOf(stage: Stage): Promise<StageResult> {
    const b = stage.base;
    // BuildKit's empty image: WorkingDir "/" (PATH is added below for every stage)
    if (b.kind === 'scratch') return { config: withWorkdir(emptyConfig(hostPlatform()), '/'), layers: [] };
    if (b.kind === 'stage') {
      const r = this.results.get(b.index);
      if (!r) throw new LbuildError(`stage ${b.index} was not built before stage ${stage.index}`);
      return r;
    }
    const img = await this.imageByRef(b.ref, stage.from.line);
    return { config: img.config, layers: [...img.config.rootfs.diff_ids] };
  }

  private async imageByRef(ref: string, line: number): Promise<StoredImage> {
    try {
      return await this.opts.store.getImage(ref);
    } catch (e) {
      if (e instanceof LbuildError) {
        throw new DockerfileError(this.plan.file, line, `image ${ref} is not in the store (lbuild import or lbuild load it first)`);
      }
      throw e;
    }
  }

  private async buildStage(stage: Stage): Promise<StageResult> {
    const o = this.opts;
    const base = await this.baseOf(stage);
    let config: ImageConfig = structuredClone(base.config);
    const triggers = (config.config.OnBuild ?? []).map((t) => parseTrigger(t, this.plan.file, stage.from.line, this.plan.escape));
    config = clearOnBuild(config);
    if (!(config.config.Env ?? []).some((e) => e.startsWith('PATH='))) config = withEnv(config, [`PATH=${DEFAULT_PATH}`, ...(config.config.Env ?? [])]);
    const scope = this.plan.globals.child();
    scope.loadEnv(config.config.Env);
    const state: StageState = { config, layers: [...base.layers], scope, meta: { cmdSetInStage: false } };
    const instructions = [...triggers, ...stage.instructions];
    const total = 1 + instructions.filter((i) => LAYER_KINDS.has(i.kind) && !(i.kind === 'WORKDIR' && i.path === '/')).length;
    const label = stageLabel(stage);
    const fromName = stage.base.kind === 'image' ? stage.base.ref : stage.base.kind === 'stage' ? stageLabel(this.plan.stages[stage.base.index] as Stage) : 'scratch';
    o.progress.vertex(`[${label} 1/${total}] FROM ${fromName}`).done();
    let n = 1;
    for (const instr of instructions) {
      if (!this.makesLayer(instr, state)) {
        const before = Date.now();
        const text = createdBy(instr, state.config.config.Shell, scope);
        state.config = applyMetadata(state.config, instr, scope, state.meta, this.plan.file);
        if (instr.kind !== 'ONBUILD') state.config = withHistory(state.config, { created: this.created, created_by: text, empty_layer: true });
        this.steps.push({ stage: label, index: n, total, line: instr.line, instruction: instr.text, durationMs: Date.now() - before, layer: null });
        continue;
      }
      n++;
      const v = o.progress.vertex(`[${label} ${String(n).padStart(String(total).length)}/${total}] ${instr.text}`);
      const started = Date.now();
      try {
        const layer = await this.layerStep(instr, state, stage, v);
        state.layers.push(layer.diffId);
        this.steps.push({ stage: label, index: n, total, line: instr.line, instruction: instr.text, durationMs: Date.now() - started, layer });
        v.done();
      } catch (e) {
        v.error(e instanceof Error ? e.message : String(e));
        throw e;
      }
    }
    return { config: state.config, layers: state.layers };
  }

  /** RUN, COPY and ADD always make a layer; WORKDIR does unless it resolves to `/` (as BuildKit). */
  private makesLayer(instr: Instruction, state: StageState): boolean {
    if (instr.kind !== 'WORKDIR') return LAYER_KINDS.has(instr.kind);
    const x = expandInstruction(instr, state.scope);
    return resolveWorkdir(state.config.config.WorkingDir, x.path) !== '/';
  }

  private async layerStep(instr: Instruction, state: StageState, stage: Stage, v: Vertex): Promise<{ diffId: Digest; size: number }> {
    const o = this.opts;
    let text = createdBy(instr, state.config.config.Shell, state.scope);
    let work: Parameters<typeof withLayer>[4];
    if (instr.kind === 'RUN') work = (snap) => this.runInSandbox(instr, state, snap.merged, v);
    else if (instr.kind === 'COPY' || instr.kind === 'ADD') {
      const x = expandInstruction(instr, state.scope);
      work = async (snap) => {
        const source = await this.copySource(x, stage);
        try {
          await executeCopy(x, source.source, { dest: snap.merged, workdir: state.config.config.WorkingDir || '/' }, this.plan.file);
        } finally {
          await source.release();
        }
      };
    } else if (instr.kind === 'WORKDIR') {
      state.config = applyMetadata(state.config, instr, state.scope, state.meta, this.plan.file);
      const dir = state.config.config.WorkingDir || '/';
      text = `WORKDIR ${dir}`;
      work = async (snap) => {
        const u = resolveUser(snap.merged, state.config.config.User);
        makeWorkdir(snap.merged, dir, u);
      };
    } else throw new LbuildError(`${instr.kind} does not make a layer`);
    const layer = await withLayer(o.store, this.snapshotter, state.layers, this.mtimeClamp, work);
    state.config = configWithLayer(state.config, layer.diffId, { created: this.created, created_by: text });
    return layer;
  }

  private async copySource(x: CopyInstr, stage: Stage): Promise<{ source: CopySource; release(): Promise<void> }> {
    if (x.from === undefined) {
      const ignore = await loadIgnore(this.contextRoot, this.opts.dockerfilePath);
      return { source: { root: this.contextRoot, ignore, keepOwner: false, what: 'the build context' }, release: async () => undefined };
    }
    const ref = resolveFromRef(this.plan.stages, x.from, stage.index, this.plan.file, x.line);
    let layers: Digest[];
    let what: string;
    if (ref.kind === 'stage') {
      const r = this.results.get(ref.index);
      if (!r) throw new DockerfileError(this.plan.file, x.line, `--from=${x.from}: stage not built`);
      layers = r.layers;
      what = `stage ${x.from}`;
    } else if (ref.kind === 'scratch') {
      layers = [];
      what = 'scratch';
    } else {
      layers = [...(await this.imageByRef(ref.ref, x.line)).config.rootfs.diff_ids];
      what = `image ${ref.ref}`;
    }
    const view = await this.snapshotter.view(layers);
    return { source: { root: view.root, keepOwner: true, what }, release: view.release };
  }

  private async runInSandbox(instr: RunInstr, state: StageState, root: string, v: Vertex): Promise<{ stubs: string[] }> {
    const o = this.opts;
    const cfg = state.config.config;
    if (instr.mounts.length) throw new DockerfileError(this.plan.file, instr.line, 'RUN --mount is not supported yet');
    const user = resolveUser(root, cfg.User);
    const env = new Map<string, string>();
    for (const kv of cfg.Env ?? []) {
      const eq = kv.indexOf('=');
      if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    for (const [k, val] of state.scope.runArgs()) if (!env.has(k)) env.set(k, val);
    for (const [k, val] of state.scope.proxyEnv()) if (!env.has(k)) env.set(k, val);
    if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
    if (!env.has('HOME')) env.set('HOME', user.home);
    const cwd = cfg.WorkingDir || '/';
    const stubs = missingMountPoints(root, sandboxMounts('/').filter((m) => m.type === 'bind').map((m) => m.destination));
    // the working directory must exist (BuildKit creates it too); it is part of the layer
    makeWorkdir(root, cwd, { uid: user.uid, gid: user.gid });
    const result = await runContainer(
      {
        root,
        args: commandArgv(instr.cmd, cfg.Shell),
        env: [...env].map(([k, val]) => `${k}=${val}`),
        cwd,
        uid: user.uid,
        gid: user.gid,
        additionalGids: user.additionalGids,
        network: instr.network ?? o.network,
        onLine: (l) => v.log(l),
      },
      path.join(o.store.root, 'runc'),
      o.store.tmpDir,
    );
    if (result.exitCode !== 0) {
      const cmd = instr.cmd.form === 'exec' ? JSON.stringify(instr.cmd.args) : instr.cmd.text;
      const last = result.tail.filter((l) => l.trim() !== '').slice(-1)[0];
      throw new DockerfileError(this.plan.file, instr.line, `RUN ${cmd.split('\n')[0]} exited with code ${result.exitCode}${last ? ` (last output: ${last.trim().slice(0, 200)})` : ''}`);
    }
    return { stubs };
  }
}
