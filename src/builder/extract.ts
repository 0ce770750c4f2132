import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { LbuildError, PathEscapeError } from '../errors.js';
import { resolveInRoot } from '../snapshot/rootpath.js';
import { safeComponents, setDirTimes } from '../snapshot/apply.js';
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
      if (h.type === 'link') {
        entry.resume();
        const tAbs = resolveInRoot(root, path.posix.join(targetInside, ...safeComponents(h.linkname)), false);
        await fsp.rm(abs, { recursive: true, force: true });
        await fsp.link(tAbs, abs);
        continue;
      }
      if (!(await writeEntry(entry, h, abs))) continue;
      const dirTime = await applyEntryMeta(abs, h, true);
      if (dirTime) dirTimes.push([path.relative(root, abs), dirTime]);
    }
  } catch (e) {
    if (e instanceof LbuildError) throw e;
    throw new LbuildError(`${file}:${line}: ADD ${path.basename(archive)}: cannot extract (${(e as Error).message})`);
  } finally {
    await feeding.catch(() => undefined);
  }
  await setDirTimes(root, dirTimes);
}
