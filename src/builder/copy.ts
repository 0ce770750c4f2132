import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  type Stats,
} from 'node:fs';
import * as path from 'node:path';
import { createReadStream } from 'node:fs';
import { hasWildcard } from '../context/glob.js';
import { makeMatcher } from '../context/ignore.js';
import type { XXHashAPI } from 'xxhash-wasm';
import { type ContentHasher, type SourcesDigest, SourcesDescriber, XATTR_BATCH, hashFileRaw, hex64, loadHasher, plainHasher } from '../context/checksum.js';
import { type CopySource, type Selection, type WalkListing, childVisible, cleanSource, lstatEntry, matchSource } from '../context/select.js';

export type { CopySource } from '../context/select.js';
import type { CopyInstr } from '../dockerfile/instructions.js';
import { LbuildError, isErrno } from '../errors.js';
import { resolveInRoot } from '../snapshot/rootpath.js';
import { resolveChown } from '../runtime/user.js';
import { decompress, sniffCompression } from '../util/decompress.js';
import { extractInto } from './extract.js';
import { yieldToEvents } from '../util/fsx.js';
import * as os from 'node:os';
import { readXattrsOf, writeXattrs, xattrTag } from '../util/xattr.js';
import { CopyReuse, type PreviousLayer, ReuseConflict, type ReusedFiles, type Wanted } from './reuse.js';
import { childPath } from '../util/paths.js';

export interface CopyOptions {
  /** the merged root of the step */
  dest: string;
  workdir: string;
  /** ADD <url>: what each URL source was fetched as (keyed already), by the source as written */
  urls?: ReadonlyMap<string, { file: string; name: string; lastModified?: string }>;
  /** what is known of the sources' content hashes and xattrs (the context's stat cache, as for the key) */
  hasher?: ContentHasher;
  /** the key's walk of the sources, for the copy to list and stat them from (context/select.ts) */
  listing?: WalkListing;
  /** incremental copy: the previous snapshot of this step, and the upper dir of the mount at `dest` */
  reuse?: { prev: PreviousLayer; upper: string };
}

export type CopyResult = SourcesDigest & { reused?: ReusedFiles };

/** A --chmod value as a function of an entry's current mode: octal (`0755`) or symbolic (`u+x,go-w`, `a=rX`). */
type ChmodFn = (mode: number, isDir: boolean) => number;

export function parseChmod(spec: string | undefined): ChmodFn | undefined {
  if (spec === undefined) return undefined;
  if (/^[0-7]{3,4}$/.test(spec)) {
    const m = Number.parseInt(spec, 8);
    return () => m;
  }
  const clauses = spec.split(',').map((c) => /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(c));
  if (clauses.some((c) => c === null)) throw new LbuildError(`--chmod=${spec}: not an octal or symbolic mode (e.g. 0755, u+x,go-w)`);
  return (mode, isDir) => {
    let m = mode & 0o7777;
    for (const c of clauses as RegExpExecArray[]) {
      const who = c[1] === '' || c[1]?.includes('a') ? 'ugo' : (c[1] as string);
      const perms = c[3] as string;
      let bits = 0;
      for (const w of who) {
        const shift = w === 'u' ? 6 : w === 'g' ? 3 : 0;
        if (perms.includes('r')) bits |= 4 << shift;
        if (perms.includes('w')) bits |= 2 << shift;
        // X: execute only for directories and files already executable by someone
        if (perms.includes('x') || (perms.includes('X') && (isDir || (mode & 0o111) !== 0))) bits |= 1 << shift;
        if (perms.includes('s') && w === 'u') bits |= 0o4000;
        if (perms.includes('s') && w === 'g') bits |= 0o2000;
        if (perms.includes('t') && w === 'o') bits |= 0o1000;
      }
      if (c[2] === '+') m |= bits;
      else if (c[2] === '-') m &= ~bits;
      else {
        let clear = 0;
        for (const w of who) clear |= w === 'u' ? 0o4700 : w === 'g' ? 0o2070 : 0o1007;
        m = (m & ~clear) | bits;
      }
    }
    return m;
  };
}

