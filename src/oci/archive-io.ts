import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { LbuildError } from '../errors.js';
import { safeComponents } from '../snapshot/apply.js';
import { tempName } from '../util/fsx.js';

/** One file of an archive being written: a buffer, or a file on disk streamed in. */
export type ArchiveEntry = { name: string; data: Buffer } | { name: string; file: string; size: number };

/** Write a tar archive of whole files atomically (temp file, then rename onto `out`). */
export async function writeArchive(out: string, entries: AsyncIterable<ArchiveEntry> | Iterable<ArchiveEntry>): Promise<void> {
  const target = path.resolve(out);
  const tmp = path.join(path.dirname(target), `.${tempName(path.basename(target))}`);
  const pack = tar.pack();
  const sink = pipeline(pack as unknown as Readable, createWriteStream(tmp, { mode: 0o644 }));
  const dirs = new Set<string>();
  const header = (name: string, size: number, type: 'file' | 'directory'): tar.Header => ({
    name, size, type, mode: type === 'directory' ? 0o40755 : 0o100644, mtime: new Date(0),
    uid: 0, gid: 0, uname: '', gname: '', linkname: '', devmajor: 0, devminor: 0, pax: null,
  });
  const add = (h: tar.Header, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      if (body) pack.entry(h, body, (e) => (e ? reject(e) : resolve()));
      else pack.entry(h, (e) => (e ? reject(e) : resolve()));
    });
  try {
    for await (const e of entries) {
      const parts = e.name.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (!dirs.has(d)) {
          dirs.add(d);
          await add(header(`${d}/`, 0, 'directory'));
        }
      }
      if ('data' in e) await add(header(e.name, e.data.length, 'file'), e.data);
      else {
        await new Promise<void>((resolve, reject) => {
          const s = pack.entry(header(e.name, e.size, 'file'), (err) => (err ? reject(err) : resolve()));
          pipeline(createReadStream(e.file), s).catch(reject);
        });
      }
    }
    pack.finalize();
    await sink;
    await fsp.rename(tmp, target);
  } catch (err) {
    pack.destroy(err as Error);
    await sink.catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/** Unpack an archive of plain files and directories into `dest` (refusing unsafe names). */
export async function unpackArchive(file: string, dest: string): Promise<void> {
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(file), extract);
  feeding.catch(() => undefined);
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const parts = safeComponents(h.name);
      const abs = path.join(dest, ...parts);
      if (h.type === 'directory') {
        await fsp.mkdir(abs, { recursive: true });
        entry.resume();
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        await fsp.mkdir(path.dirname(abs), { recursive: true });
        await pipeline(entry, createWriteStream(abs, { flags: 'wx' }));
      } else if (h.type === 'symlink' && parts.length > 0) {
        // docker save (legacy) links identical layers; keep the link inside dest only
        const resolved = path.resolve(path.dirname(abs), h.linkname);
        if (!resolved.startsWith(`${path.resolve(dest)}/`)) throw new LbuildError(`archive entry ${h.name} links outside the archive`);
        await fsp.mkdir(path.dirname(abs), { recursive: true });
        await fsp.symlink(h.linkname, abs);
        entry.resume();
      } else entry.resume();
    }
    await feeding;
  } catch (e) {
    if (e instanceof LbuildError) throw e;
    throw new LbuildError(`${file}: not a readable tar archive (${(e as Error).message})`);
  }
}

/** Read a file inside an unpacked archive, refusing names that would leave it. */
export function archivePath(root: string, name: string): string {
  return path.join(root, ...safeComponents(name));
}
