import * as os from 'node:os';
import type { ExtraHost } from '../runtime/runc.js';
import { realpathSync } from 'node:fs';
import { type RecordedStep, alignSteps } from '../cache/explain.js';
import { parentId } from '../cache/key.js';
import { BuildRecords, type BuildRecord } from '../cache/records.js';
import { StatCache } from '../context/checksum.js';
import { type IgnoreMatcher, loadIgnore } from '../context/ignore.js';
import type { CopySource } from '../context/select.js';
import { DockerfileError } from '../dockerfile/errors.js';
import type { Instruction, RunInstr } from '../dockerfile/instructions.js';
import { parseDockerfile } from '../dockerfile/parse.js';
import { type BuildPlan, type Stage, planBuild, resolveFromRef, stageLabel, unusedBuildArgs } from '../dockerfile/plan.js';
import { type Platform, configPlatform, formatPlatform, hostPlatform, parsePlatform, platformServes, samePlatform } from '../oci/platform.js';
import { LbuildError, LocatedError } from '../errors.js';
import { creationTime } from '../image/import.js';
import { emptyConfig, sameButCreated, withCreated, withLabels, withWorkdir } from '../oci/config.js';
import { parseImageConfig } from '../oci/validate.js';
import { layerContentSizes } from '../store/layer-size.js';
import { SshAgents, type SshSource } from './ssh-agent.js';
import { killAll } from '../runtime/runc.js';
import { type Digest, sha256 } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import type { Progress } from '../report/progress.js';
import { pullImage } from '../registry/transfer.js';
import { Snapshotter } from '../snapshot/overlay.js';
import { saveBuildInfo } from '../store/buildinfo.js';
import { type CacheRecord, CacheIndex } from '../store/cache.js';
import { Lease } from '../store/leases.js';
import type { Store, StoredImage } from '../store/store.js';
import { traced } from '../util/trace.js';
import type { ImportedCache } from '../cache/remote.js';
import { type SecretSource, secretRedactor } from './mounts.js';
import { Solver } from './solver.js';
import { type LayerSource, LayerSources } from './sources.js';
import { prefetchCopy, prepareCopy } from './steps/copy.js';
import { SourcesPrefetch } from './prefetch.js';
import { prepareRun } from './steps/run.js';
import { type PreparedStep, type StepEnv, type StepState } from './steps/step.js';
import { LAYER_KINDS, type StageEval, afterLayerStep, applyMetadataStep, beforeLayerStep, makesLayer, startStage } from './stage.js';
import { prepareWorkdir } from './steps/workdir.js';

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
  /** --add-host entries for RUN's /etc/hosts */
  extraHosts?: readonly ExtraHost[];
  /** --ssh sources, by id */
  ssh?: ReadonlyMap<string, SshSource>;
  /** --build-context NAME=DIR|docker-image://REF: what FROM NAME, COPY --from=NAME and from=NAME take */
  namedContexts?: ReadonlyMap<string, NamedContext>;
  labels: Map<string, string>;
  progress: Progress;
  /** --no-cache: run every step */
  noCache?: boolean;
  /** --no-cache-filter: stages (by name or index) not taken from the cache */
  noCacheFilter?: string[];
  /** --pull (always): check the registry for base images even when the store has them; never: only the store */
  pull?: boolean | 'never';
  insecureRegistries?: string[];
  /** records imported with --cache-from */
  cacheFrom?: ImportedCache;
  /** --allow security.insecure: RUN --security=insecure may run without seccomp, with every capability */
  allowInsecure?: boolean;
  /** --secret sources by id */
  secrets?: ReadonlyMap<string, SecretSource>;
  /** the plan, when the caller already made it from this Dockerfile and these options */
  plan?: BuildPlan;
  /** --platform: what the image is for (default this host's) */
  platform?: Platform;
  /** put before every stage name (a build of several platforms names each one's stages apart) */
  labelPrefix?: string;
}

/** One layer step of the build, for reports (DESIGN.md section 7). */
/** A --build-context value: a directory, or an image that stands in for a name. */
export type NamedContext = { kind: 'dir'; path: string } | { kind: 'image'; ref: string };