/** mkdir -p inside the root; new directories get mode 0755 and the given owner. */
function mkdirAll(root: string, inside: string, owner: { uid: number; gid: number }, reuse?: CopyReuse): string {
  // resolving first means a symlink on the way (even a dangling one) is followed inside the root,
  // and the directories are made where it points, as the image would see them
  const abs = resolveInRoot(root, inside, true);
  reuse?.guard(abs, false);
  const parts = path.relative(root, abs).split(path.sep).filter((p) => p !== '');
  let cur = root;
  for (const p of parts) {
    cur = path.join(cur, p);
    let st: Stats | undefined;
    try {
      st = lstatSync(cur);
    } catch {
      st = undefined;
    }
    if (!st) {
      mkdirSync(cur, { mode: 0o755 });
      chmodSync(cur, 0o755);
      lchownSync(cur, owner.uid, owner.gid);
    } else if (!st.isDirectory()) {
      throw new LbuildError(`cannot create directory ${inside}: ${path.relative(root, cur)} is not a directory`);
    }
  }
  return abs;
}

interface Writer extends Selection {
  chown?: { uid: number; gid: number };
  chmod?: ChmodFn;
  keepOwner: boolean;
  inodes: Map<string, string>;
  /** what the copy really read, in the key's format (compared with the key after the step) */
  consumed: SourcesDescriber;
  hash: XXHashAPI;
  /** large files copied by the kernel: hashed from where they landed, once the copy is done */
  large: { key: string; dst: string }[];
  /** files and symlinks whose xattrs are read (a batch of getfattr at a time) and put on `dst`; `reused`: must have none */
  attrs: { key: string; src: string; dst?: string; reused?: boolean }[];
  /** directories' xattrs: read and put on them once the copy is done (after their chown) */
  dirAttrs: { key: string; src: string; dst?: string }[];
  entries: number;
  reuse?: CopyReuse;
  hasher?: ContentHasher;
  listing?: WalkListing;
}

/** Is the source known (to the stat cache, in this state) to have no xattrs to copy? Then none are read. */
function noXattrs(w: Writer, st: Stats): boolean {
  return w.hasher?.knownXattrTag?.(st) === '';
}

async function newWriter(keepOwner: boolean, rest: Partial<Writer> = {}): Promise<Writer> {
  return { keepOwner, inodes: new Map(), consumed: new SourcesDescriber(keepOwner), hash: await loadHasher(), large: [], attrs: [], dirAttrs: [], entries: 0, ...rest };
}

/**
 * Hash the large files a copy wrote (what landed, not what the source holds now), and give the
 * copies their sources' shipped xattrs (capabilities, ACLs, user.*), as BuildKit's copy does.
 * Set last: a chown clears security.capability.
 */
async function finishConsumed(w: Writer): Promise<SourcesDigest> {
  for (const { key, dst } of w.large) {
    const size = statSync(dst).size;
    w.consumed.fill(key, size, hex64(await hashFileRaw(dst, size)));
  }
  await copyXattrs(w, w.attrs);
  w.attrs = [];
  await copyXattrs(w, w.dirAttrs);
  w.dirAttrs = [];
  return w.consumed.result();
}

/** Read the entries' shipped xattrs from their sources, key them, and put them on their copies. */
async function copyXattrs(w: Writer, entries: readonly { key: string; src: string; dst?: string; reused?: boolean }[]): Promise<void> {
  const found = await readXattrsOf(entries.map((a) => a.src));
  const changes: [string, string, Buffer][] = [];
  for (const a of entries) {
    const list = found.get(a.src);
    // a linked file cannot be given attributes: they would land on the previous layer's inode too
    if (a.reused && list?.length) throw new ReuseConflict(`${a.key} has extended attributes`);
    w.consumed.setXattrs(a.key, xattrTag(list));
    if (a.dst !== undefined) for (const [name, value] of list ?? []) changes.push([a.dst.slice(1), name, value]);
  }
  await writeXattrs('/', changes, os.tmpdir());
}

/**
 * Files and symlinks, whose owner is set once they are written, get their xattrs a batch at a
 * time during a large copy (holding all of them to the end cost 100s of MB at 200,000 files);
 * directories, chowned after their contents, at the end. Called when a batch is full.
 */
async function flushXattrs(w: Writer): Promise<void> {
  const batch = w.attrs;
  w.attrs = [];
  await copyXattrs(w, batch);
}

