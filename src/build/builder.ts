import { realpathSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tempName } from '../util/fsx.js';
import * as path from 'node:path';
import { BuildRecords, type BuildRecord } from '../cache/records.js';
import { type RecordedStep, explainMiss } from '../cache/explain.js';
import { type KeyInputs, stepKey } from '../cache/key.js';
import { StatCache, sourcesDigest } from '../context/checksum.js';
import { traced } from '../util/trace.js';
import { type IgnoreMatcher, loadIgnore, makeMatcher } from '../context/ignore.js';
import { cleanSource } from '../context/select.js';
import { type CacheRecord, CacheIndex } from '../store/cache.js';
import { pullImage } from '../registry/transfer.js';
import type { ImportedCache } from '../cache/remote.js';
import { type SecretSource, mountKey, prepareMounts, secretRedactor } from './mounts.js';
import { saveBuildInfo } from '../store/buildinfo.js';
import { Lease } from '../store/leases.js';
import { DockerfileError } from '../dockerfile/errors.js';
import type { Instruction, RunInstr } from '../dockerfile/instructions.js';
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
  /** --no-cache: run every step */
  noCache?: boolean;
  /** --no-cache-filter: stages (by name or index) not taken from the cache */
  noCacheFilter?: string[];
  /** --pull: check the registry for base images even when the store has them */
  pull?: boolean;
  insecureRegistries?: string[];
  /** records imported with --cache-from */
  cacheFrom?: ImportedCache;
  /** --allow security.insecure: RUN --security=insecure may run without seccomp, with every capability */
  allowInsecure?: boolean;
  /** --secret sources by id */
  secrets?: ReadonlyMap<string, SecretSource>;
  /** the plan, when the caller already made it from this Dockerfile and these options */
  plan?: BuildPlan;
}

/** One layer step of the build, for reports (DESIGN.md section 7). */
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
  /** the cache key of the stage's last step (or of its base) */
  key: string;
  /** per layer: the step that made it (null for base-image layers) */
  origins: ({ line: number; instruction: string; stage: string } | null)[];
}

interface StageState extends StageResult {
  scope: Scope;
  meta: MetadataState;
  /** the previous layer step of this stage, for "parent changed (step N missed)" */
  lastStep?: { index: number; missed: boolean };
}

/** What a layer step needs to run, computed before deciding whether it runs at all. */
interface PreparedStep {
  inputs: KeyInputs;
  files?: Record<string, string>;
  createdBy: string;
  work: Parameters<typeof withLayer>[4];
}

export interface BuildResult {
  image: StoredImage;
  steps: StepRecord[];
  plan: BuildPlan;
  durationMs: number;
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
  private readonly cache: CacheIndex;
  private readonly records: BuildRecords;
  private previous: BuildRecord | undefined;
  private readonly recorded: RecordedStep[] = [];
  private statCache!: StatCache;
  private ignore: IgnoreMatcher | undefined;
  /** hides --secret values in what RUN prints (made on the first RUN) */
  private redact: ((text: string) => string) | undefined;
  private currentVertex: Vertex | undefined;
  private buildStart = Date.now();
  private readonly lease: Lease;

  /** Cache records to export: mode max, every step built; min, the final image's own steps. */
  async exportRecords(mode: 'min' | 'max'): Promise<CacheRecord[]> {
    // min: the steps of the target stage and the stages it is built FROM (its layers' chain)
    const chain = new Set<string>();
    for (let st: Stage | undefined = this.plan.stages[this.plan.target]; st; st = st.base.kind === 'stage' ? this.plan.stages[st.base.index] : undefined) chain.add(stageLabel(st));
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
    this.cache = new CacheIndex(opts.store.root);
    this.records = new BuildRecords(opts.store.root);
    this.lease = new Lease(opts.store.root);
  }

