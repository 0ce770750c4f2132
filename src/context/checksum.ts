import { closeSync, openSync, readSync, readlinkSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import * as path from 'node:path';
import xxhash, { type XXHashAPI } from 'xxhash-wasm';
import { sha256 } from '../oci/digest.js';
import { tempName } from '../util/fsx.js';
import { type CopySource, type Selection, matchSource, walkSelected } from './select.js';

let api: Promise<XXHashAPI> | undefined;
function hasher(): Promise<XXHashAPI> {
  api ??= xxhash();
  return api;
}

const STAT_MAGIC = 'lbuild-stat 2\0';
const STAT_END = '\0end\0';

/**
 * File content checksums (xxh64) remembered by (device, inode, size, mtime, ctime), persisted per
 * build context, so an unchanged file is never read again. An entry whose mtime falls within
 * the second the scan started is not trusted (the racy-git problem: the file could still change
 * within the same timestamp granularity) and is not saved.
 *
 * Kept compact for contexts of 100,000s of files: one string per file (`<stamp> <hash>`, keyed by
 * the path below the context root), saved as NUL-separated pairs between a header and an end
 * marker; a file without both (torn by a crash) is ignored.
 */
export class StatCache {
  private entries = new Map<string, string>();
  private dirty = false;
  private readonly scanSecond = Math.floor(Date.now() / 1000);
  private readonly prefixLength: number;
  hashed = 0;
  reused = 0;

  private constructor(
    private readonly file: string,
    contextRoot: string,
  ) {
    this.prefixLength = contextRoot.length + 1;
  }

  static async open(cacheDir: string, contextRoot: string): Promise<StatCache> {
    const file = path.join(cacheDir, 'stat', `${sha256(contextRoot).slice(7, 23)}.v2`);
    const c = new StatCache(file, contextRoot);
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.startsWith(STAT_MAGIC) && text.endsWith(STAT_END)) {
      const parts = text.slice(STAT_MAGIC.length, -STAT_END.length).split('\0');
      for (let i = 0; i + 1 < parts.length; i += 2) c.entries.set(parts[i] as string, parts[i + 1] as string);
    }
    return c;
  }

  async contentHash(abs: string, st: Stats): Promise<string> {
    const rel = abs.slice(this.prefixLength);
    const stamp = `${st.dev} ${st.ino} ${st.size} ${st.mtimeMs} ${st.ctimeMs} `;
    const prev = this.entries.get(rel);
    if (prev !== undefined && prev.length === stamp.length + 16 && prev.startsWith(stamp)) {
      this.reused++;
      return prev.slice(stamp.length);
    }
    const h = await hashFile(abs, st.size);
    this.hashed++;
    if (Math.floor(st.mtimeMs / 1000) < this.scanSecond && Math.floor(st.ctimeMs / 1000) < this.scanSecond) {
      this.entries.set(rel, stamp + h);
      this.dirty = true;
    } else if (prev !== undefined) {
      this.entries.delete(rel);
      this.dirty = true;
    }
    return h;
  }

  /** Written in pieces (no one string of the whole cache), renamed into place when complete. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    await mkdir(path.dirname(this.file), { recursive: true });
    // the store's tmp/ (same filesystem): what a killed process leaves there is cleaned up
    const tmp = path.join(path.dirname(this.file), '..', '..', 'tmp', tempName('stat'));
    const fh = await open(tmp, 'w', 0o644);
    try {
      let chunk = STAT_MAGIC;
      let first = true;
      for (const [rel, v] of this.entries) {
        chunk += `${first ? '' : '\0'}${rel}\0${v}`;
        first = false;
        if (chunk.length > 1 << 20) {
          await fh.write(chunk);
          chunk = '';
        }
      }
      await fh.write(`${chunk}${STAT_END}`);
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    this.dirty = false;
  }
}

const CHUNK = 1 << 20;
let buffer: Buffer | undefined;

/** xxh64 of a file, read synchronously into a reused buffer (async reads of small files are ~10x slower). */
export async function hashFile(abs: string, size: number): Promise<string> {
  const x = await hasher();
  buffer ??= Buffer.allocUnsafe(CHUNK);
  const fd = openSync(abs, 'r');
  try {
    if (size <= CHUNK) {
      const n = readSync(fd, buffer, 0, CHUNK, 0);
      return x.h64Raw(buffer.subarray(0, n)).toString(16).padStart(16, '0');
    }
    const h = x.create64();
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, CHUNK, pos);
      if (n <= 0) break;
      h.update(buffer.subarray(0, n));
      pos += n;
    }
    return h.digest().toString(16).padStart(16, '0');
  } finally {
    closeSync(fd);
  }
}

export interface SourcesDigest {
  digest: string;
  /** path → `type mode uid gid size content-or-target`, for explaining a miss */
  files: Record<string, string>;
}

function typeChar(st: Stats): string {
  return st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'o';
}

async function describe(abs: string, st: Stats, cache: StatCache): Promise<string> {
  const head = `${typeChar(st)} ${(st.mode & 0o7777).toString(8)} ${st.uid} ${st.gid}`;
  if (st.isFile()) return `${head} ${st.size} ${await cache.contentHash(abs, st)}`;
  if (st.isSymbolicLink()) return `${head} 0 ->${readlinkSync(abs)}`;
  return `${head} 0`;
}

/**
 * A Merkle-style digest of exactly the files a COPY/ADD selects from the context (after
 * .dockerignore and --exclude): relative path, type, mode, owner, size, content checksum, link
 * target. Never the mtime: a touch does not miss the cache.
 */
export async function sourcesDigest(source: CopySource, patterns: readonly string[], sel: Selection, cache: StatCache): Promise<SourcesDigest> {
  const files: Record<string, string> = {};
  for (const pattern of patterns) {
    for (const m of matchSource(source, pattern)) {
      files[m.rel === '' ? '.' : m.rel] = await describe(m.abs, m.st, cache);
      if (!m.st.isDirectory()) continue;
      for (const e of walkSelected(sel, m.abs, m.rel, '')) files[e.ctxRel] = await describe(e.abs, e.st, cache);
    }
  }
  // hashed line by line: no string of the whole list for contexts of 100,000s of files
  const h = createHash('sha256');
  for (const k of Object.keys(files).sort()) h.update(`${k}\0${files[k]}\n`);
  return { digest: `sha256:${h.digest('hex')}`, files };
}
