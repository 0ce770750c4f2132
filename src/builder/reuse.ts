import { closeSync, linkSync, lstatSync, lutimesSync, openSync, unlinkSync, constants, type Stats } from 'node:fs';
import * as path from 'node:path';
import type { ContentHasher } from '../context/checksum.js';
import type { FileLookup } from '../diff/file-index.js';
import { isErrno } from '../errors.js';
import { ReuseConflict } from '../diff/reuse-conflict.js';
import { childPath } from '../util/paths.js';

/*
 * Incremental COPY (issue 17.3). When a COPY misses because some of its sources changed, or its
 * parent did, a file that the copy would write exactly as the previous layer of the same
 * instruction holds it (same bytes, mode, owner and mtime, no extended attributes, no hard
 * links) is not written through the overlay: once the overlay is unmounted, the new upper dir
 * gets a hard link to the previous snapshot's inode, and the new tar that file's entry from the
 * previous tar (diff/tarwriter.ts). Snapshots are never written after they are made, so sharing
 * inodes is safe, and a tar entry holds nothing but what is compared. What the previous file is
 * comes from its layer's file index (diff/file-index.ts, written as that layer was packed), what
 * the source is from the content hash the cache key uses; everything the parent decides (owners
 * by name, what lies at the destination, the directories) is done through the overlay as in a
 * full copy. Whatever cannot be vouched for (a path written twice, an attribute found later, an
 * index that does not match its tar) makes the step run again as a full copy (ReuseConflict).
 */

export { ReuseConflict };

/** Files a copy skipped, to be linked into the upper dir once it is unmounted. */
export interface ReusedFiles {
  prev: PreviousLayer;
  /** paths relative to both roots */
  files: ReadonlySet<string>;
}

export interface Wanted {
  uid: number;
  gid: number;
  mode: number;
}

/** The previous build of the step: its snapshot's diff dir, its tar, the file index of both. */
export interface PreviousLayer {
  diff: string;
  blob: string;
  index: FileLookup;
}

export class CopyReuse {
  /** skipped files, relative to the root (as the index and the link step name them) */
  private readonly skipped = new Set<string>();
  /** every directory a skipped file lies below */
  private readonly holding = new Set<string>();
  /** directories of the previous snapshot checked to be real directories (no symlink on the way) */
  private readonly prevDirs = new Set<string>(['']);
  /** the directory whose path guard() found clear of skipped files last */
  private checkedParent = '';
  /** parent directories known to be in the upper dir already */
  private readonly inUpper = new Set<string>(['']);

  constructor(
    private readonly prev: PreviousLayer,
    /** the content hash of a source file (the context's stat cache, or reading it) */
    private readonly hasher: ContentHasher,
    /** the merged root the copy writes to */
    private readonly root: string,
    private readonly upper: string,
  ) {}

  /**
   * Before anything is written at `dst` or below it: a fresh copy would have a skipped file
   * there. A skipped path is absent from the merged view, so a path through it resolves to
   * itself and is caught here. `replacing`: a file or symlink goes at dst, replacing a directory
   * there (and any skipped file in it) in a fresh copy.
   */
  guard(dst: string, replacing: boolean): void {
    if (this.skipped.size === 0) return;
    if (replacing && this.holding.has(dst)) throw new ReuseConflict(`${this.rel(dst)} replaces a directory the copy wrote`);
    const rel = this.rel(dst);
    if (this.skipped.has(rel)) throw new ReuseConflict(`${rel} is written twice`);
    // the directories above: checked once for all the entries of a directory (a skip adds a
    // file in the directory checked last, never one above it)
    const parent = path.dirname(dst);
    if (parent === this.checkedParent) return;
    for (let p = parent; p.length > this.root.length; p = path.dirname(p)) {
      const r = this.rel(p);
      if (this.skipped.has(r)) throw new ReuseConflict(`${r} is written twice`);
    }
    this.checkedParent = parent;
  }

  /**
   * The source's content hash when the previous layer holds at dst's path the file a copy of
   * `src` would write there (then dst is skipped); undefined when it does not.
   */
  match(src: string, dst: string, st: Stats, want: Wanted): string | undefined | Promise<string | undefined> {
    const prev = this.candidate(dst, st, want);
    if (prev === undefined) return undefined;
    // no wait when the stat cache knows the source: a copy of 100,000s of files waits less
    const known = this.hasher.knownHash?.(st);
    if (known !== undefined) return this.matched(dst, prev, known);
    return this.hasher.contentHash(src, st).then((hash) => this.matched(dst, prev, hash));
  }