function ownerOf(st: Stats, w: Writer): { uid: number; gid: number } {
  if (w.chown) return w.chown;
  return w.keepOwner ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 };
}

function applyMeta(dst: string, st: Stats, w: Writer, isLink: boolean): void {
  const { uid, gid } = ownerOf(st, w);
  lchownSync(dst, uid, gid);
  if (!isLink) chmodSync(dst, w.chmod ? w.chmod(st.mode, st.isDirectory()) : st.mode & 0o7777);
  lutimesSync(dst, st.atime, st.mtime);
}

const SMALL_COPY = 1 << 20;
let copyBuffer: Buffer | undefined;

/**
 * A regular file to a path that does not exist (O_EXCL: never through a planted symlink), owner,
 * mode and times set on the open descriptor: on an overlay mount each path lookup costs, and a
 * COPY of many small files is mostly these calls. Large files go through the kernel's copy.
 */
function copyFile(src: string, dst: string, st: Stats, w: Writer, key: string): void {
  const n = st.size <= SMALL_COPY ? readSmall(src) : -1;
  // large, or grown since it was keyed: the kernel copies all of it
  if (n < 0 || n > st.size) {
    copyFileSync(src, dst, constants.COPYFILE_EXCL);
    applyMeta(dst, st, w, false);
    w.consumed.add(key, st);
    w.large.push({ key, dst });
    return;
  }
  const buf = copyBuffer as Buffer;
  w.consumed.add(key, st, hex64(w.hash.h64Raw(buf.subarray(0, n))), undefined, n);
  const { uid, gid, mode } = wanted(st, w);
  // created with its mode (the creating open writes through its descriptor whatever the mode):
  // through an overlay each call on a file costs, and a new file often has its owner and mode
  // already (ours, umask and set-group-ID directories permitting); only what differs is set
  const out = openSync(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    for (let done = 0; done < n; ) done += writeSync(out, buf, done, n - done);
    const made = fstatSync(out);
    if (made.uid !== uid || made.gid !== gid || (made.mode & 0o7777) !== mode) {
      fchownSync(out, uid, gid);
      fchmodSync(out, mode); // after the chown, which clears set-id bits
    }
    futimesSync(out, st.atime, st.mtime);
  } finally {
    closeSync(out);
  }
}

/** The owner and mode a copy of a file gets. */
function wanted(st: Stats, w: Writer): Wanted {
  const { uid, gid } = ownerOf(st, w);
  return { uid, gid, mode: w.chmod ? w.chmod(st.mode, false) : st.mode & 0o7777 };
}

/** Up to SMALL_COPY bytes of a file into the shared copy buffer; the count read. */
function readSmall(src: string): number {
  copyBuffer ??= Buffer.allocUnsafe(SMALL_COPY);
  const input = openSync(src, 'r');
  let n = 0;
  try {
    for (let got = -1; got !== 0 && n < SMALL_COPY; n += got) got = readSync(input, copyBuffer, n, SMALL_COPY - n, n);
  } finally {
    closeSync(input);
  }
  return n;
}

function removeExisting(dst: string, keepDir: boolean): void {
  let st: Stats;
  try {
    st = lstatSync(dst);
  } catch {
    return;
  }
  if (st.isDirectory() && keepDir) return;
  rmSync(dst, { recursive: true, force: true });
}

/** An entry listed by the key's walk as it is now; undefined if it is gone (or its directory is). */
function lstatNow(src: string): Stats | undefined {
  try {
    return lstatSync(src);
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
    throw e;
  }
}

/**
 * Copy one entry (file, symlink or directory tree) from `src` to host path `dst`. `fresh`: the
 * parent was just made by this copy, so nothing can be in the way.
 */
