import { closeSync, openSync, readSync, readlinkSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import xxhash, { type XXHashAPI } from 'xxhash-wasm';
import { sha256 } from '../oci/digest.js';
import { tempName, yieldToEvents } from '../util/fsx.js';
import { type CopySource, type Selection, type WalkListing, matchSource, walkSelected } from './select.js';
import { layout } from '../store/layout.js';
import { readXattrsOf, xattrTag } from '../util/xattr.js';

let api: Promise<XXHashAPI> | undefined;
function hasher(): Promise<XXHashAPI> {
  api ??= xxhash();
  return api;
}

const STAT_MAGIC = Buffer.from('lbstat4\n');
const STAT_END = Buffer.from('\nend\n');
/** per file: dev, ino, size, mtimeMs, ctimeMs (float64), the xxh64 and the xattr tag (uint64, 0: none) */
const FIELDS = 5;
const RECORD = FIELDS * 8 + 16;

/**
 * File content checksums (xxh64) remembered by (device, inode, size, mtime, ctime), persisted per
 * build context, so an unchanged file is never read again. An entry whose mtime falls within
 * the second the scan started is not trusted (the racy-git problem: the file could still change
 * within the same timestamp granularity) and is not saved.
 *
 * Keyed by inode, in typed arrays: 56 bytes a file in memory and on disk, where a map of path
 * strings cost ~450 (contexts of 100,000s of files). A file without both its header and its end
 * marker (torn by a crash) is ignored. The fingerprint of a file's shipped xattrs is remembered
 * the same way (setting an xattr changes the ctime), so a warm build reads none.
 */
export class StatCache {
  private readonly slotOf = new Map<number, number>(); // inode → slot
  private stats = new Float64Array(FIELDS * 1024);
  private hashes = new BigUint64Array(1024);
  private xtags = new BigUint64Array(1024);
  /** 1: the slot's xtag is known (a slot hashed now learns it once the walk has read xattrs) */
  private xknown = new Uint8Array(1024);
  private used = 0;
  private dirty = false;
  private readonly scanSecond = Math.floor(Date.now() / 1000);
  hashed = 0;
  reused = 0;

  private constructor(
    private readonly file: string,
    private readonly tmpDir: string,
  ) {}

  static async open(storeRoot: string, contextRoot: string): Promise<StatCache> {
    const file = path.join(layout.stat(storeRoot), `${sha256(contextRoot).slice(7, 23)}.v4`);
    const c = new StatCache(file, layout.tmp(storeRoot));
    const data = await readFile(file).catch(() => Buffer.alloc(0));
    const body = data.length - STAT_MAGIC.length - STAT_END.length;
    if (body >= 0 && body % RECORD === 0 && data.subarray(0, STAT_MAGIC.length).equals(STAT_MAGIC) && data.subarray(data.length - STAT_END.length).equals(STAT_END)) {
      c.load(data.subarray(STAT_MAGIC.length, STAT_MAGIC.length + body));
    }
    return c;
  }

  /** Take in the records of a saved file (little-endian). */
  private load(records: Buffer): void {
    this.reserve(records.length / RECORD);
    // a DataView reads each field in one builtin call: the Buffer read* calls (JavaScript, one
    // per field) were most of a warm build's 15 ms here (5,000 files)
    const v = new DataView(records.buffer, records.byteOffset, records.length);
    for (let off = 0; off < records.length; off += RECORD) {
      const slot = this.slot(v.getFloat64(off + 8, true));
      for (let f = 0; f < FIELDS; f++) this.stats[slot * FIELDS + f] = v.getFloat64(off + f * 8, true);
      this.hashes[slot] = v.getBigUint64(off + FIELDS * 8, true);
      this.xtags[slot] = v.getBigUint64(off + FIELDS * 8 + 8, true);
      this.xknown[slot] = 1;
    }
  }

  /** Room for `n` slots in all, grown once instead of doubling on the way. */
  private reserve(n: number): void {
    if (n <= this.hashes.length) return;
    this.stats = grown(this.stats, new Float64Array(FIELDS * n));
    this.hashes = grown(this.hashes, new BigUint64Array(n));
    this.xtags = grown(this.xtags, new BigUint64Array(n));
    this.xknown = grown(this.xknown, new Uint8Array(n));
  }

  /** The slot of an inode, a new one if it has none. */
  private slot(ino: number): number {
    const known = this.slotOf.get(ino);
    if (known !== undefined) return known;
    if (this.used === this.hashes.length) {
      this.stats = grown(this.stats, new Float64Array(this.stats.length * 2));
      this.hashes = grown(this.hashes, new BigUint64Array(this.hashes.length * 2));
      this.xtags = grown(this.xtags, new BigUint64Array(this.xtags.length * 2));
      this.xknown = grown(this.xknown, new Uint8Array(this.xknown.length * 2));
    }
    this.slotOf.set(ino, this.used);
    return this.used++;
  }

  /**
   * A new slot for this file state, or undefined when its times fall within the second the scan
   * started (it could still change unseen: not remembered).
   */
  private settle(st: Stats, hash: bigint): number | undefined {
    if (Math.floor(st.mtimeMs / 1000) >= this.scanSecond || Math.floor(st.ctimeMs / 1000) >= this.scanSecond) return undefined;
    const slot = this.slot(st.ino);
    this.stats.set([st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs], slot * FIELDS);
    this.hashes[slot] = hash;
    this.xknown[slot] = 0;
    this.dirty = true;
    return slot;
  }

  /** The slot remembering this very file state, if one does. */
  private current(st: Stats): number | undefined {
    const known = this.slotOf.get(st.ino);
    if (known === undefined) return undefined;
    const b = known * FIELDS;
    const v = this.stats;
    return v[b] === st.dev && v[b + 2] === st.size && v[b + 3] === st.mtimeMs && v[b + 4] === st.ctimeMs ? known : undefined;
  }

  /** The hash remembered for this very file state, without reading it; undefined if none is. */
  knownHash(st: Stats): string | undefined {
    const cur = this.current(st);
    if (cur === undefined) return undefined;
    this.reused++;
    return hex64(this.hashes[cur] as bigint);
  }

  async contentHash(abs: string, st: Stats): Promise<string> {
    const remembered = this.knownHash(st);
    if (remembered !== undefined) return remembered;
    const known = this.slotOf.get(st.ino);
    const h = await hashFileRaw(abs, st.size);
    this.hashed++;
    if (this.settle(st, h) === undefined && known !== undefined) {
      this.stats[known * FIELDS + 3] = -1; // never matches again
      this.dirty = true;
    }
    return hex64(h);
  }

  /** The xattr tag ('' for none) remembered for this file state, undefined if it must be read. */
  knownXattrTag(st: Stats): string | undefined {
    const cur = this.current(st);
    if (cur === undefined || this.xknown[cur] !== 1) return undefined;
    const t = this.xtags[cur] as bigint;
    return t === 0n ? '' : hex64(t);
  }

  /**
   * Directories and symlinks are remembered here too (content hash 0): their ctime also moves
   * with any xattr change, and a warm build then reads no xattrs at all.
   */
  rememberXattrTag(st: Stats, tag: string): void {
    const cur = this.current(st) ?? (st.isFile() ? undefined : this.settle(st, 0n));
    if (cur === undefined) return;
    this.xtags[cur] = tag === '' ? 0n : BigInt(`0x${tag}`);
    this.xknown[cur] = 1;
    this.dirty = true;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await mkdir(path.dirname(this.file), { recursive: true });
    const out = Buffer.allocUnsafe(STAT_MAGIC.length + this.used * RECORD + STAT_END.length);
    STAT_MAGIC.copy(out, 0);
    const v = new DataView(out.buffer, out.byteOffset, out.length);
    let off = STAT_MAGIC.length;
    for (let slot = 0; slot < this.used; slot++) {
      if (this.stats[slot * FIELDS + 3] === -1 || this.xknown[slot] !== 1) continue;
      for (let f = 0; f < FIELDS; f++) v.setFloat64(off + f * 8, this.stats[slot * FIELDS + f] as number, true);
      v.setBigUint64(off + FIELDS * 8, this.hashes[slot] as bigint, true);
      v.setBigUint64(off + FIELDS * 8 + 8, this.xtags[slot] as bigint, true);
      off += RECORD;
    }
    STAT_END.copy(out, off);
    // the store's tmp/ (same filesystem): what a killed process leaves there is cleaned up
    const tmp = path.join(this.tmpDir, tempName('stat'));
    await writeFile(tmp, out.subarray(0, off + STAT_END.length));
    await rename(tmp, this.file);
    // the formats of earlier versions (JSON, v3), replaced by this one
    await rm(this.file.replace(/\.v4$/, '.json'), { force: true });
    await rm(this.file.replace(/\.v4$/, '.v3'), { force: true });
    this.dirty = false;
  }
}

function grown<T extends Float64Array | BigUint64Array | Uint8Array>(old: T, bigger: T): T {
  (bigger as Uint8Array).set(old as Uint8Array);
  return bigger;
}

const CHUNK = 1 << 20;
let buffer: Buffer | undefined;

/** xxh64 of a file, read synchronously into a reused buffer (async reads of small files are ~10x slower). */
export async function hashFileRaw(abs: string, size: number): Promise<bigint> {
  const x = await hasher();
  buffer ??= Buffer.allocUnsafe(CHUNK);
  const fd = openSync(abs, 'r');
  try {
    if (size <= CHUNK) {
      const n = readSync(fd, buffer, 0, CHUNK, 0);
      return x.h64Raw(buffer.subarray(0, n));
    }
    const h = x.create64();
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, CHUNK, pos);
      if (n <= 0) break;
      h.update(buffer.subarray(0, n));
      pos += n;
    }
    return h.digest();
  } finally {
    closeSync(fd);
  }
}