  /**
   * The content hash of the previous file at dst's path if, all but the content compared, it is
   * the copy of a source in this state.
   */
  private candidate(dst: string, st: Stats, want: Wanted): string | undefined {
    if (st.nlink > 1 || !dst.startsWith(`${this.root}/`)) return undefined;
    const rel = this.rel(dst);
    const prev = this.prev.index.get(rel);
    if (!prev || prev.xattrs || prev.size !== st.size || prev.uid !== want.uid || prev.gid !== want.gid || prev.mode !== want.mode) return undefined;
    // COPY sets the source's mtime, to the millisecond (a Date): the same value gives the same time
    if (Math.abs(prev.mtimeMs - st.mtime.getTime()) >= 0.5) return undefined;
    // a source with attributes is copied: they go on the copy
    const tag = this.hasher.knownXattrTag?.(st);
    if (tag !== undefined && tag !== '') return undefined;
    return this.prevDir(path.dirname(rel)) ? prev.hash : undefined;
  }

  /** Skip dst when the source's content is the previous file's. */
  private matched(dst: string, prevHash: string, hash: string): string | undefined {
    if (hash !== prevHash) return undefined;
    this.skip(dst, this.rel(dst));
    return hash;
  }

  /** What the copy skipped, for linkReused. */
  result(): ReusedFiles | undefined {
    if (this.skipped.size === 0) return undefined;
    return { prev: this.prev, files: this.skipped };
  }

  /** A path below the root (resolveInRoot's results are), relative to it: path.relative costs a resolve of both. */
  private rel(abs: string): string {
    return abs === this.root ? '' : abs.slice(this.root.length + 1);
  }

  /** Is `rel` a real directory in the previous snapshot, with no symlink on the way? */
  private prevDir(rel: string): boolean {
    const r = rel === '.' ? '' : rel;
    if (this.prevDirs.has(r)) return true;
    if (!this.prevDir(path.dirname(r))) return false;
    const st = lstatSync(path.join(this.prev.diff, r), { throwIfNoEntry: false });
    if (!st?.isDirectory()) return false;
    this.prevDirs.add(r);
    return true;
  }

  private skip(dst: string, rel: string): void {
    // a copy, not a slice of dst: a slice would keep all of dst alive for as long as the set lives
    this.skipped.add(Buffer.from(rel).toString());
    for (let p = path.dirname(dst); p.length > this.root.length && !this.holding.has(p); p = path.dirname(p)) this.holding.add(p);
    // the parent must be in the upper dir as a fresh copy would leave it (copied up, its mtime
    // touched): creating and removing an entry through the overlay does both
    const parent = this.rel(path.dirname(dst));
    if (this.inUpper.has(parent)) return;
    const up = lstatSync(path.join(this.upper, parent), { throwIfNoEntry: false });
    if (!up?.isDirectory()) {
      const probe = path.join(path.dirname(dst), `.lbuild-reuse-${process.pid}-${Math.random().toString(36).slice(2)}`);
      try {
        closeSync(openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
      } catch (e) {
        // a name in the way (or a directory that takes no entry): the full copy decides what happens there
        throw new ReuseConflict(`${parent || '/'} cannot be prepared (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
      unlinkSync(probe);
    }
    this.inUpper.add(parent);
  }
}

/**
 * After the unmount: hard-link the skipped files into the upper dir. A whiteout there (the copy
 * removed a lower entry in the file's way) goes first, as the fresh file would have replaced it;
 * anything else there means the copy wrote the path after all. Directory times are kept as the
 * copy left them.
 */
export function linkReused(upper: string, reused: ReusedFiles): void {
  const dirs = new Map<string, Stats>();
  // each directory on the way checked without following a link: nothing is linked outside the upper dir
  const realDir = (dir: string): Stats => {
    const known = dirs.get(dir);
    if (known) return known;
    if (dir !== '.') realDir(path.dirname(dir));
    const st = lstatSync(path.join(upper, dir), { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new ReuseConflict(`${dir} is not a directory in the new layer`);
    dirs.set(dir, st);
    return st;
  };
  const parents = new Set<string>();
  for (const rel of reused.files) {
    realDir(path.dirname(rel));
    parents.add(path.dirname(rel));
  }
  // one at a time, synchronously: through libuv's threads each link costs several times more
  for (const rel of reused.files) {
    // rel is relative and normalized (CopyReuse.rel of a resolved path)
    const target = childPath(upper, rel);
    const from = childPath(reused.prev.diff, rel);
    try {
      linkSync(from, target);
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
      const there = lstatSync(target);
      if (!there.isCharacterDevice() || there.rdev !== 0) throw new ReuseConflict(`${rel} was written by the copy`);
      unlinkSync(target);
      linkSync(from, target);
    }
  }
  for (const dir of parents) {
    const st = dirs.get(dir) as Stats;
    lutimesSync(path.join(upper, dir), st.atime, st.mtime);
  }
}
