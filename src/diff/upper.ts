import { type PackOptions, packTree } from './tarwriter.js';
import type { Readable } from 'node:stream';
import { promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { lstatBeneath } from '../snapshot/rootpath.js';
import type { ContentStore, StagedBlob } from '../store/content.js';
import type { Xattrs } from '../util/xattr.js';

function lookupLower(lowers: readonly string[], rel: string): Stats | undefined {
  for (const l of lowers) {
    const st = lstatBeneath(l, rel);
    if (st === 'missing') continue; // not in this layer: look further down
    // a non-directory parent in this layer hides the path in every layer below
    if (st === 'blocked' || (st.isCharacterDevice() && st.rdev === 0)) return undefined;
    return st;
  }
  return undefined;
}

function stubStat(upper: string, rel: string): Stats | undefined {
  const st = lstatBeneath(upper, rel);
  return typeof st === 'string' ? undefined : st;
}

/**
 * Remove what the sandbox created only as mount points (paths that did not exist before the
 * step): a stub is an empty file or an empty directory. Deepest first, so emptied parents go too.
 * A parent that overlay copied up only to hold the stubs (empty now, same owner and mode as
 * below) goes as well, so a RUN that changes nothing gives an empty layer.
 */
export async function removeMountStubs(upper: string, stubs: readonly string[], lowers: readonly string[], opaque: ReadonlySet<string>): Promise<void> {
  const sorted = [...stubs].sort((a, b) => b.split('/').length - a.split('/').length);
  const parents = new Set<string>();
  for (const rel of sorted) {
    const p = path.join(upper, rel);
    // the RUN may have made a parent of the stub a symlink (to a host path): never follow one
    const st = stubStat(upper, rel);
    if (!st) continue;
    if (st.isDirectory()) {
      if ((await fsp.readdir(p)).length === 0) await fsp.rmdir(p);
    } else if (st.isFile() && st.size === 0) await fsp.unlink(p);
    const parent = path.dirname(rel);
    if (parent !== '.' && !stubs.includes(parent)) parents.add(parent);
  }
  for (const rel of parents) {
    const p = path.join(upper, rel);
    const st = stubStat(upper, rel);
    if (!st?.isDirectory() || opaque.has(rel) || (await fsp.readdir(p)).length > 0) continue;
    const lower = lookupLower(lowers, rel);
    if (lower?.isDirectory() && lower.mode === st.mode && lower.uid === st.uid && lower.gid === st.gid) await fsp.rmdir(p);
  }
}

/**
 * The upper dir of a finished step → a layer tar staged in the content store (the caller commits it): whiteout devices and
 * opaque dirs become OCI markers. Every directory of the upper dir is written, the ones overlay
 * only copied up to hold a change below them included, with their real mode, owner and times:
 * Docker's overlay2 (and every other consumer) creates a parent missing from a layer as
 * root:root 0755, which would then hide the lower layer's directory. BuildKit writes them too.
 */
export async function stageUpper(content: ContentStore, upper: string, opts: PackOptions): Promise<StagedBlob> {
  return content.stage(packTree(upper, opts) as unknown as Readable);
}

/** How an upper dir (or a snapshot made from one) is written as a layer. */
export function upperPackOptions(opaqueDirs: ReadonlySet<string>, mtimeClamp?: number, xattrs?: ReadonlyMap<string, Xattrs>): PackOptions {
  return { overlay: true, opaqueDirs, ...(xattrs?.size ? { xattrs } : {}), ...(mtimeClamp !== undefined ? { mtimeClamp } : {}) };
}
