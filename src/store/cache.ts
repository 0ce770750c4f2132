import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type Digest, isDigest } from '../oci/digest.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { layout } from './layout.js';

/** On-disk cache record, version 1: what a step with this key produced. */
export interface CacheRecord {
  version: 1;
  key: string;
  diffId: Digest;
  size: number;
  createdBy: string;
  /** when the step last ran for real, and how long it took (the time a hit saves) */
  created: string;
  durationMs: number;
  lastUsed: string;
}

/**
 * The layer cache: `cache/records/<key>.json`, one file per key, written atomically, so
 * concurrent builds never see a half-written record. A record whose layer blob is gone is a miss.
 */
export class CacheIndex {
  readonly dir: string;

  constructor(root: string) {
    this.dir = layout.records(root);
  }

  private file(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`cache key ${JSON.stringify(key)} is not a key`);
    return path.join(this.dir, `${key}.json`);
  }

  async get(key: string): Promise<CacheRecord | undefined> {
    const r = await readJsonFile<CacheRecord>(this.file(key)).catch(() => undefined);
    // a record whose diffId is not a digest is damaged (or planted): a miss, never a path
    return r?.version === 1 && r.key === key && isDigest(r.diffId) ? r : undefined;
  }

  async put(rec: CacheRecord): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.file(rec.key), JSON.stringify(rec));
  }

  /**
   * Mark a record used now (prune goes by last use). Not fsynced: a crash can only lose the new
   * time, or leave the record unreadable, which is a miss (get), never a wrong hit.
   */
  async touch(rec: CacheRecord): Promise<void> {
    await writeFileAtomic(this.file(rec.key), JSON.stringify({ ...rec, lastUsed: new Date().toISOString() }), { durable: false });
  }

  async remove(key: string): Promise<void> {
    await fsp.rm(this.file(key), { force: true });
  }

  async list(): Promise<CacheRecord[]> {
    const names = await fsp.readdir(this.dir).catch(() => [] as string[]);
    const out: CacheRecord[] = [];
    for (const n of names) {
      if (!/^[0-9a-f]{64}\.json$/.test(n)) continue;
      const r = await this.get(n.slice(0, -5));
      if (r) out.push(r);
    }
    return out;
  }
}
