import { createReadStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tarEntries } from '../util/tar-read.js';
import { LbuildError, PathEscapeError } from '../errors.js';
import { resolveInRoot } from '../snapshot/rootpath.js';
import { applyXattrs, safeComponents, setDirTimes } from '../snapshot/apply.js';
import { XattrTap } from '../snapshot/pax-xattrs.js';
import { shippedXattr } from '../util/xattr.js';
import { decompress, sniffFile } from '../util/decompress.js';
import { applyEntryMeta, writeEntry } from '../snapshot/entry.js';

/**
 * ADD's archive extraction: unpack a local tar (plain, gzip, bzip2, xz) into `targetAbs`, a
 * directory inside `root`. Owners, modes, times, symlinks and hardlinks are kept. Each entry's
 * parent is resolved inside the image root (symlinks such as /bin -> usr/bin are followed the way
 * the image would follow them); names with `..` or a leading `/` are refused.
 */
export async function extractInto(archive: string, root: string, targetAbs: string, file: string, line: number): Promise<void> {
  const targetInside = `/${path.relative(root, targetAbs).split(path.sep).join('/')}`;
  const tap = new XattrTap();
  const xattrs: [string, string, Buffer][] = [];
  const dirTimes: [string, Date][] = [];
  try {
    for await (const entry of tarEntries(decompress(createReadStream(archive), await sniffFile(archive)), tap)) {
      const h = entry.header;
      const attrs = tap.queue.shift();
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
      if (h.type === 'link') {
        entry.resume();
        const tAbs = resolveInRoot(root, path.posix.join(targetInside, ...safeComponents(h.linkname)), false);
        await fsp.rm(abs, { recursive: true, force: true });
        await fsp.link(tAbs, abs);
        continue;
      }
      if (!(await writeEntry(entry, h, abs))) continue;
      if (h.type !== 'symlink') for (const [name, value] of attrs ?? []) if (shippedXattr(name)) xattrs.push([path.relative(root, abs), name, value]);
      const dirTime = await applyEntryMeta(abs, h, true);
      if (dirTime) dirTimes.push([path.relative(root, abs), dirTime]);
    }
  } catch (e) {
    if (e instanceof LbuildError) throw e;
    throw new LbuildError(`${file}:${line}: ADD ${path.basename(archive)}: cannot extract (${(e as Error).message})`);
  }
  await applyXattrs(root, xattrs, os.tmpdir());
  await setDirTimes(root, dirTimes);
}