async function copyEntry(src: string, dst: string, st: Stats, w: Writer, ctxRel: string, excludeRel: string, fresh = false, key = ctxRel, listed = false): Promise<void> {
  if (listed && !st.isFile() && !st.isDirectory()) {
    // a symlink (or anything but a file or directory) as it is now
    const now = lstatNow(src);
    if (!now) return;
    return copyEntry(src, dst, now, w, ctxRel, excludeRel, fresh, key);
  }
  w.reuse?.guard(dst, !st.isDirectory());
  if (st.isDirectory()) {
    if (!fresh) removeExisting(dst, true);
    const made = fresh || !existsSync(dst);
    if (made) mkdirSync(dst, { mode: 0o700 });
    await copyChildren(src, dst, st, w, ctxRel, excludeRel, made, key, true);
    applyMeta(dst, st, w, false);
    return;
  }
  if (!fresh) removeExisting(dst, false);
  if (st.isSymbolicLink()) {
    const target = readlinkSync(src);
    symlinkSync(target, dst);
    applyMeta(dst, st, w, true);
    w.consumed.add(key, st, undefined, target);
    if (!noXattrs(w, st)) w.attrs.push({ key, src, dst });
    return;
  }
  if (st.isFile()) {
    const inode = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? w.inodes.get(inode) : undefined;
    if (first) {
      linkSync(first, dst);
      w.consumed.add(key, st);
      return;
    }
    // incremental: the previous layer's file is taken over (linked after the unmount)
    let same = w.reuse?.match(src, dst, st, wanted(st, w));
    if (same instanceof Promise) same = await same;
    if (same !== undefined) {
      w.consumed.add(key, st, same);
      if (!noXattrs(w, st)) w.attrs.push({ key, src, reused: true });
      return;
    }
    if (listed) {
      // taken as keyed only when the previous layer holds it so; what is written is looked at now
      // (gone since: not copied, and the step is cached under what it read)
      const now = lstatNow(src);
      if (!now) return;
      if (!now.isFile() || now.nlink > 1) return copyEntry(src, dst, now, w, ctxRel, excludeRel, true, key);
      st = now;
    }
    copyFile(src, dst, st, w, key);
    if (!noXattrs(w, st)) w.attrs.push({ key, src, dst });
    if (st.nlink > 1) w.inodes.set(inode, dst);
    return;
  }
  // devices, fifos, sockets are not copied from a context (BuildKit skips them too)
}

/**
 * The entries of directory `src` into directory `dst` (which keeps its own mode, owner, times
 * and xattrs unless `own`: `COPY dir/ /app/` copies what is in dir, not dir itself, as BuildKit does).
 */
async function copyChildren(src: string, dst: string, st: Stats, w: Writer, ctxRel: string, excludeRel: string, fresh: boolean, key = ctxRel, own = false): Promise<void> {
  w.consumed.add(key, st);
  // none to read (the stat cache knows this state has none), none to copy
  if (!noXattrs(w, st)) w.dirAttrs.push({ key, src, ...(own ? { dst } : {}) });
  // the key's walk listed this directory (context/select.ts WalkListing): its entries as seen then
  const listed = w.listing?.children(src, excludeRel);
  for (const [name, known] of listed ?? readdirSync(src).sort().map((n): [string, Stats | undefined] => [n, undefined])) {
    const childCtx = ctxRel === '' ? name : `${ctxRel}/${name}`;
    const childEx = excludeRel === '' ? name : `${excludeRel}/${name}`;
    const childSrc = childPath(src, name);
    const cst = known ?? lstatEntry(childSrc, childCtx, w, childEx);
    if (!cst || (!known && !childVisible(w, childSrc, childCtx, childEx, cst))) continue;
    // now and then the event loop runs: a signal stops a copy of 100,000s of files at once
    if (++w.entries % 1024 === 0) await yieldToEvents();
    await copyEntry(childSrc, childPath(dst, name), cst, w, childCtx, childEx, fresh, childCtx, known !== undefined);
    if (w.attrs.length >= XATTR_BATCH) await flushXattrs(w);
  }
}

/** A local file that is a tar (plain or compressed), judged by content as Docker does. */
async function isArchive(file: string): Promise<boolean> {
  const fd = openSync(file, 'r');
  const head = Buffer.alloc(8);
  let n: number;
  try {
    n = readSync(fd, head, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
  const kind = sniffCompression(head.subarray(0, n));
  const stream = decompress(createReadStream(file), kind);
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const c of stream) {
      chunks.push(c as Buffer);
      got += (c as Buffer).length;
      if (got >= 512) break;
    }
  } catch {
    return false;
  } finally {
    stream.destroy();
  }
  const block = Buffer.concat(chunks).subarray(0, 512);
  if (block.length < 512) return false;
  const magic = block.subarray(257, 263).toString('latin1');
  if (magic === 'ustar\0' || magic === 'ustar ') return true;
  // old v7 tar: check the header checksum
  const stored = Number.parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] as number);
  return Number.isFinite(stored) && stored === sum;
}