export interface StepRecord {
  stage: string;
  index: number;
  total: number;
  line: number;
  instruction: string;
  cache: 'hit' | 'miss';
  reason?: string;
  key: string;
  /** when the step started, from the start of the build */
  startMs: number;
  durationMs: number;
  /** for hits: how long the step took when it last ran for real */
  savedMs?: number;
  layer: { diffId: Digest; size: number } | null;
  /** set on the step that failed the build */
  status?: 'failed';
}

interface StageResult {
  config: ImageConfig;
  layers: Digest[];
  /** chain ID of the layers ('' for none): what a step on top of them is keyed on */
  chain: string;
  /** the key of the stage's last step (or its base), for reports */
  key: string;
  /** per layer: the step that made it (null for base-image layers) */
  origins: ({ line: number; instruction: string; stage: string } | null)[];
}

interface StageState extends StageResult, StageEval {
  /** what the stage's steps run as: FROM --platform, else the build's platform */
  platform: Platform;
  /** the previous layer step of this stage, for "parent changed (step N missed)" */
  lastStep?: { index: number; missed: boolean };
}

export interface BuildResult {
  image: StoredImage;
  steps: StepRecord[];
  plan: BuildPlan;
  durationMs: number;
}

/**
 * An instruction as reports, records and history lines keep it: a very long one (a 10 MB RUN
 * line) cut to 1,000 characters plus a hash of the whole, so two different ones never look alike.
 */
function recordedText(text: string): string {
  return text.length > 1000 ? `${text.slice(0, 1000)}… [${sha256(text).slice(7, 19)}]` : text;
}

function nextChain(chain: string, diffId: Digest): string {
  return chain === '' ? diffId : sha256(`${chain} ${diffId}`);
}

function chainOf(layers: readonly Digest[]): string {
  return layers.reduce((c, d) => nextChain(c, d), '');
}

/**
 * The build: stages in dependency order, each from its base (image, stage or scratch) through
 * its instructions. Metadata instructions edit the config; layer steps are prepared by their
 * kind's module (steps/) and decided by the solver.
 */
export class Builder {
  private readonly snapshotter: Snapshotter;
  private readonly ssh: SshAgents;
  private readonly layerSources: LayerSources;
  private readonly results = new Map<number, StageResult>();
  private readonly steps: StepRecord[] = [];
  private plan!: BuildPlan;
  private created!: string;
  private epoch: string | null = null;
  private mtimeClamp: number | undefined;
  private contextRoot!: string;
  private readonly cache: CacheIndex;
  private readonly records: BuildRecords;
  private previous: BuildRecord | undefined;
  private readonly recorded: RecordedStep[] = [];
  private statCache!: StatCache;
  private ignore: IgnoreMatcher | undefined;
  private readonly prefetch = new SourcesPrefetch();
  private redact: (text: string) => string = (t) => t;
  private solver!: Solver;
  private buildStart = Date.now();
  private readonly lease: Lease;
  /** base and --from images of this build, by the name the Dockerfile gives */
  private readonly images = new Map<string, Promise<StoredImage>>();
  /** the first error of a stage: the other stages start no more steps */
  private failure: unknown;
  /** the platform the image is built for */
  private readonly platform: Platform;

  /** Cache records to export: mode max, every step built; min, the final image's own steps. */
  async exportRecords(mode: 'min' | 'max'): Promise<CacheRecord[]> {
    // min: the steps of the target stage and the stages it is built FROM (its layers' chain)
    const chain = new Set<string>();
    for (let st: Stage | undefined = this.plan.stages[this.plan.target]; st; st = st.base.kind === 'stage' ? this.plan.stages[st.base.index] : undefined) chain.add(this.labelOf(st));
    const out: CacheRecord[] = [];
    for (const s of this.recorded) {
      const r = await this.cache.get(s.key);
      if (r && (mode === 'max' || chain.has(s.stage))) out.push(r);
    }
    return out;
  }

