import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { LbuildError, PathEscapeError } from '../errors.js';
import { resolveInRoot } from '../snapshot/rootpath.js';
import { safeComponents } from '../snapshot/apply.js';
import { decompress, sniffFile } from '../util/decompress.js';
import { makeDevice } from '../util/xattr.js';

/**
 * ADD's archive extraction: unpack a local tar (plain, gzip, bzip2, xz) into `targetAbs`, a
 * directory inside `root`. Owners, modes, times, symlinks and hardlinks are kept. Each entry's
 * parent is resolved inside the image root (symlinks such as /bin -> usr/bin are followed the way
 * the image would follow them); names with `..` or a leading `/` are refused.
 */
export async function extractInto(archive: string, root: string, targetAbs: string, file: string, line: number): Promise<void> {
  const targetInside = `/${path.relative(root, targetAbs).split(path.sep).join('/')}`;
  const extract = tar.extract();
  const feeding = pipeline(decompress(createReadStream(archive), await sniffFile(archive)), extract);
  feeding.catch(() => undefined);
  const dirTimes: [string, Date][] = [];
  try {
    for await (const entry of extract) {
      const h = entry.header;
      let parts: string[];
      try {
        parts = safeComponents(h.name);
      } catch (e) {
        if (e instanceof PathEscapeError) throw new LbuildError(`${file}:${line}: ADD ${path.basename(archive)}: ${e.message}`);
        throw e;
      }
      if (parts.length === 0) {
        entry.resume();
        continue;
      }
      const inside = path.posix.join(targetInside, ...parts);
      const parent = resolveInRoot(root, path.posix.dirname(inside), true);
      await fsp.mkdir(parent, { recursive: true });
      const abs = path.join(parent, parts[parts.length - 1] as string);
      const existing = await fsp.lstat(abs).catch(() => undefined);
      if (existing && !(existing.isDirectory() && h.type === 'directory')) await fsp.rm(abs, { recursive: true, force: true });
      switch (h.type) {
        case 'directory':
          if (!existing?.isDirectory()) await fsp.mkdir(abs);
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
          const t = safeComponents(h.linkname);
          const tAbs = resolveInRoot(root, path.posix.join(targetInside, ...t), false);
          await fsp.link(tAbs, abs);
          continue;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo':
          entry.resume();
          await makeDevice(abs, h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c', h.devmajor, h.devminor);
          break;
        default:
          entry.resume();
          continue;
      }
      const pax = (h.pax ?? {}) as Record<string, string>;
      await fsp.lchown(abs, pax.uid !== undefined ? Number(pax.uid) : h.uid, pax.gid !== undefined ? Number(pax.gid) : h.gid);
      if (h.type !== 'symlink') await fsp.chmod(abs, h.mode & 0o7777);
      if (h.type === 'directory') dirTimes.push([abs, h.mtime]);
      else await fsp.lutimes(abs, h.mtime, h.mtime);
    }
  } catch (e) {
    if (e instanceof LbuildError) throw e;
    throw new LbuildError(`${file}:${line}: ADD ${path.basename(archive)}: cannot extract (${(e as Error).message})`);
  } finally {
    await feeding.catch(() => undefined);
  }
  for (const [d, t] of dirTimes.reverse()) await fsp.utimes(d, t, t);
}