export interface SourcesDigest {
  digest: string;
  /** path → `type mode [uid:gid] size content-or-target`, for explaining a miss */
  files: Record<string, string>;
}

/** The loaded xxhash API, for code that hashes bytes it already holds (the copier). */
export async function loadHasher(): Promise<XXHashAPI> {
  return hasher();
}

export function hex64(h: bigint): string {
  return h.toString(16).padStart(16, '0');
}

/**
 * Describes the entries a COPY selects, in the one format both the key (before the copy) and
 * the copier (what it really read) use, so the two can be compared. Owners count only where
 * COPY keeps them (`--from` a stage or image; context files become root's, as Docker's client
 * resets them). Devices, FIFOs and sockets are left out: COPY does not copy them. A file that is
 * a hard link of one described before is named as such: COPY recreates the link.
 */
export class SourcesDescriber {
  private readonly files: Record<string, string> = {};
  private readonly inodes = new Map<string, string>();

  constructor(private readonly keepOwner: boolean) {}

  private readonly heads = new Map<string, string>();
  private readonly xtags = new Map<string, string>();

  /**
   * `content`: the xxh64 (hex) of a regular file's bytes; left out, `fill` gives it later (a
   * large file hashed after it was copied). `size` overrides st.size (the bytes really read).
   */
  add(key: string, st: Stats, content?: string, linkTarget?: string, size = st.size): void {
    const t = typeChar(st);
    if (t === 'o') return;
    const k = key === '' ? '.' : key;
    if (t === 'f' && st.nlink > 1) {
      const id = `${st.dev}:${st.ino}`;
      const first = this.inodes.get(id);
      if (first !== undefined && first !== k) {
        this.files[k] = `h ${first}`;
        return;
      }
      this.inodes.set(id, k);
    }
    const head = `${t} ${(st.mode & 0o7777).toString(8)}${this.keepOwner ? ` ${st.uid}:${st.gid}` : ''}`;
    if (t === 'f' && content === undefined) this.heads.set(k, head);
    this.files[k] = t === 'f' ? `${head} ${size} ${content ?? ''}` : t === 'l' ? `${head} ->${linkTarget ?? ''}` : head;
  }

