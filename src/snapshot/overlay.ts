import { runTool } from '../util/exec.js';
import { spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { LbuildError, isErrno } from '../errors.js';
import { chainIds, type Digest, hexOf } from '../oci/digest.js';
import type { Store } from '../store/store.js';
import { isPidAlive, ownerPid, tempName } from '../util/fsx.js';
import { reapStaleContainers } from '../runtime/runc.js';
import { inUserNamespace } from '../runtime/rootless.js';
import { recoverUnsynced } from '../store/durability.js';
import { layout } from '../store/layout.js';

/** At most this many lower dirs in one mount: keeps the option string under a page and far below the kernel's 500. */
export const MAX_LOWERS = 200;
/** Long chains are flattened in chunks of this many layers (each chunk cached by its chain ID). */
export const FLATTEN_CHUNK = 100;
// volatile: no sync of the whole upper filesystem at every unmount (store/durability.ts says
// how a crash before writeback is noticed)
// rootless: overlay's marks are user.* xattrs (userxattr), which allows no redirect to be followed
const ROOTLESS = inUserNamespace();
const XATTR_OPTS = ROOTLESS ? ',userxattr' : '';
const MOUNT_OPTS = `redirect_dir=${ROOTLESS ? 'nofollow' : 'off'},metacopy=off,index=off,volatile${XATTR_OPTS}`;

/** Every mount this process made and has not released: released on exit, error and signals. */
const active = new Set<string>();

export function activeMounts(): readonly string[] {
  return [...active];
}

async function mount(cwd: string, options: string, target: string): Promise<void> {
  if (options.length >= 4096) throw new LbuildError(`overlay mount options too long (${options.length} bytes)`);
  const r = await runTool('mount', ['-t', 'overlay', 'overlay', '-o', options, target], { cwd });
  if (r.exitCode !== 0) throw new LbuildError(`overlay mount failed: ${r.stderr.trim() || `exit ${r.exitCode}`} (are you root, with overlayfs available?)`);
  active.add(target);
}

/**
 * A private tmpfs (RAM only) at `target`: for what must never reach a disk (secret files). Tracked
 * like the overlay mounts, so signals release it, and a killed process's is reaped (recoverStale).
 */
export async function mountTmpfs(target: string, bytes: number): Promise<void> {
  const size = Math.max(64 * 1024, Math.ceil(bytes / 4096) * 4096 + 64 * 1024);
  const r = await runTool('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700,nosuid,nodev,noexec`, 'tmpfs', target]);
  if (r.exitCode !== 0) throw new LbuildError(`tmpfs mount for secrets failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  active.add(target);
}

export async function unmount(target: string): Promise<void> {
  let r = await runTool('umount', [target]);
  if (r.exitCode !== 0) r = await runTool('umount', ['-l', target]);
  if (r.exitCode !== 0 && !/not mounted|no mount point/.test(r.stderr)) throw new LbuildError(`umount ${target} failed: ${r.stderr.trim()}`);
  active.delete(target);
}

/** Synchronous last-resort release, for process exit handlers. */
export function unmountAllSync(): void {
  for (const m of [...active].reverse()) {
    try {
      syncUmount(m);
    } catch {
      // nothing more we can do at exit
    }
    active.delete(m);
  }
}

function syncUmount(target: string): void {
  spawnSync('umount', ['-l', target], { stdio: 'ignore' });
}

/** A step's writable overlay: lower = the parent layers, upper = the new layer's directory. */
export interface ActiveSnapshot {
  /** temp dir holding diff/ (upper), work/ and merged/ */
  dir: string;
  upper: string;
  merged: string;
  /** absolute lower dirs, top first (for diff lookups) */
  lowers: string[];
  release(): Promise<void>;
}

/**
 * The snapshot lifecycle, one owner: `prepare` a writable overlay on a chain of layers, `commit`
 * its upper dir as a layer's snapshot (stored by SnapshotStore, crash-marked by durability.ts),
 * `discard` what is left of it, `view` a chain read-only. Flattening of long chains is internal.
 */
export class Snapshotter {
  constructor(readonly store: Store) {}

  /** Keep a finished (unmounted) snapshot's upper dir as the snapshot of layer `diffId`. */
  async commit(snap: ActiveSnapshot, diffId: Digest): Promise<void> {
    await fsp.rm(snap.merged, { recursive: true, force: true });
    await this.store.snapshots.adopt(diffId, snap.dir);
  }

  /** Remove what is left of a prepared snapshot (after commit, or after a failed step). */
  async discard(snap: ActiveSnapshot): Promise<void> {
    await fsp.rm(snap.dir, { recursive: true, force: true });
  }

  private async emptyLink(): Promise<string> {
    const dir = layout.empty(this.store.root);
    await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
    const link = path.join(layout.links(this.store.root), 'empty');
    await fsp.symlink('../empty', link).catch((e: unknown) => {
      if (!isErrno(e, 'EEXIST')) throw e;
    });
    return 'l/empty';
  }

  /**
   * Lower dirs (relative to the store root, top first) for a chain of layers (bottom first).
   * Chains longer than MAX_LOWERS have their bottom part replaced by flattened copies.
   */
  async lowerLinks(diffIds: readonly Digest[]): Promise<string[]> {
    await this.store.ensureSnapshots(diffIds);
    if (diffIds.length === 0) return [await this.emptyLink()];
    let flatUpTo = 0;
    if (diffIds.length > MAX_LOWERS) flatUpTo = Math.floor((diffIds.length - MAX_LOWERS + FLATTEN_CHUNK) / FLATTEN_CHUNK) * FLATTEN_CHUNK;
    const links: string[] = [];
    for (const d of diffIds.slice(flatUpTo)) links.push(await this.store.snapshots.link(d));
    if (flatUpTo > 0) links.unshift(await this.flattened(diffIds.slice(0, flatUpTo)));
    // overlay refuses a directory listed twice (ELOOP); a layer repeated higher up makes its
    // lower copy redundant (it re-adds and re-hides the same paths), so keep the topmost
    const top = links.reverse();
    return top.filter((l, i) => top.indexOf(l) === i);
  }

  /** A directory holding the merged view of a chain prefix, built once per chain ID. */
  private async flattened(diffIds: readonly Digest[]): Promise<string> {
    const chain = chainIds(diffIds)[diffIds.length - 1] as Digest;
    const rel = `flat/${hexOf(chain).slice(0, 16)}`;
    const final = path.join(this.store.root, rel);
    try {
      await fsp.access(final);
      return rel;
    } catch {
      // build it below
    }
    const lowers = await this.lowerLinks(diffIds); // recursive: earlier chunks are flattened too
    const tmp = path.join(this.store.tmpDir, tempName('flat'));
    const mnt = path.join(tmp, 'merged');
    const out = path.join(tmp, 'out');
    await fsp.mkdir(mnt, { recursive: true });
    await fsp.mkdir(out, { mode: 0o755 });
    try {
      if (lowers.length === 1) {
        await copyTree(path.join(this.store.root, lowers[0] as string), out);
      } else {
        await mount(this.store.root, `lowerdir=${lowers.join(':')}${XATTR_OPTS}`, mnt);
        try {
          await copyTree(mnt, out);
        } finally {
          await unmount(mnt);
        }
      }
      await fsp.mkdir(path.dirname(final), { recursive: true });
      await fsp.rename(out, final).catch((e: unknown) => {
        if (!isErrno(e, 'EEXIST') && !isErrno(e, 'ENOTEMPTY')) throw e;
      });
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
    return rel;
  }

  /** Mount a fresh writable layer over the given parent layers (bottom first). */
  async prepare(parents: readonly Digest[]): Promise<ActiveSnapshot> {
    const lowers = await this.lowerLinks(parents);
    const dir = path.join(this.store.tmpDir, tempName('step'));
    const upper = path.join(dir, 'diff');
    const work = path.join(dir, 'work');
    const merged = path.join(dir, 'merged');
    for (const d of [upper, work, merged]) await fsp.mkdir(d, { recursive: true, mode: 0o755 });
    const relDir = path.relative(this.store.root, dir);
    try {
      await mount(this.store.root, `lowerdir=${lowers.join(':')},upperdir=${relDir}/diff,workdir=${relDir}/work,${MOUNT_OPTS}`, merged);
    } catch (e) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw e;
    }
    let released = false;
    return {
      dir,
      upper,
      merged,
      lowers: lowers.map((l) => path.join(this.store.root, l)),
      release: async () => {
        if (released) return;
        released = true;
        await unmount(merged);
        await fsp.rm(work, { recursive: true, force: true });
      },
    };
  }

  /** A read-only view of a chain of layers (for COPY --from). */
  async view(layers: readonly Digest[]): Promise<{ root: string; release(): Promise<void> }> {
    const lowers = await this.lowerLinks(layers);
    if (lowers.length === 1) return { root: path.join(this.store.root, lowers[0] as string), release: async () => undefined };
    const dir = path.join(this.store.tmpDir, tempName('view'));
    await fsp.mkdir(dir, { recursive: true });
    try {
      await mount(this.store.root, `lowerdir=${lowers.join(':')}${XATTR_OPTS}`, dir);
    } catch (e) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw e;
    }
    return {
      root: dir,
      release: async () => {
        await unmount(dir);
        await fsp.rm(dir, { recursive: true, force: true });
      },
    };
  }

  /**
   * Release what a killed lbuild left: mounts under this store's tmp/ whose owner PID is dead,
   * then their temp dirs and files. Names carry the owner's PID (see tempName).
   */
  async recoverStale(): Promise<number> {
    const tmp = this.store.tmpDir;
    // a container of a killed build keeps its root busy: stop it first
    await reapStaleContainers(layout.runc(this.store.root), isPidAlive);
    let n = 0;
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '))
      .filter((m) => m.startsWith(`${tmp}/`));
    for (const m of mounts.sort().reverse()) {
      if (isPidAlive(ownerPid(path.relative(tmp, m).split('/')[0] ?? ''))) continue;
      await unmount(m).catch(() => undefined);
      n++;
    }
    for (const name of await fsp.readdir(tmp).catch(() => [] as string[])) {
      if (!isPidAlive(ownerPid(name))) await fsp.rm(path.join(tmp, name), { recursive: true, force: true }).catch(() => undefined);
    }
    await recoverUnsynced(this.store.root, (hex) => this.store.snapshots.remove(`sha256:${hex}`));
    return n;
  }
}


async function copyTree(src: string, dest: string): Promise<void> {
  const r = await runTool('cp', ['-a', '--', `${src}/.`, `${dest}/`]);
  if (r.exitCode !== 0) throw new LbuildError(`flattening layers failed: ${r.stderr.trim()}`);
}
