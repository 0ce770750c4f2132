import { type RecordedStep, explainMiss } from '../cache/explain.js';
import { type KeyInputs, stepKey } from '../cache/key.js';
import type { BuildRecords } from '../cache/records.js';
import type { ImportedCache } from '../cache/remote.js';
import type { Digest } from '../oci/digest.js';
import type { Vertex } from '../report/progress.js';
import type { Snapshotter } from '../snapshot/overlay.js';
import type { CacheIndex, CacheRecord } from '../store/cache.js';
import type { Lease } from '../store/leases.js';
import type { Store } from '../store/store.js';
import { withLayer } from './layerstep.js';
import { type PreviousLayer, ReuseConflict } from './reuse.js';
import { FILE_INDEX, readFileIndex } from '../diff/file-index.js';
import * as path from 'node:path';
import type { PreparedStep } from './steps/step.js';

export interface SolvedStep {
  layer: { diffId: Digest; size: number };
  key: string;
  cache: 'hit' | 'miss';
  reason?: string;
  savedMs?: number;
  /** the step's record for the next build's explanations */
  recorded: RecordedStep;
}

export interface SolveContext {
  /** the layers the step runs on */
  layers: readonly Digest[];
  /** --no-cache, or a --no-cache-filter stage */
  bypass: boolean;
  at: { label: string; index: number; line: number; instruction: string; firstInStage: boolean };
  /** the same step in the previous build (aligned), for the miss reason */
  previous: RecordedStep | undefined;
  parentMissed?: { index: number };
  /** for the first step of a stage built on another stage */
  baseStage?: string;
  vertex: Vertex;
}

/**
 * Decides one layer step: a local cache record, else an imported one, else run it. A run whose
 * inputs moved while it ran (a context file edited between keying and copying) is recorded
 * under the key of what it really read, never under the key it was looked up with.
 */
export class Solver {
  constructor(
    private readonly store: Store,
    private readonly snapshotter: Snapshotter,
    private readonly cache: CacheIndex,
    private readonly records: BuildRecords,
    private readonly lease: Lease,
    private readonly cacheFrom: ImportedCache | undefined,
    private readonly mtimeClamp: number | undefined,
  ) {}

  private async lookup(key: string, bypass: boolean): Promise<CacheRecord | undefined> {
    if (bypass) return undefined;
    const rec = await this.cache.get(key);
    // a hit only if its layer is leased while still there: a prune running now cannot take it later
    if (rec && (await this.store.holdLayers(this.lease, [rec.diffId])).length === 0) return rec;
    const imported = this.cacheFrom?.lookup(key);
    if (!imported) return undefined;
    // a hit in an imported cache: fetch just this layer, and remember it locally
    await this.cacheFrom?.fetch(this.store, imported);
    if ((await this.store.holdLayers(this.lease, [imported.diffId])).length) return undefined;
    const now = new Date().toISOString();
    const r: CacheRecord = { version: 1, key, diffId: imported.diffId, size: await this.store.content.size(imported.diffId), createdBy: imported.createdBy, created: now, durationMs: imported.durationMs, lastUsed: now };
    await this.cache.put(r);
    return r;
  }

