import { spawnSync } from 'node:child_process';
import { readFileSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isPidAlive } from '../util/fsx.js';
import { traced } from '../util/trace.js';

/*
 * Snapshots are written without a sync of their own: step mounts are `volatile` (an overlay
 * unmount would otherwise sync the whole filesystem once per step) and extracted layers are
 * plain writes. Each new snapshot gets a marker `unsynced/<hex>.<pid>.<boot id>`; the process
 * syncs the store's filesystem once before it exits and drops its markers. A marker left by a
 * dead process of this boot only needs that sync (the page cache still holds the data); one from
 * an earlier boot means the machine went down first, and its snapshot may be torn: it is removed
 * (snapshots are re-extracted from their verified blobs when needed).
 */

const pending = new Map<string, string[]>(); // store root → marker paths

let bootIdCache: string | undefined;
function bootId(): string {
  bootIdCache ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '');
  return bootIdCache;
}

function markerDir(root: string): string {
  return path.join(root, 'unsynced');
}

/** Note a snapshot about to become visible; call before it is renamed into place. */
export async function markUnsynced(root: string, hex: string): Promise<void> {
  const file = path.join(markerDir(root), `${hex}.${process.pid}.${bootId()}`);
  await fsp.mkdir(markerDir(root), { recursive: true });
  await fsp.writeFile(file, '');
  pending.set(root, [...(pending.get(root) ?? []), file]);
}

function syncFilesystem(root: string): void {
  spawnSync('sync', ['-f', root], { stdio: 'ignore' });
}

/** Make this process's snapshots durable: one filesystem sync per store, then drop the markers. */
export async function syncPendingSnapshots(): Promise<void> {
  for (const [root, markers] of pending) {
    await traced('sync', async () => syncFilesystem(root));
    for (const m of markers) await fsp.rm(m, { force: true });
  }
  pending.clear();
}

/** Settle the markers of dead processes; `remove` deletes a snapshot that may be torn. */
export async function recoverUnsynced(root: string, remove: (hex: string) => Promise<void>): Promise<void> {
  const names = await fsp.readdir(markerDir(root)).catch(() => [] as string[]);
  const stale = names.filter((n) => !isPidAlive(Number(n.split('.')[1])));
  if (!stale.length) return;
  if (stale.some((n) => n.split('.')[2] === bootId())) syncFilesystem(root);
  for (const n of stale) {
    const [hex, , boot] = n.split('.');
    if (boot !== bootId() && hex) await remove(hex);
    await fsp.rm(path.join(markerDir(root), n), { force: true });
  }
}
