import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Digest } from '../oci/digest.js';
import { isPidAlive, tempName, writeFileAtomic } from '../util/fsx.js';
import { layout } from './layout.js';

/**
 * A lease: the layers an in-flight build uses (`leases/<name>.json`, holding the owner's PID).
 * Garbage collection keeps every layer named by a lease whose owner is alive, so prune never
 * removes a layer a running build depends on.
 */
export class Lease {
  private readonly file: string;
  private readonly layers = new Set<string>();
  private readonly started = Date.now();
  private dirMade = false;

  constructor(root: string) {
    this.file = path.join(layout.leases(root), `${tempName('lease')}.json`);
  }

  /** Take the lease before reading anything: from now on GC keeps what this build creates. */
  async start(): Promise<void> {
    await this.write();
  }

  private async write(): Promise<void> {
    if (!this.dirMade) await fsp.mkdir(path.dirname(this.file), { recursive: true });
    this.dirMade = true;
    // not fsynced: a crash that could lose it also ends the build it protects (its PID is dead then)
    await writeFileAtomic(this.file, JSON.stringify({ pid: process.pid, started: this.started, layers: [...this.layers] }), { durable: false });
  }

  async add(...diffIds: Digest[]): Promise<void> {
    let changed = false;
    for (const d of diffIds) {
      if (!this.layers.has(d)) {
        this.layers.add(d);
        changed = true;
      }
    }
    if (changed) await this.write();
  }

  async release(): Promise<void> {
    await fsp.rm(this.file, { force: true });
  }
}

/**
 * Layers held by live leases, and when the oldest live lease started: anything created since
 * may belong to a build that has not recorded it yet, so GC leaves it. Dead owners' leases go.
 */
export function liveLeases(root: string): { layers: Set<string>; oldestStart: number } {
  const dir = layout.leases(root);
  const layers = new Set<string>();
  let oldestStart = Number.POSITIVE_INFINITY;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { layers, oldestStart };
  }
  for (const n of names) {
    try {
      const l = JSON.parse(readFileSync(path.join(dir, n), 'utf8')) as { pid: number; started?: number; layers: string[] };
      if (isPidAlive(l.pid)) {
        for (const d of l.layers) layers.add(d);
        oldestStart = Math.min(oldestStart, l.started ?? 0);
      } else void fsp.rm(path.join(dir, n), { force: true });
    } catch {
      // a lease being written: its owner is alive and will finish it
      oldestStart = 0;
    }
  }
  return { layers, oldestStart };
}

/** Whether a garbage collection is in progress (its marker names a live process). */
export function gcRunning(root: string): boolean {
  try {
    return isPidAlive(Number(readFileSync(layout.gcRunning(root), 'utf8')));
  } catch {
    return false;
  }
}
