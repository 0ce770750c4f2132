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

/** What reads an index: the entry of a path. */
export interface FileLookup {
  get(rel: string): IndexedFile | undefined;
}

/**
 * An index in memory as its file's bytes, with an open-addressing table over its lines keyed
 * by the JSON text of each path: a line is parsed only when its path is looked up. Objects or
 * rows per file for a 200,000-file COPY took 40-60 MB more, which an edit of one file at that
 * size could not afford (peak RSS past 300 MB).
 */
class FileIndex implements FileLookup {
  private readonly starts: Uint32Array;
  private readonly ends: Uint32Array;
  /** per slot: 1 + the line's number, 0 for empty */
  private readonly slots: Uint32Array;
  private readonly hashes: Uint32Array;
  private readonly nameEnds: Uint32Array;
  private readonly mask: number;

  constructor(private readonly buf: Buffer, lines: number) {
    this.starts = new Uint32Array(lines);
    this.ends = new Uint32Array(lines);
    this.nameEnds = new Uint32Array(lines);
    let size = 16;
    while (size < lines * 2) size *= 2;
    this.slots = new Uint32Array(size);
    this.hashes = new Uint32Array(size);
    this.mask = size - 1;
  }

  /** Add the line [start, end) whose path's JSON text ends (closing quote included) at nameEnd. */
  add(n: number, start: number, end: number, nameEnd: number): void {
    this.starts[n] = start;
    this.ends[n] = end;
    this.nameEnds[n] = nameEnd;
    const h = fnv(this.buf, start + 1, nameEnd);
    let i = h & this.mask;
    while (this.slots[i] !== 0) i = (i + 1) & this.mask;
    this.slots[i] = n + 1;
    this.hashes[i] = h;
  }

  get(rel: string): IndexedFile | undefined {
    // most names are printable ASCII without `"` or `\`: their JSON text is the name quoted, and
    // its bytes are its char codes (no Buffer made for each of 100,000s of lookups)
    const plain = PLAIN.test(rel);
    const name = plain ? undefined : Buffer.from(JSON.stringify(rel));
    const length = name ? name.length : rel.length + 2;
    const h = name ? fnv(name, 0, name.length) : fnvQuoted(rel);
    for (let i = h & this.mask; this.slots[i] !== 0; i = (i + 1) & this.mask) {
      const n = (this.slots[i] as number) - 1;
      const start = (this.starts[n] as number) + 1;
      const nameEnd = this.nameEnds[n] as number;
      if (this.hashes[i] !== h || nameEnd - start !== length) continue;
      if (name ? this.buf.compare(name, 0, length, start, nameEnd) !== 0 : !sameQuoted(this.buf, start, rel)) continue;
      return parseFields(this.buf.toString('latin1', nameEnd, this.ends[n]));
    }
    return undefined;
  }
}

/** Names whose JSON text is `"<name>"` byte for byte. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** FNV-1a over the bytes of `"<name>"`, for a PLAIN name. */
function fnvQuoted(name: string): number {
  let h = Math.imul(FNV_OFFSET ^ 0x22, FNV_PRIME);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), FNV_PRIME);
  return Math.imul(h ^ 0x22, FNV_PRIME) >>> 0;
}

/** Do the bytes at `start` read `"<name>"`, for a PLAIN name? */
function sameQuoted(b: Buffer, start: number, name: string): boolean {
  if (b[start] !== 0x22 || b[start + name.length + 1] !== 0x22) return false;
  for (let i = 0; i < name.length; i++) if (b[start + 1 + i] !== name.charCodeAt(i)) return false;
  return true;
}

/** FNV-1a over bytes [from, to). */
function fnv(b: Buffer, from: number, to: number): number {
  let h = FNV_OFFSET;
  for (let i = from; i < to; i++) h = Math.imul(h ^ (b[i] as number), FNV_PRIME);
  return h >>> 0;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** The fields after the path: `,mode,uid,gid,size,mtimeMs,"hash",xattrs,offset,length,tarMtime]` (JSON numbers). */
function parseFields(tail: string): IndexedFile | undefined {
  if (tail.charCodeAt(0) !== 0x2c) return undefined;
  let f: unknown;
  try {
    f = JSON.parse(`[${tail.slice(1)}`);
  } catch {
    return undefined;
  }
  if (!Array.isArray(f) || f.length !== 10) return undefined;
  const [mode, uid, gid, size, mtimeMs, hash, xattrs, offset, length, tarMtime] = f as unknown[];
  // a hash that is not one never equals a source's, so is never taken: its type is enough
  if (typeof hash !== 'string' || hash.length !== 16) return undefined;
  for (const v of [mode, uid, gid, size, mtimeMs, xattrs, offset, length, tarMtime]) if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  return { mode, uid, gid, size, mtimeMs, hash, xattrs: xattrs !== 0, offset, length, tarMtime } as IndexedFile;
}

/** The index of a snapshot, or undefined when it has none or it does not read as one. */
export function readFileIndex(file: string): FileLookup | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return undefined;
  }
  const header = Buffer.from(`${JSON.stringify(HEADER)}\n`);
  if (buf.length >= 2 ** 32 || !buf.subarray(0, header.length).equals(header)) return undefined;
  let lines = 0;
  for (let i = buf.indexOf(0x0a, header.length); i >= 0; i = buf.indexOf(0x0a, i + 1)) lines++;
  const index = new FileIndex(buf, lines);
  let n = 0;
  for (let start = header.length; start < buf.length; ) {
    const end = buf.indexOf(0x0a, start);
    // every line ends in a newline: a torn last line is no index
    if (end < 0 || n >= lines) return undefined;
    // a line is ["<path as JSON>",...]: find the path's closing quote (escapes skipped)
    if (buf[start] !== 0x5b || buf[start + 1] !== 0x22) return undefined;
    let q = start + 2;
    while (q < end && buf[q] !== 0x22) q += buf[q] === 0x5c ? 2 : 1;
    if (q >= end) return undefined;
    index.add(n++, start, end, q + 1);
    start = end + 1;
  }
  return index;
}