  /** The steps done so far (all of them after build(); up to the failing one after a failure). */
  get stepsSoFar(): readonly StepRecord[] {
    return this.steps;
  }

  constructor(private readonly opts: BuildOptions) {
    this.snapshotter = new Snapshotter(opts.store);
    this.ssh = new SshAgents(opts.ssh ?? new Map(), opts.store.tmpDir);
    this.layerSources = new LayerSources(opts.store.root, this.snapshotter);
    this.cache = new CacheIndex(opts.store.root);
    this.records = new BuildRecords(opts.store.root);
    this.lease = new Lease(opts.store.root);
    this.platform = opts.platform ?? hostPlatform();
  }

  async build(): Promise<BuildResult> {
    const o = this.opts;
    this.plan = o.plan ?? planBuild(parseDockerfile(o.dockerfileText, o.dockerfileName), { ...(o.target ? { target: o.target } : {}), buildArgs: o.buildArgs, platform: this.platform });
    for (const a of unusedBuildArgs(this.plan)) o.progress.warn(`build-arg ${a} was not consumed by any stage`);
    const sde = o.buildArgs.get('SOURCE_DATE_EPOCH') ?? process.env.SOURCE_DATE_EPOCH;
    this.created = creationTime(sde !== undefined ? { SOURCE_DATE_EPOCH: sde } : {});
    this.mtimeClamp = sde !== undefined && sde !== '' ? Number(sde) : undefined;
    this.epoch = this.mtimeClamp !== undefined ? String(this.mtimeClamp) : null;
    this.contextRoot = realpathSync(o.contextDir);
    this.redact = await secretRedactor(o.secrets ?? new Map());
    this.solver = new Solver(o.store, this.snapshotter, this.cache, this.records, this.lease, o.cacheFrom, this.mtimeClamp);
    const started = Date.now();
    this.buildStart = started;
    await this.lease.start();
    const targetLabel = this.labelOf(this.plan.stages[this.plan.target] as Stage);
    this.previous = await traced('previous build record', () => this.records.last(o.dockerfilePath, targetLabel));
    this.statCache = await traced('stat cache', () => StatCache.open(o.store.root, this.contextRoot));
    try {
      await this.buildStages();
    } catch (e) {
      await this.lease.release();
      throw e;
    } finally {
      this.prefetch.stop();
      await this.ssh.close();
      await traced('stat cache save', () => this.statCache.save());
    }
    if (this.statCache.hashed + this.statCache.reused > 0) {
      o.progress.info(`context: ${this.statCache.hashed} file(s) checksummed, ${this.statCache.reused} vouched for by the stat cache`);
    }
    const final = this.results.get(this.plan.target) as StageResult;
    let config = withCreated(final.config, this.created);
    if (o.labels.size) config = withLabels(config, [...o.labels]);
    config = await this.keepPreviousCreated(config);
    const image = await traced('commit', () => o.store.commitImage(config, o.tags));
    await saveBuildInfo(o.store.root, image.id, {
      version: 1,
      dockerfile: o.dockerfilePath,
      layers: config.rootfs.diff_ids.map((_, i) => final.origins[i] ?? null),
    });
    await this.lease.release();
    await traced('build record save', () =>
      this.records.save({ version: 1, dockerfile: o.dockerfilePath, target: targetLabel, finished: new Date().toISOString(), steps: this.recorded, image: image.id }),
    );
    return { image, steps: this.steps, plan: this.plan, durationMs: Date.now() - started };
  }

  /**
   * As BuildKit: a rebuild where every step hit and the config differs from the last build's
   * only in its timestamps gives that build's image again (its ID), so CI pushes no new digest
   * for nothing.
   */
  private async keepPreviousCreated(config: ImageConfig): Promise<ImageConfig> {
    const prev = this.previous?.image;
    if (!prev || !this.steps.every((s) => s.cache === 'hit') || !(await this.opts.store.content.has(prev))) return config;
    const bytes = await this.opts.store.content.readBytes(prev);
    if (sha256(bytes) !== prev) return config;
    const old = parseImageConfig(bytes, `config ${prev}`);
    return sameButCreated(old, config) ? old : config;
  }

