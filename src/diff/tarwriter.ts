import { createReadStream, lstatSync, readFileSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Xattrs } from '../util/xattr.js';
import { Transform } from 'node:stream';
import { hex64 } from '../context/checksum.js';
import type { FileIndexWriter, FileLookup } from './file-index.js';
import { MAX_RUN, RangeCopier } from './range-copier.js';
import { childPath } from '../util/paths.js';

export interface PackOptions {
  /** Convert overlay upper-dir markers: char device 0/0 → `.wh.<name>`, opaque dirs → `.wh..wh..opq`. */
  overlay?: boolean;
  /** Relative paths of opaque directories (see util/xattr readTreeXattrs). */
  opaqueDirs?: ReadonlySet<string>;
  /** Clamp file mtimes to this Unix time (SOURCE_DATE_EPOCH). */
  mtimeClamp?: number;
  /** Extended attributes to write (SCHILY.xattr PAX records), by relative path. */
  xattrs?: ReadonlyMap<string, Xattrs>;
  /** Return false to leave a path and everything below it out. */
  descend?: (rel: string, st: Stats) => boolean;
  /** Counts the layer's size as Docker does (store/layer-size.ts) while packing. */
  counter?: { contentBytes: number };
  /** Receives each regular file packed with its content, hashed as it is packed (file-index.ts). */
  index?: FileIndexWriter;
  /** Files linked from a previous layer: their entries are that layer's tar bytes (file-index.ts). */
  reuse?: ReusedEntries;
}

/** Files of the tree that are a previous layer's inodes, and that layer's tar and file index. */
export interface ReusedEntries {
  blob: string;
  index: FileLookup;
  linked: ReadonlySet<string>;
}

const WH = '.wh.';
const OPQ = '.wh..wh..opq';
const SMALL_FILE = 1 << 20;
// a file entry without a body never completes in tar-stream: empty files get an empty body
const EMPTY = Buffer.alloc(0);
const USTAR_ID_MAX = 0o777777;

function typeOf(st: Stats): tar.Header['type'] | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets are not representable in tar
}