  fill(key: string, size: number, content: string): void {
    const k = key === '' ? '.' : key;
    const head = this.heads.get(k);
    if (head === undefined) return;
    this.heads.delete(k);
    this.files[k] = `${head} ${size} ${content}`;
  }

  /** The entry's shipped xattrs (xattrTag; '' for none): part of what COPY copies. */
  setXattrs(key: string, tag: string): void {
    if (tag !== '') this.xtags.set(key === '' ? '.' : key, tag);
  }

  /** Force a difference from any key (an input that changed while it was being read). */
  taint(key: string): void {
    this.files[key === '' ? '.' : key] = `changed-while-read ${Date.now()}-${Math.random()}`;
  }

  result(): SourcesDigest {
    // most trees have no xattrs: their entries are used as they are
    const files = this.xtags.size ? { ...this.files } : this.files;
    for (const [k, tag] of this.xtags) {
      const v = files[k];
      if (v !== undefined && !v.startsWith('h ')) files[k] = `${v} xattr:${tag}`; // a hard link has its first name's
    }
    // one JSON array per entry: names and link targets may hold any byte but NUL, `\n` included
    const h = createHash('sha256');
    // hashed in pieces of ~64 KiB: one update an entry was 5,000 calls into the hash for a small context
    let piece = '';
    for (const k of Object.keys(files).sort()) {
      piece += `${JSON.stringify([k, files[k]])}\n`;
      if (piece.length >= 65536) {
        h.update(piece);
        piece = '';
      }
    }
    h.update(piece);
    return { digest: `sha256:${h.digest('hex')}`, files };
  }
}

