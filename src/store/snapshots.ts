import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { isErrno } from '../errors.js';
import { type Digest, hexOf, parseDigest } from '../oci/digest.js';
import { applyLayer } from '../snapshot/apply.js';
import { tempName } from '../util/fsx.js';
import { markUnsynced } from './durability.js';
import { layout } from './layout.js';

const LINK_LEN = 10;

/**
 * Each layer lives once as an extracted directory, `snapshots/<diff_id hex>/diff`, shared by
 * every image that uses it. `l/<short id>` symlinks point at them so that an overlay mount
 * option string of many layers stays under the kernel's one-page limit (as Docker's overlay2).
 */
export class SnapshotStore {
  constructor(
    readonly root: string,
    readonly tmpDir: string,
  ) {}

  dir(diffId: Digest): string {
    return path.join(layout.snapshots(this.root), hexOf(parseDigest(diffId, 'snapshot store')));
  }

  diffDir(diffId: Digest): string {
    return path.join(this.dir(diffId), 'diff');
  }

  async has(diffId: Digest): Promise<boolean> {
    try {
      await fsp.access(path.join(this.dir(diffId), 'link'));
      return true;
    } catch {
      return false;
    }
  }

  /** The short link name relative to the store root (`l/abcdef0123`). */
  async link(diffId: Digest): Promise<string> {
    return `l/${(await fsp.readFile(path.join(this.dir(diffId), 'link'), 'utf8')).trim()}`;
  }

  /** Make the snapshot of a layer from its tar, unless it is already there. */
  async ensure(diffId: Digest, openTar: () => Readable): Promise<void> {
    if (await this.has(diffId)) return;
    const tmp = path.join(this.tmpDir, tempName('snap'));
    await fsp.mkdir(path.join(tmp, 'diff'), { recursive: true, mode: 0o755 });
    try {
      await applyLayer(openTar(), path.join(tmp, 'diff'));
      await this.adopt(diffId, tmp);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Move a finished snapshot (a directory holding `diff/`) into place. If another process got
   * there first the caller's copy is left for it to remove.
   */
  async adopt(diffId: Digest, tmpSnapshotDir: string): Promise<void> {
    const final = this.dir(diffId);
    const hex = hexOf(diffId);
    const target = `../snapshots/${hex}/diff`;
    await fsp.mkdir(layout.links(this.root), { recursive: true });
    await fsp.mkdir(path.dirname(final), { recursive: true });
    // the link (and the file naming it) exist before the rename makes the snapshot visible
    let name: string | undefined;
    for (let len = LINK_LEN; len <= hex.length && !name; len += 2) {
      const linkPath = path.join(layout.links(this.root), hex.slice(0, len));
      try {
        await fsp.symlink(target, linkPath);
        name = hex.slice(0, len);
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e;
        if ((await fsp.readlink(linkPath)) === target) name = hex.slice(0, len);
      }
    }
    if (!name) throw new Error(`no free link name for ${diffId}`);
    await fsp.writeFile(path.join(tmpSnapshotDir, 'link'), name);
    await markUnsynced(this.root, hex);
    try {
      await fsp.rename(tmpSnapshotDir, final);
    } catch (e) {
      if (isErrno(e, 'EEXIST') || isErrno(e, 'ENOTEMPTY')) return;
      throw e;
    }
  }

  async remove(diffId: Digest): Promise<void> {
    const dir = this.dir(diffId);
    const link = await fsp.readFile(path.join(dir, 'link'), 'utf8').catch(() => undefined);
    if (link) await fsp.rm(path.join(layout.links(this.root), link.trim()), { force: true });
    await fsp.rm(dir, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    return fsp.readdir(layout.snapshots(this.root)).catch(() => []);
  }
}
