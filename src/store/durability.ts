import { readFileSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { layout } from './layout.js';

/*
 * Snapshots are written without syncs of their own: step mounts are `volatile` (an overlay
 * unmount would otherwise sync the whole filesystem, other programs' writes included, at every
 * step) and extracted layers are plain writes. As containerd does by default, lbuild leaves them
 * to the kernel's writeback (dirty data is written within dirty_expire_centisecs, 30 s by
 * default) — but unlike a bare store it notices when the machine went down first: each new
 * snapshot gets a marker `unsynced/<hex>.<boot id>`, created before the rename that makes the
 * snapshot visible (a journaled filesystem keeps that order). At every store open, a marker of
 * this boot older than WRITEBACK_MS is dropped; one from an earlier boot means the snapshot may be
 * torn, and it is removed (snapshots are re-extracted from their fsynced, verified blobs).
 */

/** Far beyond the kernel's writeback expiry: data this old has reached the disk. */
export const WRITEBACK_MS = 120_000;

let bootIdCache: string | undefined;
export function bootId(): string {
  bootIdCache ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '');
  return bootIdCache;
}

function markerDir(root: string): string {
  return layout.unsynced(root);
}

/** Note a snapshot about to become visible; call before it is renamed into place. */
export async function markUnsynced(root: string, hex: string): Promise<void> {
  await fsp.mkdir(markerDir(root), { recursive: true });
  // the marker must be on disk before the snapshot's rename can be: without a journal (this
  // machine's ext4 has none) nothing orders the two, so the marker and its directory are synced
  const fh = await fsp.open(path.join(markerDir(root), `${hex}.${bootId()}`), 'w');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  const dir = await fsp.open(markerDir(root), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Settle the markers: drop the written-back ones, remove snapshots that a crash may have torn. */
export async function recoverUnsynced(root: string, remove: (hex: string) => Promise<void>): Promise<void> {
  const dir = markerDir(root);
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    const [hex, boot] = n.split('.');
    const file = path.join(dir, n);
    if (hex && boot !== bootId()) {
      await remove(hex);
      await fsp.rm(file, { force: true });
      continue;
    }
    const st = await fsp.stat(file).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > WRITEBACK_MS) await fsp.rm(file, { force: true });
  }
}