export function isWhiteoutDevice(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

const BLOCK = 512;
/** Pieces smaller than this are pushed together (packTree). */
const COALESCE = 64 << 10;
/** Bytes of taken-over entries pushed before the walk waits for the reader. */
const AHEAD = 4 << 20;

/** A ustar header block (for the PAX headers written here; tar-stream writes all others). */
function ustarHeader(name: string, size: number, typeflag: string, mtime: Date): Buffer {
  const b = Buffer.alloc(BLOCK);
  const octal = (v: number, at: number, len: number): void => {
    b.write(`${v.toString(8).padStart(len - 1, '0')}\0`, at, len, 'latin1');
  };
  b.write(name, 0, 100, 'utf8');
  octal(0o644, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(Math.max(0, Math.floor(mtime.getTime() / 1000)), 136, 12);
  b.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  b.write(typeflag, 156, 1, 'latin1');
  b.write('ustar\0', 257, 6, 'latin1');
  b.write('00', 263, 2, 'latin1');
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** One PAX record: `<length> <key>=<value>\n`, the length counting itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Directory tree → tar stream. Deterministic: entries sorted by byte order, a directory before
 * its contents, whiteouts before their siblings, no atime/ctime/user names, PAX only where ustar
 * cannot hold a value. The same tree always gives the same bytes.
 */
export function packTree(root: string, opts: PackOptions = {}): tar.Pack {
  const pack = tar.pack();
  const seenInodes = new Map<string, string>();
  // every byte goes through push (tar-stream's own and the PAX headers and ranges written here):
  // counting them gives each entry's offset, for the file index
  let written = 0;
  const rawPush = pack.push.bind(pack) as (b: Buffer | null) => boolean;
  /*
   * Small pieces (headers, small bodies, padding) go out together, up to COALESCE bytes: the
   * reader pays per piece (an async iteration, a hash update), and a tree of small files is three
   * pieces a file. Nothing waits on bytes held here: only a push that went out can say "full".
   */
  let held: Buffer[] = [];
  let heldBytes = 0;
  const release = (): boolean => {
    if (heldBytes === 0) return true;
    const b = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    return rawPush(b);
  };
  (pack as unknown as { push(b: Buffer | null): boolean }).push = (b) => {
    if (b === null) {
      release();
      return rawPush(null);
    }
    written += b.length;
    if (b.length >= COALESCE) {
      const ok = release();
      return rawPush(b) && ok;
    }
    const ok = heldBytes + b.length > COALESCE ? release() : true;
    held.push(b);
    heldBytes += b.length;
    return ok;
  };
  const ranges = opts.reuse ? new RangeCopier(opts.reuse.blob) : undefined;
  /*
   * Queued ranges go out between entries; when the reader is behind by more than AHEAD bytes,
   * wait for it as tar-stream's own entries do (its _drain hook, called on the next read or on
   * destroy): without that a copy taken over whole sat in memory before any of it was written,
   * and waiting at every push left the walk idle while the reader's writes ran.
   */
  let ahead = 0;
  const flush = async (): Promise<void> => {
    const b = ranges?.take();
    if (!b) return;
    ahead += b.length;
    if (pack.push(b) || ahead < AHEAD) return;
    ahead = 0;
    await new Promise<void>((resolve) => {
      (pack as unknown as { _drain: () => void })._drain = resolve;
    });
  };

  const put = async (header: tar.Header | (Partial<tar.Header> & { name: string }), body?: Buffer): Promise<void> => {
    await flush();
    return new Promise((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });
  };
  /*
   * tar-stream writes PAX values as UTF-8 text, and a capability is binary: an entry with
   * attributes gets a PAX header written here, byte for byte, holding its path, link target and
   * ids too (a second PAX header would replace the first for most readers), and the entry itself
   * a placeholder ustar name, as tar-stream does for its own PAX entries.
   */
  /** Write the PAX header of an entry with attributes; the header the entry itself then gets. */
  const withXattrs = async (header: tar.Header, rel: string | undefined): Promise<tar.Header> => {
    const attrs = rel !== undefined ? opts.xattrs?.get(rel) : undefined;
    if (!attrs?.length) return header;
    await flush();
    const records: [string, Buffer][] = [['path', Buffer.from(header.name)]];
    if (header.linkname) records.push(['linkpath', Buffer.from(header.linkname)]);
    for (const [k, v] of Object.entries((header.pax ?? {}) as Record<string, string>)) records.push([k, Buffer.from(v)]);
    for (const [name, value] of attrs) records.push([`SCHILY.xattr.${name}`, value]);
    const paxBody = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
    // tar-stream takes no body for a meta entry: the block goes straight into the stream, in
    // order, since the previous entry is complete (add awaits each one)
    const pad = (BLOCK - (paxBody.length % BLOCK)) % BLOCK;
    pack.push(Buffer.concat([ustarHeader('PaxHeader', paxBody.length, 'x', header.mtime ?? new Date(0)), paxBody, Buffer.alloc(pad)]));
    return { ...header, name: header.type === 'directory' ? 'PaxHeader/' : 'PaxHeader', linkname: header.linkname ? 'PaxHeader' : '', pax: null };
  };
  const add = async (header: tar.Header, body?: Buffer, rel?: string): Promise<void> => put(await withXattrs(header, rel), body);

  const headerFor = (name: string, st: Stats, type: tar.Header['type']): tar.Header => {
    const mtime = opts.mtimeClamp !== undefined ? Math.min(Math.floor(st.mtimeMs / 1000), opts.mtimeClamp) : Math.floor(st.mtimeMs / 1000);
    const pax: Record<string, string> = {};
    if (st.uid > USTAR_ID_MAX) pax.uid = String(st.uid);
    if (st.gid > USTAR_ID_MAX) pax.gid = String(st.gid);
    return {
      name,
      // keep the file-type bits so that mode 0 stays 0 (tar-stream treats a falsy mode as "default")
      mode: st.mode,
      uid: Math.min(st.uid, USTAR_ID_MAX),
      gid: Math.min(st.gid, USTAR_ID_MAX),
      size: type === 'file' ? st.size : 0,
      mtime: new Date(mtime * 1000),
      type,
      linkname: '',
      uname: '',
      gname: '',
      devmajor: type === 'character-device' || type === 'block-device' ? (st.rdev >> 8) & 0xfff : 0,
      devminor: type === 'character-device' || type === 'block-device' ? (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00) : 0,
      pax: Object.keys(pax).length ? pax : null,
    };
  };

  const emit = async (abs: string, rel: string, st: Stats): Promise<void> => {
    const type = typeOf(st);
    if (!type) return;
    if (type === 'directory') {
      await add(headerFor(`${rel}/`, st, 'directory'), undefined, rel);
      return;
    }
    const h = headerFor(rel, st, type);
    if (type === 'symlink') {
      h.linkname = readlinkSync(abs);
      if (opts.counter) opts.counter.contentBytes += Buffer.byteLength(h.linkname);
      await add(h, undefined, rel);
      return;
    }
    if (type === 'file' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = seenInodes.get(key);
      if (first !== undefined) {
        h.type = 'link';
        h.linkname = first;
        h.size = 0;
        await add(h);
        return;
      }
      seenInodes.set(key, rel);
    }
    if (type !== 'file') {
      await add(h, undefined, rel);
      return;
    }
    if (opts.counter) opts.counter.contentBytes += st.size;
    const index = opts.index;
    const hasXattrs = (opts.xattrs?.get(rel)?.length ?? 0) > 0;
    const tarMtime = Math.floor((h.mtime as Date).getTime() / 1000);
    await flush();
    const offset = written;
    if (st.size <= SMALL_FILE) {
      const buf = readFileSync(abs);
      if (buf.length !== st.size) throw new Error(`${rel} changed size while being archived`);
      await add(h, buf, rel);
      index?.add(rel, st, hex64(index.hasher.h64Raw(buf)), hasXattrs, { offset, length: written - offset, tarMtime });
      return;
    }
    const big = await withXattrs(h, rel);
    const hash = index?.hasher.create64();
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(big, (err) => (err ? reject(err) : resolve()));
      const read = createReadStream(abs);
      const hashed = hash ? [new Transform({ transform: (c: Buffer, _e, cb) => cb(null, (hash.update(c), c)) })] : [];
      pipeline([read, ...hashed, sink]).catch(reject);
    });
    if (index && hash) index.add(rel, st, hex64(hash.digest()), hasXattrs, { offset, length: written - offset, tarMtime });
  };

  /**
   * A file linked from the previous layer (incremental COPY): its entry is that layer's bytes,
   * as its index describes them, without a look at the file (it is that layer's inode). False
   * when the index cannot serve it (then it is packed as any file).
   */
  const emitLinked = async (rel: string): Promise<boolean> => {
    const prev = opts.reuse?.index.get(rel);
    if (!ranges || !prev || prev.length <= 0 || prev.length > MAX_RUN || prev.xattrs) return false;
    // the header's time is the file's, clamped as now: the same only under the same clamp
    const seconds = Math.floor(prev.mtimeMs / 1000);
    if ((opts.mtimeClamp !== undefined ? Math.min(seconds, opts.mtimeClamp) : seconds) !== prev.tarMtime) return false;
    if (opts.counter) opts.counter.contentBytes += prev.size;
    if (!ranges.continues(prev.offset, prev.length)) await flush();
    opts.index?.add(rel, prev, prev.hash, false, { offset: written + ranges.pending, length: prev.length, tarMtime: prev.tarMtime });
    ranges.queue(prev.offset, prev.length, rel, prev.size);
    return true;
  };

  const walk = async (dirAbs: string, dirRel: string): Promise<void> => {
    const names = readdirSync(dirAbs).sort(compareNames);
    const prefix = dirRel === '' ? '' : `${dirRel}/`;
    const whiteouts: string[] = [];
    const rest: [string, Stats | undefined][] = [];
    const linked = opts.descend ? undefined : opts.reuse?.linked;
    for (const n of names) {
      // a linked file is a regular file: no lstat needed to tell
      if (linked?.has(`${prefix}${n}`)) {
        rest.push([n, undefined]);
        continue;
      }
      const st = lstatSync(childPath(dirAbs, n));
      if (opts.overlay && isWhiteoutDevice(st)) whiteouts.push(n);
      else rest.push([n, st]);
    }
    if (opts.overlay && opts.opaqueDirs?.has(dirRel) && dirRel !== '') {
      await add(whiteoutHeader(`${prefix}${OPQ}`, opts.mtimeClamp), EMPTY);
    }
    for (const n of whiteouts) await add(whiteoutHeader(`${prefix}${WH}${n}`, opts.mtimeClamp), EMPTY);
    for (const [n, known] of rest) {
      const rel = `${prefix}${n}`;
      const abs = childPath(dirAbs, n);
      if (known === undefined && (await emitLinked(rel))) continue;
      const st = known ?? lstatSync(abs);
      if (opts.descend && !opts.descend(rel, st)) continue;
      await emit(abs, rel, st);
      if (st.isDirectory()) await walk(abs, rel);
    }
  };

  walk(root, '')
    .then(async () => {
      await flush();
      pack.finalize();
    })
    .catch((e: unknown) => pack.destroy(e instanceof Error ? e : new Error(String(e))))
    .finally(() => ranges?.close());
  return pack;
}

function whiteoutHeader(name: string, mtimeClamp: number | undefined): tar.Header {
  return {
    name,
    mode: 0o100000,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: new Date((mtimeClamp ?? 0) * 1000),
    type: 'file',
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
    pax: null,
  };
}

