import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { LbuildError, PathEscapeError, isErrno } from '../errors.js';
import { makeDevice, makeWhiteout, markOpaque } from '../util/xattr.js';

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

  const extract = tar.extract();
  const feeding = pipeline(src, extract);
  feeding.catch(() => undefined); // errors surface through the iterator below
  try {
    for await (const entry of extract) {
      const h = entry.header;
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
        opaque.push(parentAbs);
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
      // an earlier entry of the same path: a directory is updated in place, anything else replaced
      const existing = await fsp.lstat(abs).catch(() => undefined);
      if (existing && !(existing.isDirectory() && h.type === 'directory')) {
        await fsp.rm(abs, { recursive: true, force: true });
        forget(rel);
      }

      switch (h.type) {
        case 'directory':
          if (!existing?.isDirectory()) await fsp.mkdir(abs, { mode: 0o700 });
          realDirs.add(rel);
          entry.resume();
          break;
        case 'file':
        case 'contiguous-file':
          await pipeline(entry, createWriteStream(abs, { flags: 'wx', mode: 0o600 }));
          break;
        case 'symlink':
          entry.resume();
          await fsp.symlink(h.linkname, abs);
          break;
        case 'link': {
          entry.resume();
          const targetParts = safeComponents(h.linkname);
          if (targetParts.length === 0) throw new PathEscapeError(h.linkname, 'hardlink to the root');
          const tParent = await ensureParent(targetParts.slice(0, -1), h.linkname);
          const tAbs = path.join(dest, tParent, targetParts[targetParts.length - 1] as string);
          const tst = await fsp.lstat(tAbs).catch(() => undefined);
          if (!tst) throw new LbuildError(`layer entry ${JSON.stringify(h.name)}: hardlink target ${h.linkname} does not exist`);
          if (tst.isDirectory()) throw new LbuildError(`layer entry ${JSON.stringify(h.name)}: hardlink to a directory`);
          await fsp.link(tAbs, abs);
          continue; // a hardlink shares its target's metadata
        }
        case 'character-device':
          entry.resume();
          await makeDevice(abs, 'c', h.devmajor, h.devminor);
          break;
        case 'block-device':
          entry.resume();
          await makeDevice(abs, 'b', h.devmajor, h.devminor);
          break;
        case 'fifo':
          entry.resume();
          await makeDevice(abs, 'p');
          break;
        default:
          entry.resume();
          continue; // pax/gnu meta entries are consumed by tar-stream; unknown types are skipped
      }
      const pax = (h.pax ?? {}) as Record<string, string>;
      const uid = pax.uid !== undefined ? Number(pax.uid) : h.uid;
      const gid = pax.gid !== undefined ? Number(pax.gid) : h.gid;
      if (isRoot) await fsp.lchown(abs, uid, gid);
      // chmod after chown: chown clears setuid/setgid bits
      if (h.type !== 'symlink') await fsp.chmod(abs, h.mode & 0o7777);
      if (h.type === 'directory') dirTimes.push([abs, h.mtime]);
      else await fsp.lutimes(abs, h.mtime, h.mtime);
    }
  } finally {
    await feeding.catch(() => undefined);
  }
  for (const d of opaque) await markOpaque(d);
  // directory mtimes last, deepest first: creating children would have changed them
  for (const [d, t] of dirTimes.reverse()) await fsp.utimes(d, t, t);
  return stats;
}