/**
 * COPY/ADD into the merged root of a step, with BuildKit's semantics: wildcards, directory
 * contents (not the directory itself), trailing-slash destinations, --chown/--chmod, symlinks
 * named as sources followed (inside their root), symlinks inside copied trees kept, hardlinks
 * kept, ADD of local tar archives extracted.
 */
export async function executeCopy(instr: CopyInstr, source: CopySource, opts: CopyOptions, file: string): Promise<CopyResult> {
  const root = opts.dest;
  const chown = instr.chown !== undefined ? resolveChown(root, instr.chown) : undefined;
  const owner = chown ?? { uid: 0, gid: 0 };
  const chmod = parseChmod(instr.chmod);
  const w = await newWriter(source.keepOwner, {
    ...(chown ? { chown } : {}),
    ...(chmod !== undefined ? { chmod } : {}),
    ...(instr.exclude.length ? { exclude: makeMatcher(instr.exclude) } : {}),
    ...(source.ignore ? { ignore: source.ignore } : {}),
    // only a plain COPY: heredocs, URLs and archives are written by other means
    ...(opts.hasher ? { hasher: opts.hasher } : {}),
    ...(opts.listing ? { listing: opts.listing } : {}),
    ...(opts.reuse && instr.kind === 'COPY' && instr.heredocs.length === 0 ? { reuse: new CopyReuse(opts.reuse.prev, opts.hasher ?? plainHasher, root, opts.reuse.upper) } : {}),
  });
  let dest = instr.dest;
  const dirDest = dest === '' || dest === '.' || dest.endsWith('/') || dest.endsWith('/.');
  dest = path.posix.resolve(opts.workdir || '/', dest);
  if (dirDest) mkdirAll(root, dest, owner, w.reuse);
  else mkdirAll(root, path.posix.dirname(dest), owner, w.reuse);

  // heredoc sources become files named after their delimiter
  const heredocs = new Map(instr.heredocs.map((h) => [h.name, h]));
  let matched = 0;
  const isAdd = instr.kind === 'ADD';
  for (const raw of instr.sources) {
    if (raw.startsWith('<<') && heredocs.has(raw.slice(2))) {
      const h = heredocs.get(raw.slice(2));
      const target = dirDest || isDir(root, dest) ? path.posix.join(dest, raw.slice(2)) : dest;
      const abs = resolveInRoot(root, target, true);
      removeExisting(abs, false);
      writeFileSync(abs, h?.content ?? '', { mode: 0o644 });
      chmodSync(abs, chmod ? chmod(0o644, false) : 0o644);
      lchownSync(abs, owner.uid, owner.gid);
      matched++;
      continue;
    }
    const fetched = isAdd ? opts.urls?.get(raw) : undefined;
    if (fetched) {
      // as BuildKit: named after the URL, mode 0600 unless --chmod, mtime from Last-Modified
      const target = dirDest || isDir(root, dest) ? path.posix.join(dest, fetched.name) : dest;
      if (!dirDest && !isDir(root, dest)) mkdirAll(root, path.posix.dirname(dest), owner, w.reuse);
      const abs = resolveInRoot(root, target, true);
      removeExisting(abs, false);
      copyFileSync(fetched.file, abs, constants.COPYFILE_EXCL);
      lchownSync(abs, owner.uid, owner.gid);
      chmodSync(abs, chmod ? chmod(0o600, false) : 0o600);
      const mtime = fetched.lastModified ? new Date(fetched.lastModified) : undefined;
      if (mtime && !Number.isNaN(mtime.getTime())) lutimesSync(abs, mtime, mtime);
      matched++;
      continue;
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) || raw.startsWith('git@')) {
      throw new LbuildError(`${file}:${instr.line}: ${instr.kind} of ${raw} is not supported (${isAdd ? 'only http(s) URLs and git repositories' : 'COPY takes no URL: use ADD'})`);
    }
    const pattern = cleanSource(raw, file, instr.line);
    const hits = matchSource(source, pattern);
    // --parents keeps each match's path (below a `/./` pivot, if the source has one)
    const pivot = instr.parents ? parentsPivot(raw) : undefined;
    if (hits.length === 0) {
      if (hasWildcard(pattern)) continue;
      throw new LbuildError(`${file}:${instr.line}: ${instr.kind} failed: ${raw}: not found in ${source.what}`);
    }
    for (const m of hits) {
      matched++;
      if (pivot !== undefined) {
        const kept = pivot === '' ? m.rel : m.rel.startsWith(`${pivot}/`) ? m.rel.slice(pivot.length + 1) : m.rel;
        const target = path.posix.join(dest, kept);
        if (m.st.isDirectory()) await copyChildren(m.abs, mkdirAll(root, target, owner, w.reuse), m.st, w, m.real, '', false, m.rel);
        else {
          mkdirAll(root, path.posix.dirname(target), owner, w.reuse);
          await copyEntry(m.abs, resolveInRoot(root, target, true), m.st, w, m.real, '', false, m.rel);
        }
        continue;
      }
      const base = path.posix.basename(m.rel) || path.posix.basename(m.abs);
      if (isAdd && instr.unpack !== false && m.st.isFile() && (await isArchive(m.abs))) {
        const target = mkdirAll(root, dest, owner, w.reuse);
        const before = hex64(await hashFileRaw(m.abs, m.st.size));
        await extractInto(m.abs, root, target, file, instr.line);
        // an archive is streamed, not held: what was extracted is what it held, if it held still
        if (hex64(await hashFileRaw(m.abs, statSync(m.abs).size)) === before) {
          w.consumed.add(m.rel, m.st, before);
          w.attrs.push({ key: m.rel, src: m.abs });
        } else w.consumed.taint(m.rel);
        continue;
      }
      if (m.st.isDirectory()) {
        const target = mkdirAll(root, dest, owner, w.reuse);
        await copyChildren(m.abs, target, m.st, w, m.real, '', false, m.rel);
        continue;
      }
      const target = dirDest || isDir(root, dest) ? path.posix.join(dest, base) : dest;
      const abs = resolveInRoot(root, target, true);
      if (isDir(root, target)) throw new LbuildError(`${file}:${instr.line}: cannot copy file ${m.rel} over directory ${target}`);
      await copyEntry(m.abs, abs, m.st, w, m.real, '', false, m.rel);
    }
  }
  if (matched === 0) throw new LbuildError(`${file}:${instr.line}: ${instr.kind} failed: no source files were specified (nothing matched ${instr.sources.join(' ')})`);
  const digest = await finishConsumed(w);
  const reused = w.reuse?.result();
  return reused ? { ...digest, reused } : digest;
}

