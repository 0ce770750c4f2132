import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { applyEntryMeta, writeEntry } from './entry.js';
import { tarEntries } from '../util/tar-read.js';
import { LbuildError, PathEscapeError, isErrno } from '../errors.js';
import { makeWhiteout, markOpaque, shippedXattr, writeXattrs } from '../util/xattr.js';
import { XattrTap } from './pax-xattrs.js';
import { lstatBeneath } from './rootpath.js';

export interface ApplyStats {
  entries: number;
  whiteouts: number;
}

/**
 * Split a tar entry name into safe components, or refuse it. Absolute names and `..` are
 * refused outright: a layer that needs them is malformed or hostile.
 */
export function safeComponents(name: string): string[] {
  if (name.startsWith('/')) throw new PathEscapeError(name, 'absolute path in layer');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new PathEscapeError(name, "'..' in layer path");
  if (parts.some((p) => p.includes('\0'))) throw new PathEscapeError(name, 'NUL byte in layer path');
  return parts;
}

/**
 * Extended attributes from a tar's PAX records (only those a layer may carry: never overlay's
 * own), set once every entry is written, on paths still real all the way down.
 */
export async function applyXattrs(root: string, list: readonly [string, string, Buffer][], tmpDir: string): Promise<void> {
  const ok = list.filter(([rel]) => {
    const st = lstatBeneath(root, rel);
    return typeof st !== 'string' && !st.isSymbolicLink();
  });
  await writeXattrs(root, ok, tmpDir);
}

/**
 * Directory mtimes last, deepest first (creating children changed them). A later entry may have
 * replaced a directory (or a parent of it) with a symlink: only a path that is still a real
 * directory all the way down is touched, so no time is ever set through a link onto the host.
 */
export async function setDirTimes(root: string, dirTimes: readonly (readonly [string, Date])[]): Promise<void> {
  for (const [rel, t] of [...dirTimes].reverse()) {
    const st = lstatBeneath(root, rel);
    if (typeof st !== 'string' && st.isDirectory()) await fsp.lutimes(path.join(root, rel), t, t);
  }
}

/**
 * Unpack one layer tar into an (empty) snapshot directory in overlay's on-disk form:
 * `.wh.x` becomes a 0/0 character device, `.wh..wh..opq` the opaque xattr on its directory.
 * No entry can write outside `dest`: parents are checked with lstat and never followed
 * through a symlink, and files are created with O_EXCL so a planted symlink is not opened.
 */
export async function applyLayer(src: Readable, dest: string): Promise<ApplyStats> {
  const stats: ApplyStats = { entries: 0, whiteouts: 0 };
  const realDirs = new Set<string>(['']); // relative paths known to be real directories we may enter
  const dirTimes: [string, Date][] = [];
  const opaque: string[] = [];
  const isRoot = process.getuid?.() === 0;

  const ensureParent = async (parts: string[], entryName: string): Promise<string> => {
    let rel = '';
    for (const p of parts) {
      const next = rel === '' ? p : `${rel}/${p}`;
      if (!realDirs.has(next)) {
        const abs = path.join(dest, next);
        let st;
        try {
          st = await fsp.lstat(abs);
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw e;
        }
        if (st === undefined) {
          await fsp.mkdir(abs, { mode: 0o755 });
        } else if (st.isSymbolicLink()) {
          throw new PathEscapeError(entryName, `parent ${next} is a symlink`);
        } else if (!st.isDirectory()) {
          throw new LbuildError(`layer entry ${JSON.stringify(entryName)}: parent ${next} is not a directory`);
        }
        realDirs.add(next);
      }
      rel = next;
    }
    return rel;
  };

  const forget = (rel: string): void => {
    for (const d of realDirs) if (d === rel || d.startsWith(`${rel}/`)) realDirs.delete(d);
  };

  const tap = new XattrTap();
  const xattrs: [string, string, Buffer][] = [];
  for await (const entry of tarEntries(src, tap)) {
    const h = entry.header;
    const attrs = tap.queue.shift();
    stats.entries++;
    const parts = safeComponents(h.name);
    if (parts.length === 0) {
      entry.resume();
      continue; // the root directory entry ("./"): keep the snapshot root as created
    }
    const base = parts[parts.length - 1] as string;
    const parentRel = await ensureParent(parts.slice(0, -1), h.name);
    const parentAbs = path.join(dest, parentRel);

    if (base === '.wh..wh..opq') {
      entry.resume();
      opaque.push(parentRel);
      continue;
    }
    if (base.startsWith('.wh.')) {
      entry.resume();
      const victim = base.slice(4);
      if (victim === '' || victim === '.' || victim === '..') throw new PathEscapeError(h.name, 'invalid whiteout');
      const abs = path.join(parentAbs, victim);
      await fsp.rm(abs, { recursive: true, force: true });
      forget(parentRel === '' ? victim : `${parentRel}/${victim}`);
      await makeWhiteout(abs);
      stats.whiteouts++;
      continue;
    }

    const rel = parentRel === '' ? base : `${parentRel}/${base}`;
    const abs = path.join(dest, rel);
    if (h.type === 'link') {
      entry.resume();
      const targetParts = safeComponents(h.linkname);
      if (targetParts.length === 0) throw new PathEscapeError(h.linkname, 'hardlink to the root');
      const tParent = await ensureParent(targetParts.slice(0, -1), h.linkname);
      const tAbs = path.join(dest, tParent, targetParts[targetParts.length - 1] as string);
      const tst = await fsp.lstat(tAbs).catch(() => undefined);
      if (!tst) throw new LbuildError(`layer entry ${JSON.stringify(h.name)}: hardlink target ${h.linkname} does not exist`);
      if (tst.isDirectory()) throw new LbuildError(`layer entry ${JSON.stringify(h.name)}: hardlink to a directory`);
      await fsp.rm(abs, { recursive: true, force: true });
      forget(rel);
      await fsp.link(tAbs, abs);
      continue; // a hardlink shares its target's metadata
    }
    const wasDir = (await fsp.lstat(abs).catch(() => undefined))?.isDirectory() === true;
    if (wasDir && h.type !== 'directory') forget(rel);
    if (!(await writeEntry(entry, h, abs))) continue;
    if (h.type !== 'symlink') for (const [name, value] of attrs ?? []) if (shippedXattr(name)) xattrs.push([rel, name, value]);
    if (h.type === 'directory') realDirs.add(rel);
    const dirTime = await applyEntryMeta(abs, h, isRoot);
    if (dirTime) dirTimes.push([rel, dirTime]);
  }
  for (const rel of opaque) {
    // as for times: a directory since replaced by a link is not marked through the link
    const st = lstatBeneath(dest, rel);
    if (typeof st !== 'string' && st.isDirectory()) await markOpaque(path.join(dest, rel));
  }
  await applyXattrs(dest, xattrs, path.dirname(dest));
  await setDirTimes(dest, dirTimes);
  return stats;
}