  async solve(prepared: PreparedStep, c: SolveContext): Promise<SolvedStep> {
    const key = stepKey(prepared.inputs);
    const step = { stage: c.at.label, index: c.at.index, line: c.at.line, instruction: c.at.instruction, key, inputs: prepared.inputs };
    const fileList = prepared.files && prepared.inputs.sources ? await this.records.stageFiles(prepared.inputs.sources, prepared.files, this.store.tmpDir) : undefined;
    const rec = await this.lookup(key, c.bypass);
    if (rec) {
      await this.cache.touch(rec);
      await fileList?.commit();
      return { layer: { diffId: rec.diffId, size: rec.size }, key, cache: 'hit', savedMs: rec.durationMs, recorded: { ...step, cache: 'hit' } };
    }
    const reason = await this.explain(prepared, step, c);
    c.vertex.log(`cache miss: ${reason}`);
    // the file lists can hold 100,000s of entries: not kept while the step runs
    delete prepared.files;
    const started = Date.now();
    let consumed: Awaited<ReturnType<PreparedStep['execute']>>['consumed'];
    const run = (reuseFrom: PreviousLayer | undefined): Promise<{ diffId: Digest; size: number }> =>
      withLayer(this.store, this.snapshotter, c.layers, this.mtimeClamp, async (snap) => {
        const out = await prepared.execute(snap, (l) => c.vertex.log(l), reuseFrom);
        consumed = out.consumed;
        if (out.reused) c.vertex.log(`${out.reused.files.size} unchanged file(s) taken from the previous build of this step`);
        return { stubs: out.stubs ?? [], ...(out.reused ? { reused: out.reused } : {}) };
      }, this.lease, prepared.incremental === true);
    const reuseFrom = c.bypass ? undefined : await this.previousSnapshot(prepared, c, key);
    const layer = await run(reuseFrom)
      .catch(async (e: unknown) => {
        if (!(e instanceof ReuseConflict)) throw e;
        c.vertex.log(`copying every file: ${e.message}`);
        consumed = undefined;
        return run(undefined);
      })
      .catch(async (e: unknown) => {
        await fileList?.discard();
        throw e;
      });
    let inputs: KeyInputs = prepared.inputs;
    if (consumed) {
      // what the step read is not what was keyed: record it under what it read
      inputs = { ...inputs, ...(consumed.sources ? { sources: consumed.sources } : {}), op: consumed.bindSources ? { ...inputs.op, bindSources: consumed.bindSources } : inputs.op };
      c.vertex.log('warning: the build context changed while this step read it; the step is cached under what it read');
      await fileList?.discard();
    } else await fileList?.commit();
    const finalKey = stepKey(inputs);
    const now = new Date().toISOString();
    await this.cache.put({ version: 1, key: finalKey, diffId: layer.diffId, size: layer.size, createdBy: prepared.createdBy, created: now, durationMs: Date.now() - started, lastUsed: now });
    return { layer, key: finalKey, cache: 'miss', reason, recorded: { ...step, key: finalKey, inputs, cache: 'miss' } };
  }

  /**
   * The snapshot of this step's previous build, for an incremental COPY: the same instruction,
   * its sources or its parent different (each file taken over is checked on its own, and what
   * the parent decides — owners by name, what lies at the destination — is done through the
   * overlay as in a full copy), its layer still in the store (and now leased) with a file index.
   */
  private async previousSnapshot(prepared: PreparedStep, c: SolveContext, key: string): Promise<PreviousLayer | undefined> {
    const prev = c.previous;
    if (!prepared.incremental || !prev || prev.key === key) return undefined;
    if (stepKey({ ...prev.inputs, parent: prepared.inputs.parent, ...(prepared.inputs.sources !== undefined ? { sources: prepared.inputs.sources } : {}) }) !== key) return undefined;
    const rec = await this.cache.get(prev.key);
    if (!rec || (await this.store.holdLayers(this.lease, [rec.diffId])).length) return undefined;
    if (!(await this.store.snapshots.has(rec.diffId))) return undefined;
    const index = readFileIndex(path.join(this.store.snapshots.dir(rec.diffId), FILE_INDEX));
    return index ? { diff: this.store.snapshots.diffDir(rec.diffId), blob: this.store.content.path(rec.diffId), index } : undefined;
  }

  private async explain(prepared: PreparedStep, step: Omit<RecordedStep, 'cache'>, c: SolveContext): Promise<string> {
    const prev = c.previous;
    const cur: Omit<RecordedStep, 'cache'> = prepared.files ? { ...step, files: prepared.files } : { ...step };
    // file lists are read only when the sources changed: to name the changed file
    if (prev && prev.inputs.sources && prev.inputs.sources !== prepared.inputs.sources) {
      prev.files ??= await this.records.loadFiles(prev.inputs.sources);
      if (!cur.files && prepared.inputs.sources) {
        const files = await this.records.loadFiles(prepared.inputs.sources);
        if (files) cur.files = files;
      }
    }
    let reason = explainMiss(cur, prev, { noCache: c.bypass, firstInStage: c.at.firstInStage, ...(c.parentMissed ? { parentMissed: c.parentMissed } : {}), ...(prepared.from ? { from: prepared.from } : {}) });
    if (prev) delete prev.files;
    if (c.at.firstInStage && reason === 'base image changed' && c.baseStage) reason = `parent changed (stage ${c.baseStage} changed)`;
    return reason;
  }
}