  async build(): Promise<BuildResult> {
    const o = this.opts;
    this.plan = o.plan ?? planBuild(parseDockerfile(o.dockerfileText, o.dockerfileName), { ...(o.target ? { target: o.target } : {}), buildArgs: o.buildArgs });
    for (const a of unusedBuildArgs(this.plan)) o.progress.warn(`build-arg ${a} was not consumed by any stage`);
    const sde = o.buildArgs.get('SOURCE_DATE_EPOCH') ?? process.env.SOURCE_DATE_EPOCH;
    this.created = creationTime(sde !== undefined ? { SOURCE_DATE_EPOCH: sde } : {});
    this.mtimeClamp = sde !== undefined && sde !== '' ? Number(sde) : undefined;
    this.contextRoot = realpathSync(o.contextDir);
    const started = Date.now();
    this.buildStart = started;
    await this.lease.start();
    const targetLabel = stageLabel(this.plan.stages[this.plan.target] as Stage);
    this.previous = await traced('previous build record', () => this.records.last(o.dockerfilePath, targetLabel));
    this.statCache = await traced('stat cache', () => StatCache.open(path.join(o.store.root, 'cache'), this.contextRoot));
    try {
      for (const idx of this.plan.order) {
        const stage = this.plan.stages[idx] as Stage;
        this.results.set(idx, await this.buildStage(stage));
      }
    } catch (e) {
      await this.lease.release();
      throw e;
    } finally {
      await traced('stat cache save', () => this.statCache.save());
    }
    if (this.statCache.hashed + this.statCache.reused > 0) {
      o.progress.info(`context: ${this.statCache.hashed} file(s) checksummed, ${this.statCache.reused} vouched for by the stat cache`);
    }
    const final = this.results.get(this.plan.target) as StageResult;
    let config = withCreated(final.config, this.created);
    if (o.labels.size) config = withLabels(config, [...o.labels]);
    const image = await traced('commit', () => o.store.commitImage(config, o.tags));
    await saveBuildInfo(o.store.root, image.id, {
      version: 1,
      dockerfile: o.dockerfilePath,
      layers: config.rootfs.diff_ids.map((_, i) => final.origins[i] ?? null),
    });
    await this.lease.release();
    await traced('build record save', () =>
      this.records.save({ version: 1, dockerfile: o.dockerfilePath, target: targetLabel, finished: new Date().toISOString(), steps: this.recorded }),
    );
    return { image, steps: this.steps, plan: this.plan, durationMs: Date.now() - started };
  }

  private async baseOf(stage: Stage): Promise<StageResult> {
    const b = stage.base;
    // BuildKit's empty image: WorkingDir "/" (PATH is added below for every stage)
    if (b.kind === 'scratch') return { config: withWorkdir(emptyConfig(hostPlatform()), '/'), layers: [], key: 'scratch', origins: [] };
    if (b.kind === 'stage') {
      const r = this.results.get(b.index);
      if (!r) throw new LbuildError(`stage ${b.index} was not built before stage ${stage.index}`);
      return r;
    }
    const img = await this.imageByRef(b.ref, stage.from.line);
    return { config: img.config, layers: [...img.config.rootfs.diff_ids], key: `image:${img.manifestDigest}`, origins: img.config.rootfs.diff_ids.map(() => null) };
  }