  private async baseOf(stage: Stage, platform: Platform): Promise<StageResult> {
    const b = stage.base;
    // BuildKit's empty image: WorkingDir "/" (PATH is added below for every stage)
    if (b.kind === 'scratch') return { config: withWorkdir(emptyConfig(platform), '/'), layers: [], chain: '', key: 'scratch', origins: [] };
    if (b.kind === 'stage') {
      const r = this.results.get(b.index);
      if (!r) throw new LbuildError(`stage ${b.index} was not built before stage ${stage.index}`);
      return r;
    }
    const img = await this.imageByRef(b.ref, stage.from.line, platform);
    const layers = [...img.config.rootfs.diff_ids];
    return { config: img.config, layers, chain: chainOf(layers), key: `image:${img.manifestDigest}`, origins: layers.map(() => null) };
  }

  /** A base or --from image for a platform: from the store, else pulled (always checked with --pull). */
  private imageByRef(ref: string, line: number, platform: Platform): Promise<StoredImage> {
    // stages built at once that name one image look it up (or pull it) once
    const id = `${ref} ${formatPlatform(platform)}`;
    let p = this.images.get(id);
    if (!p) {
      p = this.findImage(ref, line, platform);
      this.images.set(id, p);
    }
    return p;
  }

  private async findImage(ref: string, line: number, platform: Platform): Promise<StoredImage> {
    const o = this.opts;
    const named = o.namedContexts?.get(ref);
    if (named?.kind === 'dir') throw new DockerfileError(this.plan.file, line, `${ref}: the build context ${ref} is a directory (${named.path}); only COPY --from can take it (an image: --build-context ${ref}=docker-image://REF)`);
    if (named?.kind === 'image') ref = named.ref;
    const want = formatPlatform(platform);
    const host = samePlatform(platform, hostPlatform());
    /** an image of another platform under that name: not this build's base */
    let other: Platform | undefined;
    if (o.pull !== true) {
      // a multi-platform image of the store gives the stage's platform, if it has it
      const local = await o.store.getImage(ref, platform).catch(() => undefined);
      if (local && platformServes(configPlatform(local.config), platform)) return local;
      if (local) other = configPlatform(local.config);
      if (o.pull === 'never') {
        if (other) throw new DockerfileError(this.plan.file, line, `image ${ref} in the store is ${formatPlatform(other)}, not ${want}, and --pull=never forbids pulling the ${want} one (lbuild pull --platform ${want} ${ref})`);
        throw new DockerfileError(this.plan.file, line, `image ${ref}: not in the store, and --pull=never forbids pulling it`);
      }
    }
    try {
      const v = o.progress.vertex(`[internal] pull ${ref}${host ? '' : ` (${want})`}`);
      // another platform's base is kept untagged: the name stays on the image it names now
      const img = await pullImage(o.store, ref, { insecure: o.insecureRegistries ?? [], log: (l) => v.log(l), platform, ...(host ? {} : { untagged: true }) });
      v.done();
      return img;
    } catch (e) {
      if (!(e instanceof LbuildError)) throw e;
      if (other) throw new DockerfileError(this.plan.file, line, `image ${ref} in the store is ${formatPlatform(other)}, not ${want}, and the ${want} one cannot be pulled (${e.message})`);
      throw new DockerfileError(this.plan.file, line, `image ${ref}: not in the store and cannot be pulled (${e.message})`);
    }
  }

  /**
   * A stage's name in progress, reports and build records: with the platform in front when one
   * build makes several (`linux/arm64 build`), so each platform has its own records.
   */
  private labelOf(stage: Stage): string {
    return this.opts.labelPrefix ? `${this.opts.labelPrefix} ${stageLabel(stage)}` : stageLabel(stage);
  }

  /** What a stage runs as: its FROM --platform (e.g. $BUILDPLATFORM), else the build's platform. */
  private stagePlatform(stage: Stage): Platform {
    if (stage.from.platform === undefined) return this.platform;
    const text = this.plan.globals.expand(stage.from.platform, stage.from.line);
    try {
      return parsePlatform(text, 'FROM --platform');
    } catch (e) {
      throw new DockerfileError(this.plan.file, stage.from.line, e instanceof Error ? e.message : String(e));
    }
  }

