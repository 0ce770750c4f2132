import { closeSync, openSync, readSync, readlinkSync, type Stats } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import xxhash, { type XXHashAPI } from 'xxhash-wasm';
import { sha256 } from '../oci/digest.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { type CopySource, type Selection, matchSource, walkSelected } from './select.js';

let api: Promise<XXHashAPI> | undefined;
function hasher(): Promise<XXHashAPI> {
  api ??= xxhash();
  return api;
}

interface StatEntry {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  h: string;
}

/**
 * File content checksums (xxh64) remembered by (device, inode, size, mtime, ctime), persisted per
 * build context, so an unchanged file is never read again. An entry whose mtime falls within
 * the second the scan started is not trusted (the racy-git problem: the file could still change
 * within the same timestamp granularity) and is not saved.
 */
export class StatCache {
  private entries = new Map<string, StatEntry>();
  private dirty = false;
  private readonly scanSecond = Math.floor(Date.now() / 1000);
  hashed = 0;
  reused = 0;

  private constructor(private readonly file: string) {}

  static async open(cacheDir: string, contextRoot: string): Promise<StatCache> {
    const file = path.join(cacheDir, 'stat', `${sha256(contextRoot).slice(7, 23)}.json`);
    const c = new StatCache(file);
    const saved = await readJsonFile<{ version: 1; entries: Record<string, StatEntry> }>(file).catch(() => undefined);
    if (saved?.version === 1) c.entries = new Map(Object.entries(saved.entries));
    return c;
  }

  async contentHash(abs: string, st: Stats): Promise<string> {
    const prev = this.entries.get(abs);
    if (prev && prev.dev === st.dev && prev.ino === st.ino && prev.size === st.size && prev.mtimeMs === st.mtimeMs && prev.ctimeMs === st.ctimeMs) {
      this.reused++;
      return prev.h;
    }
    const h = await hashFile(abs, st.size);
    this.hashed++;
    if (Math.floor(st.mtimeMs / 1000) < this.scanSecond && Math.floor(st.ctimeMs / 1000) < this.scanSecond) {
      this.entries.set(abs, { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, h });
      this.dirty = true;
    } else if (prev) {
      this.entries.delete(abs);
      this.dirty = true;
    }
    return h;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, JSON.stringify({ version: 1, entries: Object.fromEntries(this.entries) }));
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
  const lines = Object.keys(files)
    .sort()
    .map((k) => `${k}\0${files[k]}\n`)
    .join('');
  return { digest: sha256(lines), files };
}