function typeChar(st: Stats): string {
  return st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'o';
}

/** Content hashes for files: the context's stat cache, or (a read-only view of layers) plain hashing. */
export interface ContentHasher {
  contentHash(abs: string, st: Stats): Promise<string>;
  /** the content hash if remembered for this state, without reading or waiting */
  knownHash?(st: Stats): string | undefined;
  /** an entry's xattr tag if remembered for this state ('' for none); undefined: read it */
  knownXattrTag?(st: Stats): string | undefined;
  rememberXattrTag?(st: Stats, tag: string): void;
}

export const plainHasher: ContentHasher = {
  contentHash: async (abs, st) => hex64(await hashFileRaw(abs, st.size)),
};

/**
 * A digest of exactly the entries a COPY/ADD selects (after .dockerignore and --exclude):
 * relative path, type, mode, owner where kept, size, content checksum, link target, hard links.
 * Never the mtime: a touch does not miss the cache. `listing`: what the walk saw, for the copy;
 * `stopped`: asked now and then, the walk gives up (throws) once it says so.
 */
export async function sourcesDigest(source: CopySource, patterns: readonly string[], sel: Selection, cache: ContentHasher, listing?: WalkListing, stopped?: () => boolean): Promise<SourcesDigest> {
  const d = new SourcesDescriber(source.keepOwner);
  // xattrs not remembered are read a few thousand entries at a time (one getfattr run each):
  // holding every entry of a cold 200,000-file walk until the end took 100 MB
  let unread: { key: string; abs: string; st: Stats }[] = [];
  const readUnread = async (): Promise<void> => {
    const batch = unread;
    unread = [];
    const found = await readXattrsOf(batch.map((u) => u.abs));
    for (const u of batch) {
      const tag = xattrTag(found.get(u.abs));
      d.setXattrs(u.key, tag);
      cache.rememberXattrTag?.(u.st, tag);
    }
  };
  const add = async (key: string, abs: string, st: Stats): Promise<void> => {
    // a remembered hash is taken without an await: a warm walk is thousands of files
    if (st.isFile()) d.add(key, st, cache.knownHash?.(st) ?? (await cache.contentHash(abs, st)));
    else if (st.isSymbolicLink()) d.add(key, st, undefined, readlinkSync(abs));
    else if (st.isDirectory()) d.add(key, st);
    else return;
    const known = cache.knownXattrTag?.(st);
    if (known === undefined) unread.push({ key, abs, st });
    else d.setXattrs(key, known);
    if (unread.length >= XATTR_BATCH) await readUnread();
  };
  let n = 0;
  for (const pattern of patterns) {
    for (const m of matchSource(source, pattern)) {
      await add(m.rel, m.abs, m.st);
      if (!m.st.isDirectory()) continue;
      for (const e of walkSelected(sel, m.abs, m.real, '', listing)) {
        // signals are handled during a walk of 100,000s of files
        if (++n % 1024 === 0) {
          await yieldToEvents();
          // a walk made ahead (builder/prefetch.ts) that is no longer wanted
          if (stopped?.()) throw new Error('walk stopped');
        }
        await add(e.ctxRel, e.abs, e.st);
      }
    }
  }
  await readUnread();
  return d.result();
}

/** Entries whose xattrs one getfattr run reads (its argument list holds about this many paths). */
export const XATTR_BATCH = 4096;