/**
 * A private, filtered copy of part of the build context (for RUN --mount=type=bind): what
 * .dockerignore excludes is not there, owners are root's as with COPY, and a file edited while
 * the RUN runs does not change what the RUN sees. `dest` must not exist yet.
 */
export async function copyContextView(source: CopySource, rel: string, dest: string): Promise<SourcesDigest> {
  const w = await newWriter(false, source.ignore ? { ignore: source.ignore } : {});
  const pattern = rel.replace(/^\/+|\/+$/g, '');
  const [m] = matchSource(source, pattern);
  if (!m) throw new LbuildError(`${pattern || '.'}: not found in ${source.what}`);
  await copyEntry(m.abs, dest, m.st, w, m.real, '', true, m.rel);
  return finishConsumed(w);
}

/** The part of a --parents source that is not kept: what precedes `/./` (none: the whole path is kept). */
function parentsPivot(raw: string): string {
  const i = raw.indexOf('/./');
  if (i < 0) return '';
  return path.posix.normalize(`/${raw.slice(0, i)}`).replace(/^\/+|\/+$/g, '');
}

function isDir(root: string, inside: string): boolean {
  try {
    return statSync(resolveInRoot(root, inside, true)).isDirectory();
  } catch {
    return false;
  }
}

/** WORKDIR: create the directory (and parents) inside the root, owned by the current USER. */
export function makeWorkdir(root: string, dir: string, owner: { uid: number; gid: number }): void {
  mkdirAll(root, dir, owner);
}

