import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { DigestMismatchError, LbuildError } from '../errors.js';
import { type Digest, tapDigest } from './digest.js';
import { safeComponents } from '../snapshot/apply.js';
import { tempName } from '../util/fsx.js';
import { pipeEntry, tarEntries } from '../util/tar-read.js';

/** One file of an archive being written: a buffer, or a file on disk streamed in. */
export type ArchiveEntry = { name: string; data: Buffer } | { name: string; file: string; size: number; digest?: Digest };

/**
 * Where an archive goes. A regular file (or a new one) is written atomically: a temp file beside
 * it, renamed onto it, through any symlink to it. Anything else (`/dev/null`, `/dev/stdout`, a
 * FIFO) is written into, as `docker save -o` does: a rename would replace the device itself.
 */
async function archiveTarget(out: string): Promise<{ file: string; atomic: boolean }> {
  const abs = path.resolve(out);
  const st = await fsp.stat(abs).catch(() => undefined);
  if (st?.isDirectory()) throw new LbuildError(`${out} is a directory: -o takes the archive file`);
  if (st && !st.isFile()) return { file: abs, atomic: false };
  return { file: st ? await fsp.realpath(abs) : abs, atomic: true };
}

/** Where an archive goes: a path (`-` for standard output) or a stream ended when it is written. */
export type ArchiveOut = string | Writable;

/** Copy a stream to standard output and resolve once all of it has been handed to the OS. */
function toStdout(src: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error): void => {
      src.unpipe(process.stdout);
      reject((e as NodeJS.ErrnoException).code === 'EPIPE' ? new LbuildError('the reader of standard output went away before the archive was written') : e);
    };
    src.once('error', fail);
    process.stdout.once('error', fail);
    src.once('end', () => process.stdout.write('', () => {
      process.stdout.off('error', fail);
      resolve();
    }));
    src.pipe(process.stdout, { end: false });
  });
}

/** A stream being written to an ArchiveOut: `done` when all is out, then commit (or abort). */
export interface ArchiveSink {
  done: Promise<void>;
  /** the temp file onto the target (a regular file only) */
  commit(): Promise<void>;
  /** after a failure: the temp file removed, the target untouched */
  abort(): Promise<void>;
}

/**
 * Start writing `src` to `out`: `-` is standard output, whatever it is (a pipe, a socket, a file;
 * never ended, as it is the process's), a Writable is ended when done, a path as archiveTarget says.
 */
export async function openArchiveSink(out: ArchiveOut, src: Readable): Promise<ArchiveSink> {
  if (typeof out !== 'string' || out === '-') {
    const done = typeof out !== 'string' ? pipeline(src, out) : toStdout(src);
    return { done, commit: async () => undefined, abort: async () => undefined };
  }
  const { file: target, atomic } = await archiveTarget(out);
  const tmp = atomic ? path.join(path.dirname(target), `.${tempName(path.basename(target))}`) : target;
  const done = pipeline(src, createWriteStream(tmp, { mode: 0o644 }));
  return {
    done,
    commit: async () => {
      if (atomic) await fsp.rename(tmp, target);
    },
    abort: async () => {
      if (atomic) await fsp.rm(tmp, { force: true });
    },
  };
}

/** Write a tar archive of whole files, atomically where `out` is a file (archiveTarget). */
export async function writeArchive(out: ArchiveOut, entries: AsyncIterable<ArchiveEntry> | Iterable<ArchiveEntry>): Promise<void> {
  const pack = tar.pack();
  const sink = await openArchiveSink(out, pack as unknown as Readable);
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
        const src = createReadStream(e.file);
        const digest = tapDigest(src);
        await new Promise<void>((resolve, reject) => {
          const s = pack.entry(header(e.name, e.size, 'file'), (err) => (err ? reject(err) : resolve()));
          pipeline(src, s).catch(reject);
        });
        // what goes out is what the store says it is: a damaged blob fails the save
        const got = digest();
        if (e.digest && got !== e.digest) throw new DigestMismatchError(`the store's copy of ${e.digest} is damaged (lbuild fsck --repair)`, e.digest, got);
      }
    }
    pack.finalize();
    await sink.done;
    await sink.commit();
  } catch (err) {
    pack.destroy(err as Error);
    await sink.done.catch(() => undefined);
    await sink.abort();
    throw err;
  }
}

/** What an archive entry became: a file we stored under a name of our own, a directory or a link. */
type ArchiveNode = { kind: 'file'; stored: string } | { kind: 'dir' } | { kind: 'link'; target: string };

const MAX_LINK_HOPS = 40;

/**
 * An archive read into a flat folder of our own: every regular file is stored as `dest/<n>`,
 * and names, directories and symlinks live only in memory. Nothing the archive says about
 * paths is ever given to the host filesystem, so no entry can write, link or read outside
 * `dest` (links are followed in this in-memory namespace, where `..` stops at its root).
 */
export class UnpackedArchive {
  private constructor(private readonly nodes: Map<string, ArchiveNode>) {}

  static async unpack(file: string, dest: string): Promise<UnpackedArchive> {
    const nodes = new Map<string, ArchiveNode>();
    let n = 0;
    try {
      for await (const entry of tarEntries(createReadStream(file))) {
        const h = entry.header;
        const key = safeComponents(h.name).join('/');
        if (h.type === 'file' || h.type === 'contiguous-file') {
          const stored = path.join(dest, String(n++));
          await pipeEntry(entry, () => createWriteStream(stored, { flags: 'wx', mode: 0o600 }));
          nodes.set(key, { kind: 'file', stored });
          continue;
        }
        entry.resume();
        if (h.type === 'directory') nodes.set(key, { kind: 'dir' });
        else if (h.type === 'symlink') nodes.set(key, { kind: 'link', target: h.linkname ?? '' });
        else if (h.type === 'link') {
          // a hard link names an earlier entry of this archive
          const target = nodes.get(safeComponents(h.linkname ?? '').join('/'));
          if (target?.kind === 'file') nodes.set(key, target);
        }
      }
    } catch (e) {
      if (e instanceof LbuildError) throw e;
      throw new LbuildError(`${file}: not a readable tar archive (${(e as Error).message})`);
    }
    return new UnpackedArchive(nodes);
  }

  /** Follow `name` through the archive's own links; the node it names, if any. */
  private lookup(name: string): ArchiveNode | undefined {
    const rest = name.split('/').filter((p) => p !== '' && p !== '.');
    const cur: string[] = [];
    let hops = 0;
    while (rest.length > 0) {
      const p = rest.shift() as string;
      if (p === '..') {
        cur.pop();
        continue;
      }
      cur.push(p);
      const node = this.nodes.get(cur.join('/'));
      if (node?.kind !== 'link') continue;
      if (++hops > MAX_LINK_HOPS) return undefined;
      cur.pop();
      if (node.target.startsWith('/')) cur.length = 0;
      rest.unshift(...node.target.split('/').filter((x) => x !== '' && x !== '.'));
    }
    return this.nodes.get(cur.join('/')) ?? (cur.length === 0 ? { kind: 'dir' } : undefined);
  }

  has(name: string): boolean {
    return this.lookup(name)?.kind === 'file';
  }

  /** The stored copy of a file of the archive; undefined when the archive has no such file. */
  file(name: string): string | undefined {
    const node = this.lookup(name);
    return node?.kind === 'file' ? node.stored : undefined;
  }

  async read(name: string): Promise<Buffer | undefined> {
    const f = this.file(name);
    return f === undefined ? undefined : fsp.readFile(f);
  }
}