  /** A base or --from image: from the store, else pulled (always checked with --pull). */
  private async imageByRef(ref: string, line: number): Promise<StoredImage> {
    const o = this.opts;
    if (!o.pull) {
      const local = await o.store.getImage(ref).catch(() => undefined);
      if (local) return local;
    }
    try {
      const v = o.progress.vertex(`[internal] pull ${ref}`);
      const img = await pullImage(o.store, ref, { insecure: o.insecureRegistries ?? [], log: (l) => v.log(l) });
      v.done();
      return img;
    } catch (e) {
      if (e instanceof LbuildError) throw new DockerfileError(this.plan.file, line, `image ${ref}: not in the store and cannot be pulled (${e.message})`);
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
    const state: StageState = { config, layers: [...base.layers], key: base.key, origins: [...base.origins], scope, meta: { cmdSetInStage: false } };
    await this.lease.add(...base.layers);
    const instructions = [...triggers, ...stage.instructions];
    const total = 1 + instructions.filter((i) => LAYER_KINDS.has(i.kind) && !(i.kind === 'WORKDIR' && i.path === '/')).length;
    const label = stageLabel(stage);
    const fromName = stage.base.kind === 'image' ? stage.base.ref : stage.base.kind === 'stage' ? stageLabel(this.plan.stages[stage.base.index] as Stage) : 'scratch';
    o.progress.vertex(`[${label} 1/${total}] FROM ${fromName}`).done();
    let n = 1;
    for (const instr of instructions) {
      if (!this.makesLayer(instr, state)) {
        const text = createdBy(instr, state.config.config.Shell, scope);
        state.config = applyMetadata(state.config, instr, scope, state.meta, this.plan.file);
        if (instr.kind !== 'ONBUILD') state.config = withHistory(state.config, { created: this.created, created_by: text, empty_layer: true });
        continue;
      }
      n++;
      const v = o.progress.vertex(`[${label} ${String(n).padStart(String(total).length)}/${total}] ${instr.text}`);
      this.currentVertex = v;
      const started = Date.now();
      try {
        const r = await this.layerStep(instr, state, stage, v, { label, index: n, firstInStage: n === 2 });
        state.layers.push(r.layer.diffId);
        await this.lease.add(r.layer.diffId);
        state.origins.push({ line: instr.line, instruction: instr.text, stage: label });
        state.key = r.key;
        state.lastStep = { index: n, missed: r.cache === 'miss' };
        this.steps.push({
          stage: label, index: n, total, line: instr.line, instruction: instr.text, cache: r.cache,
          ...(r.reason ? { reason: r.reason } : {}), key: r.key, startMs: started - this.buildStart, durationMs: Date.now() - started,
          ...(r.savedMs !== undefined ? { savedMs: r.savedMs } : {}), layer: r.layer,
        });
        if (r.cache === 'hit') v.cached();
        else v.done();
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        v.error(message);
        this.steps.push({
          stage: label, index: n, total, line: instr.line, instruction: instr.text, cache: 'miss', reason: message,
          key: '', startMs: started - this.buildStart, durationMs: Date.now() - started, layer: null, status: 'failed',
        });
        throw e;
      }
    }
    return { config: state.config, layers: state.layers, key: state.key, origins: state.origins };
  }

  /** RUN, COPY and ADD always make a layer; WORKDIR does unless it resolves to `/` (as BuildKit). */
  private makesLayer(instr: Instruction, state: StageState): boolean {
    if (instr.kind !== 'WORKDIR') return LAYER_KINDS.has(instr.kind);
    const x = expandInstruction(instr, state.scope);
    return resolveWorkdir(state.config.config.WorkingDir, x.path) !== '/';
  }

  private async layerStep(
    instr: Instruction,
    state: StageState,
    stage: Stage,
    v: Vertex,
    at: { label: string; index: number; firstInStage: boolean },
  ): Promise<{ layer: { diffId: Digest; size: number }; key: string; cache: 'hit' | 'miss'; reason?: string; savedMs?: number }> {
    const o = this.opts;
    const prepared = await traced('key', () => this.prepareStep(instr, state, stage));
    {
      const key = stepKey(prepared.inputs);
      const step = { stage: at.label, index: at.index, line: instr.line, instruction: instr.text, key, inputs: prepared.inputs };
      const fileList = prepared.files && prepared.inputs.sources ? await this.records.stageFiles(prepared.inputs.sources, prepared.files, o.store.tmpDir) : undefined;
      const bypass = o.noCache === true || (o.noCacheFilter ?? []).some((f) => f.toLowerCase() === at.label || f === String(stage.index) || f.toLowerCase() === stage.name);
      let rec = bypass ? undefined : await this.cache.get(key);
      if (rec && !(await o.store.content.has(rec.diffId))) rec = undefined;
      const imported = bypass || rec ? undefined : o.cacheFrom?.lookup(key);
      if (imported) {
        // a hit in an imported cache: fetch just this layer, and remember it locally
        await o.cacheFrom?.fetch(o.store, imported);
        rec = { version: 1, key, diffId: imported.diffId, size: await o.store.content.size(imported.diffId), createdBy: imported.createdBy, created: new Date().toISOString(), durationMs: imported.durationMs, lastUsed: new Date().toISOString() };
        await this.cache.put(rec);
      }
      if (rec) {
        await this.lease.add(rec.diffId);
        await this.cache.touch(rec);
        state.config = configWithLayer(state.config, rec.diffId, { created: this.created, created_by: prepared.createdBy });
        this.recorded.push({ ...step, cache: 'hit' });
        await fileList?.commit();
        return { layer: { diffId: rec.diffId, size: rec.size }, key, cache: 'hit', savedMs: rec.durationMs };
      }
      const prevStep = this.previous?.steps.find((p) => p.stage === at.label && p.index === at.index);
      // the previous file list is read only when the sources changed: to name the changed file
      const prevSources = prevStep?.inputs.sources;
      if (prevStep && prevSources && prevSources !== prepared.inputs.sources) prevStep.files ??= await this.records.loadFiles(prevSources);
      const parentMissed = state.lastStep?.missed ? { index: state.lastStep.index } : undefined;
      const cur: typeof step & { files?: Record<string, string> } = prepared.files ? { ...step, files: prepared.files } : { ...step };
      let reason = explainMiss(cur, prevStep, { noCache: bypass, firstInStage: at.firstInStage, ...(parentMissed ? { parentMissed } : {}) });
      // the file lists can hold 100,000s of entries: not kept while the step runs
      delete prepared.files;
      delete cur.files;
      if (prevStep) delete prevStep.files;
      if (at.firstInStage && reason === 'base image changed' && stage.base.kind === 'stage') reason = `parent changed (stage ${stageLabel(this.plan.stages[stage.base.index] as Stage)} changed)`;
      v.log(`cache miss: ${reason}`);
      const started = Date.now();
      const layer = await withLayer(o.store, this.snapshotter, state.layers, this.mtimeClamp, prepared.work, (d) => this.lease.add(d)).catch(async (e: unknown) => {
        await fileList?.discard();
        throw e;
      });
      await fileList?.commit();
      await this.cache.put({
        version: 1, key, diffId: layer.diffId, size: layer.size, createdBy: prepared.createdBy,
        created: new Date().toISOString(), durationMs: Date.now() - started, lastUsed: new Date().toISOString(),
      });
      state.config = configWithLayer(state.config, layer.diffId, { created: this.created, created_by: prepared.createdBy });
      this.recorded.push({ ...step, cache: 'miss' });
      return { layer, key, cache: 'miss', reason };
    }
  }

  /** How a step is keyed (its inputs) and what runs on a miss, kept apart. */
  private async prepareStep(instr: Instruction, state: StageState, stage: Stage): Promise<PreparedStep> {
    const cfg = state.config.config;
    if (instr.kind === 'RUN') {
      // bind mounts are inputs: their content (context) or source stage (from=) is keyed, secrets by id only
      const bindSources: string[] = [];
      for (const m of instr.mounts) {
        if (m.type !== 'bind') continue;
        if (m.options.from !== undefined) bindSources.push((await this.copySource(m.options.from, instr.line, stage)).key ?? '');
        else {
          this.ignore ??= await loadIgnore(this.contextRoot, this.opts.dockerfilePath);
          const src = { root: this.contextRoot, ignore: this.ignore, keepOwner: false, what: 'the build context' };
          bindSources.push((await sourcesDigest(src, [cleanSource(m.options.source ?? '/', this.plan.file, instr.line)], { ignore: this.ignore }, this.statCache)).digest);
        }
      }
      return {
        inputs: {
          parent: state.key,
          op: {
            kind: 'RUN', argv: commandArgv(instr.cmd, cfg.Shell), env: cfg.Env ?? [], user: cfg.User ?? '',
            workdir: cfg.WorkingDir || '/', network: instr.network ?? this.opts.network,
            ...(instr.security === 'insecure' ? { security: 'insecure' } : {}),
            ...(instr.mounts.length ? { mounts: instr.mounts.map(mountKey), bindSources } : {}),
          },
          args: Object.fromEntries(state.scope.runArgs()),
        },
        createdBy: createdBy(instr, cfg.Shell, state.scope),
        work: (snap) => this.runInSandbox(instr, state, stage, snap.merged, undefined),
      };
    }
    if (instr.kind === 'COPY' || instr.kind === 'ADD') {
      const x = expandInstruction(instr, state.scope);
      const from = await this.copySource(x.from, x.line, stage);
      const op: Record<string, unknown> = {
        kind: x.kind, sources: x.sources, dest: x.dest, workdir: cfg.WorkingDir || '/', chown: x.chown ?? null, chmod: x.chmod ?? null,
        exclude: x.exclude, parents: x.parents, heredocs: x.heredocs.map((h) => [h.name, h.content]), from: from.key,
      };
      const inputs: KeyInputs = { parent: state.key, op, args: {} };
      let files: Record<string, string> | undefined;
      if (x.from === undefined) {
        // the key covers exactly the files this COPY selects from the context
        const { source } = await from.open();
        const patterns = x.sources.filter((s) => !s.startsWith('<<')).map((s) => cleanSource(s, this.plan.file, x.line));
        const sel = { ...(this.ignore ? { ignore: this.ignore } : {}), ...(x.exclude.length ? { exclude: makeMatcher(x.exclude) } : {}) };
        const d = await sourcesDigest(source, patterns, sel, this.statCache);
        inputs.sources = d.digest;
        files = d.files;
      }
      return {
        inputs,
        ...(files ? { files } : {}),
        createdBy: createdBy(instr, cfg.Shell, state.scope),
        work: async (snap) => {
          const { source, release } = await from.open();
          try {
            await executeCopy(x, source, { dest: snap.merged, workdir: cfg.WorkingDir || '/' }, this.plan.file);
          } finally {
            await release();
          }
        },
      };
    }
    if (instr.kind === 'WORKDIR') {
      state.config = applyMetadata(state.config, instr, state.scope, state.meta, this.plan.file);
      const dir = state.config.config.WorkingDir || '/';
      const user = state.config.config.User;
      return {
        inputs: { parent: state.key, op: { kind: 'WORKDIR', dir, user: user ?? '' }, args: {} },
        createdBy: `WORKDIR ${dir}`,
        work: async (snap) => {
          makeWorkdir(snap.merged, dir, resolveUser(snap.merged, user));
        },
      };
    }
    throw new LbuildError(`${instr.kind} does not make a layer`);
  }

  /**
   * Where a COPY/ADD reads from. A --from stage or image is mounted only when the step runs
   * (`open`), never for a cache hit.
   */
  private async copySource(from: string | undefined, line: number, stage: Stage): Promise<{ key: string | null; open(): Promise<{ source: CopySource; release(): Promise<void> }> }> {
    if (from === undefined) {
      this.ignore ??= await loadIgnore(this.contextRoot, this.opts.dockerfilePath);
      const source: CopySource = { root: this.contextRoot, ignore: this.ignore, keepOwner: false, what: 'the build context' };
      return { key: null, open: async () => ({ source, release: async () => undefined }) };
    }
    const ref = resolveFromRef(this.plan.stages, from, stage.index, this.plan.file, line);
    let layers: Digest[];
    let what: string;
    let key: string;
    if (ref.kind === 'stage') {
      const r = this.results.get(ref.index);
      if (!r) throw new DockerfileError(this.plan.file, line, `--from=${from}: stage not built`);
      layers = r.layers;
      what = `stage ${from}`;
      key = `stage:${r.key}`;
    } else if (ref.kind === 'scratch') {
      layers = [];
      what = 'scratch';
      key = 'scratch';
    } else {
      const img = await this.imageByRef(ref.ref, line);
      layers = [...img.config.rootfs.diff_ids];
      what = `image ${ref.ref}`;
      key = `image:${img.manifestDigest}`;
    }
    return {
      key,
      open: async () => {
        const view = await this.snapshotter.view(layers);
        return { source: { root: view.root, keepOwner: true, what }, release: view.release };
      },
    };
  }

  private async runInSandbox(instr: RunInstr, state: StageState, stage: Stage, root: string, v: Vertex | undefined): Promise<{ stubs: string[] }> {
    const o = this.opts;
    const cfg = state.config.config;
    const log = v ?? this.currentVertex;
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
    const insecure = instr.security === 'insecure';
    this.redact ??= await secretRedactor(this.opts.secrets ?? new Map());
    const redact = this.redact;
    if (insecure && !o.allowInsecure) throw new DockerfileError(this.plan.file, instr.line, 'RUN --security=insecure needs --allow security.insecure on the command line');
    const stubs = missingMountPoints(root, sandboxMounts('/').filter((m) => m.type === 'bind').map((m) => m.destination));
    this.ignore ??= await loadIgnore(this.contextRoot, this.opts.dockerfilePath);
    const extra = await prepareMounts(instr.mounts, root, cwd, {
      file: this.plan.file,
      line: instr.line,
      store: this.opts.store,
      context: { root: this.contextRoot, ignore: this.ignore, keepOwner: false, what: 'the build context' },
      secrets: this.opts.secrets ?? new Map(),
      view: async (from) => (await this.copySource(from, instr.line, stage)).open().then((x) => ({ root: x.source.root, release: x.release })),
    });
    stubs.push(...extra.stubs);
    // `RUN <<EOF` whose body starts with #!: the body is a script for that interpreter; it is
    // mounted under /dev (a tmpfs, so nothing reaches the layer) and executed, as BuildKit does
    let args = commandArgv(instr.cmd, cfg.Shell);
    const only = instr.heredocs.length === 1 ? instr.heredocs[0] : undefined;
    if (only && instr.cmd.form === 'shell' && instr.cmd.text === only.content.replace(/\n$/, '') && only.content.startsWith('#!')) {
      const script = path.join(o.store.tmpDir, tempName('script'));
      await fsp.writeFile(script, only.content, { mode: 0o755 });
      extra.mounts.push({ destination: `/dev/pipes/${only.name}`, type: 'bind', source: script, options: ['rbind', 'ro'] });
      const previous = extra.release;
      extra.release = async () => {
        await previous();
        await fsp.rm(script, { force: true });
      };
      args = [`/dev/pipes/${only.name}`];
    }
    // the working directory must exist (BuildKit creates it too); it is part of the layer
    makeWorkdir(root, cwd, { uid: user.uid, gid: user.gid });
    const result = await runContainer(
      {
        root,
        args,
        env: [...env, ...extra.env].map(([k, val]) => `${k}=${val}`),
        cwd,
        uid: user.uid,
        gid: user.gid,
        additionalGids: user.additionalGids,
        network: instr.network ?? o.network,
        insecure,
        onLine: (l) => log?.log(redact(l)),
        extraMounts: extra.mounts,
      },
      path.join(o.store.root, 'runc'),
      o.store.tmpDir,
    ).finally(() => extra.release());
    if (result.exitCode !== 0) {
      const cmd = instr.cmd.form === 'exec' ? JSON.stringify(instr.cmd.args) : instr.cmd.text;
      // a command killed by a full disk says so in its own words; name the real cause
      const fs = await statfs(o.store.root).catch(() => undefined);
      if (fs && fs.bavail * fs.bsize < 1024 * 1024) {
        throw new DockerfileError(this.plan.file, instr.line, `RUN ${cmd.split('\n')[0]} failed: no space left on the store's disk (${o.store.root})`);
      }
      const last = result.tail.map(redact).filter((l) => l.trim() !== '').slice(-1)[0];
      throw new DockerfileError(this.plan.file, instr.line, `RUN ${cmd.split('\n')[0]} exited with code ${result.exitCode}${last ? ` (last output: ${last.trim().slice(0, 200)})` : ''}`);
    }
    return { stubs };
  }
}