  /** The previous build's steps of a stage, aligned with this build's candidate layer steps. */
  private alignPrevious(label: string, instructions: readonly Instruction[]): Map<Instruction, RecordedStep> {
    const prev = (this.previous?.steps ?? []).filter((p) => p.stage === label);
    const cur = instructions.filter((i) => LAYER_KINDS.has(i.kind));
    const matched = alignSteps(prev.map((p) => p.instruction), cur.map((i) => recordedText(i.text)));
    const out = new Map<Instruction, RecordedStep>();
    matched.forEach((pi, ci) => {
      const p = pi === undefined ? undefined : prev[pi];
      if (p) out.set(cur[ci] as Instruction, p);
    });
    return out;
  }

  /**
   * Every stage the target needs, each as soon as the stages it uses are built, several at once
   * (at most one per CPU): two independent stages take the time of the longer one, as in
   * BuildKit. A stage whose --from names are only known when it runs (`--from=$X`) waits for all
   * stages before it. After a failure no step starts and running commands are stopped; then the
   * first error is thrown. Steps are recorded in plan order whatever order they ran in.
   */
  private async buildStages(): Promise<void> {
    const order = this.plan.order;
    const limit = Math.max(1, Math.min(os.availableParallelism(), 8));
    const waiting: (() => void)[] = [];
    let active = 0;
    const acquire = async (): Promise<void> => {
      while (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      active++;
    };
    const release = (): void => {
      active--;
      waiting.shift()?.();
    };
    const runs = new Map<number, Promise<void>>();
    const run = (idx: number): Promise<void> => {
      const known = runs.get(idx);
      if (known) return known;
      const stage = this.plan.stages[idx] as Stage;
      const deps = hasDynamicFrom(stage) ? order.slice(0, order.indexOf(idx)) : stage.deps;
      const p = (async () => {
        await Promise.all(deps.map(run));
        await acquire();
        try {
          if (this.failure === undefined) this.results.set(idx, await this.buildStage(stage));
        } catch (e) {
          if (this.failure === undefined) {
            this.failure = e;
            // BuildKit cancels the sibling stages: their running commands are stopped (their own
            // errors are not the one reported)
            await killAll();
          }
          throw e;
        } finally {
          release();
        }
      })();
      runs.set(idx, p);
      return p;
    };
    await Promise.allSettled(order.map(run));
    const pos = (label: string): number => order.findIndex((i) => this.labelOf(this.plan.stages[i] as Stage) === label);
    const byPlan = <T extends { stage: string; index: number }>(a: T, b: T): number => pos(a.stage) - pos(b.stage) || a.index - b.index;
    this.steps.sort(byPlan);
    this.recorded.sort(byPlan);
    if (this.failure !== undefined) throw this.failure;
  }

  private async buildStage(stage: Stage): Promise<StageResult> {
    const o = this.opts;
    const platform = this.stagePlatform(stage);
    const base = await this.baseOf(stage, platform);
    const ev = startStage(this.plan, stage, base.config);
    const state: StageState = { ...ev, platform, layers: [...base.layers], chain: base.chain, key: base.key, origins: [...base.origins] };
    // leased under the collection lock: a concurrent rmi and prune cannot take the base from under the build
    await o.store.holdLayers(this.lease, base.layers);
    const total = 1 + ev.instructions.filter((i) => LAYER_KINDS.has(i.kind) && !(i.kind === 'WORKDIR' && i.path === '/')).length;
    const label = this.labelOf(stage);
    const previous = this.alignPrevious(label, ev.instructions);
    const bypass = o.noCache === true || (o.noCacheFilter ?? []).some((f) => f.toLowerCase() === label || f === String(stage.index) || f.toLowerCase() === stage.name);
    const fromName = stage.base.kind === 'image' ? stage.base.ref : stage.base.kind === 'stage' ? stageLabel(this.plan.stages[stage.base.index] as Stage) : 'scratch';
    o.progress.vertex(`[${label} 1/${total}] FROM ${fromName}`).done();
    let n = 1;
    for (const [at, instr] of ev.instructions.entries()) {
      if (!makesLayer(state, instr)) {
        applyMetadataStep(state, instr, this.plan.file, this.created);
        continue;
      }
      n++;
      // another stage failed: start nothing more (its error is the one reported)
      if (this.failure !== undefined) throw this.failure;
      const shown = instr.text.length > 300 ? `${instr.text.slice(0, 300)}…` : instr.text;
      const v = o.progress.vertex(`[${label} ${String(n).padStart(String(total).length)}/${total}] ${shown}`);
      const started = Date.now();
      try {
        beforeLayerStep(state, instr, this.plan.file);
        const prepared = await traced('key', () => this.prepare(instr, state, stage));
        if (instr.kind === 'RUN') this.walkAhead(instr, ev.instructions.slice(at + 1), state);
        const r = await this.solver.solve(prepared, {
          layers: state.layers,
          bypass,
          at: { label, index: n, line: instr.line, instruction: recordedText(instr.text), firstInStage: n === 2 },
          previous: previous.get(instr),
          ...(state.lastStep?.missed ? { parentMissed: { index: state.lastStep.index } } : {}),
          ...(stage.base.kind === 'stage' ? { baseStage: this.labelOf(this.plan.stages[stage.base.index] as Stage) } : {}),
          vertex: v,
        });
        this.recorded.push(r.recorded);
        afterLayerStep(state, r.layer.diffId, this.created, prepared.createdBy);
        state.layers.push(r.layer.diffId);
        state.chain = nextChain(state.chain, r.layer.diffId);
        state.origins.push({ line: instr.line, instruction: recordedText(instr.text), stage: label });
        state.key = r.key;
        state.lastStep = { index: n, missed: r.cache === 'miss' };
        this.steps.push({
          stage: label, index: n, total, line: instr.line, instruction: recordedText(instr.text), cache: r.cache,
          ...(r.reason ? { reason: r.reason } : {}), key: r.key, startMs: started - this.buildStart, durationMs: Date.now() - started,
          ...(r.savedMs !== undefined ? { savedMs: r.savedMs } : {}),
          // the size Docker shows for the layer (its files), not its tar's
          layer: { diffId: r.layer.diffId, size: (await layerContentSizes(o.store, [r.layer.diffId])).get(r.layer.diffId) ?? r.layer.size },
        });
        if (r.cache === 'hit') v.cached();
        else v.done();
      } catch (caught) {
        const e = stepError(caught, this.plan.file, instr.line, o.store.root);
        // stopped because a step of another stage failed: say so, not how it died
        const cancelled = this.failure !== undefined && this.failure !== caught;
        const message = cancelled ? 'cancelled: a step of another stage failed' : e instanceof Error ? e.message : String(e);
        if (cancelled) {
          v.error(message);
          throw e;
        }
        v.error(message);
        this.steps.push({
          stage: label, index: n, total, line: instr.line, instruction: recordedText(instr.text), cache: 'miss', reason: message,
          key: '', startMs: started - this.buildStart, durationMs: Date.now() - started, layer: null, status: 'failed',
        });
        throw e;
      }
    }
    return { config: state.config, layers: state.layers, chain: state.chain, key: state.key, origins: state.origins };
  }

  /**
   * The step kind's own module keys the step and knows how to run it; a step for another
   * platform than the host's has it in its key (the same instruction makes other bytes there).
   */
  private async prepare(instr: Instruction, state: StageState, stage: Stage): Promise<PreparedStep> {
    const s: StepState = { config: state.config, scope: state.scope, parent: parentId(state.chain), epoch: this.epoch, platform: state.platform };
    const env = this.stepEnv();
    let p: PreparedStep;
    if (instr.kind === 'RUN') p = await prepareRun(instr, s, stage, env);
    else if (instr.kind === 'COPY' || instr.kind === 'ADD') p = await prepareCopy(instr, s, stage, env);
    else if (instr.kind === 'WORKDIR') p = prepareWorkdir(instr, s);
    else throw new LbuildError(`${instr.kind} does not make a layer`);
    if (!samePlatform(state.platform, hostPlatform())) p.inputs = { ...p.inputs, platform: formatPlatform(state.platform) };
    return p;
  }

  /**
   * While a RUN runs, the context walk of the COPY that is the next layer step (issue 17.1): the
   * main thread mostly waits on the runtime then. One step ahead only: two walks at once would
   * hold two listings of a large context.
   */
  private walkAhead(run: RunInstr, rest: readonly Instruction[], state: StageState): void {
    for (const next of rest) {
      if (next.kind === 'COPY' || next.kind === 'ADD') {
        prefetchCopy(run, next, state.scope, this.stepEnv());
        return;
      }
      if (LAYER_KINDS.has(next.kind)) return;
    }
  }

  private stepEnv(): StepEnv {
    const o = this.opts;
    return {
      file: this.plan.file,
      store: o.store,
      statCache: this.statCache,
      context: () => this.contextSource(),
      layerSource: (from, line, stage) => this.layerSource(from, line, stage),
      layerSources: this.layerSources,
      network: o.network,
      extraHosts: o.extraHosts ?? [],
      ssh: this.ssh,
      namedDir: (name) => {
        const n = o.namedContexts?.get(name);
        return n?.kind === 'dir' ? { root: n.path, keepOwner: false, what: `the build context ${name}` } : undefined;
      },
      secrets: o.secrets ?? new Map(),
      allowInsecure: o.allowInsecure === true,
      redact: this.redact,
      prefetch: this.prefetch,
    };
  }

  private async contextSource(): Promise<CopySource> {
    this.ignore ??= await loadIgnore(this.contextRoot, this.opts.dockerfilePath);
    return { root: this.contextRoot, ignore: this.ignore, keepOwner: false, what: 'the build context' };
  }

  /** What --from / from= names: a stage built earlier, scratch, or an image (pulled if need be). */
  private async layerSource(from: string, line: number, stage: Stage): Promise<LayerSource> {
    const ref = resolveFromRef(this.plan.stages, from, stage.index, this.plan.file, line);
    if (ref.kind === 'stage') {
      const r = this.results.get(ref.index);
      if (!r) throw new DockerfileError(this.plan.file, line, `--from=${from}: stage not built`);
      const name = stageLabel(this.plan.stages[ref.index] as Stage);
      return { id: `stage:${name}`, what: `stage ${name}`, layers: r.layers, chain: r.chain };
    }
    if (ref.kind === 'scratch') return { id: 'scratch', what: 'scratch', layers: [], chain: '' };
    const img = await this.imageByRef(ref.ref, line, this.stagePlatform(stage));
    const layers = [...img.config.rootfs.diff_ids];
    return { id: `image:${img.manifestDigest}`, what: `image ${ref.ref}`, layers, chain: chainOf(layers) };
  }
}

/** A COPY --from or RUN --mount from= whose value is expanded when the stage runs. */
function hasDynamicFrom(stage: Stage): boolean {
  return stage.instructions.some((ins) =>
    (ins.kind === 'COPY' && ins.from?.includes('$') === true) || (ins.kind === 'RUN' && ins.mounts.some((m) => m.options.from?.includes('$') === true)));
}

/**
 * A step's failure as the user reads it: always naming its line (`--chown=nope: …` alone does
 * not say where), and a full or read-only store disk in words rather than as an errno.
 */
function stepError(e: unknown, file: string, line: number, root: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (!(e instanceof LbuildError) && code === 'ENOSPC') return new LocatedError(`${file}:${line}: no space left on the store's disk (${root})`);
  if (!(e instanceof LbuildError) && code === 'EROFS') return new LocatedError(`${file}:${line}: the store is on a read-only file system (${root})`);
  if (e instanceof LbuildError && !(e instanceof LocatedError) && !e.message.startsWith(`${file}:`)) e.message = `${file}:${line}: ${e.message}`;
  return e;
}
