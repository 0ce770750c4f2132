import { closeSync, openSync, readFileSync, writeSync, type Stats } from 'node:fs';
import type { XXHashAPI } from 'xxhash-wasm';
import { PACK_FORMAT } from './pack-format.js';

/*
 * A COPY layer's file index: for each regular file its tar entry holds as content (not hard
 * links), what the entry was made from — mode, owner, size, the mtime to the fraction of a
 * millisecond, the xxh64 of the bytes, whether it carries xattrs. Written while the layer is
 * packed, kept in the snapshot's directory (it describes that snapshot's inodes, and goes with
 * it), read by the next build of the same step to tell which files it can take over (reuse.ts).
 * One JSON array per line: a name may hold any byte but NUL and `/`.
 */

export const FILE_INDEX = 'files.jsonl';

/** The first line: the format of the lines and of the tar bytes they point at (tarwriter's PACK_FORMAT). */
const HEADER = ['lbuild file index', 1, PACK_FORMAT];

export interface IndexedFile {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  hash: string;
  xattrs: boolean;
  /** where its entry (headers, content, padding) lies in the layer's tar */
  offset: number;
  length: number;
  /** the mtime its header holds (clamped to SOURCE_DATE_EPOCH) */
  tarMtime: number;
}

/** Where an entry was written, for add(). */
export interface EntryPlace {
  offset: number;
  length: number;
  tarMtime: number;
}

/** Appends index lines to a file, a block at a time (an index of 200,000 files is not held). */
export class FileIndexWriter {
  private readonly fd: number;
  private lines: string[] = [];
  private bytes = 0;

  constructor(
    file: string,
    /** hashes the content as it is packed */
    readonly hasher: XXHashAPI,
  ) {
    this.fd = openSync(file, 'w', 0o600);
    this.lines.push(`${JSON.stringify(HEADER)}\n`);
  }

  add(rel: string, st: Pick<Stats, 'mode' | 'uid' | 'gid' | 'size' | 'mtimeMs'>, hash: string, xattrs: boolean, at: EntryPlace): void {
    const line = `${JSON.stringify([rel, st.mode & 0o7777, st.uid, st.gid, st.size, st.mtimeMs, hash, xattrs ? 1 : 0, at.offset, at.length, at.tarMtime])}\n`;
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= 1 << 16) this.flush();
  }

  close(): void {
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
    }
  }

  private flush(): void {
    if (!this.lines.length) return;
    const buf = Buffer.from(this.lines.join(''));
    for (let done = 0; done < buf.length; ) done += writeSync(this.fd, buf, done, buf.length - done);
    this.lines = [];
    this.bytes = 0;
  }
}

/** The index of a snapshot, or undefined when it has none or it does not read as one. */
export function readFileIndex(file: string): Map<string, IndexedFile> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  if (lines[0] !== JSON.stringify(HEADER)) return undefined;
  const out = new Map<string, IndexedFile>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return undefined;
    }
    if (!Array.isArray(v) || v.length !== 11 || typeof v[0] !== 'string' || typeof v[6] !== 'string' || ![...v.slice(1, 6), ...v.slice(7)].every((n) => typeof n === 'number')) return undefined;
    const [rel, mode, uid, gid, size, mtimeMs, hash, xattrs, offset, length, tarMtime] = v as [string, number, number, number, number, number, string, number, number, number, number];
    out.set(rel, { mode, uid, gid, size, mtimeMs, hash, xattrs: xattrs !== 0, offset, length, tarMtime });
  }
  return out;
}
