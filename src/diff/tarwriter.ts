import { createReadStream, lstatSync, readFileSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export interface PackOptions {
  /** Convert overlay upper-dir markers: char device 0/0 → `.wh.<name>`, opaque dirs → `.wh..wh..opq`. */
  overlay?: boolean;
  /** Relative paths of opaque directories (see util/xattr listOpaqueDirs). */
  opaqueDirs?: ReadonlySet<string>;
  /** Clamp file mtimes to this Unix time (SOURCE_DATE_EPOCH). */
  mtimeClamp?: number;
  /** Return false to leave a path and everything below it out. */
  descend?: (rel: string, st: Stats) => boolean;
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

function isWhiteoutDevice(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
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

  const add = (header: tar.Header | (Partial<tar.Header> & { name: string }), body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });

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
      await add(headerFor(`${rel}/`, st, 'directory'));
      return;
    }
    const h = headerFor(rel, st, type);
    if (type === 'symlink') {
      h.linkname = readlinkSync(abs);
      await add(h);
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
      await add(h);
      return;
    }
    if (st.size <= SMALL_FILE) {
      const buf = readFileSync(abs);
      if (buf.length !== st.size) throw new Error(`${rel} changed size while being archived`);
      await add(h, buf);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(h, (err) => (err ? reject(err) : resolve()));
      pipeline(createReadStream(abs), sink).catch(reject);
    });
  };

  const walk = async (dirAbs: string, dirRel: string): Promise<void> => {
    const names = readdirSync(dirAbs).sort(compareNames);
    const whiteouts: string[] = [];
    const rest: [string, Stats][] = [];
    for (const n of names) {
      const st = lstatSync(path.join(dirAbs, n));
      if (opts.overlay && isWhiteoutDevice(st)) whiteouts.push(n);
      else rest.push([n, st]);
    }
    const prefix = dirRel === '' ? '' : `${dirRel}/`;
    if (opts.overlay && opts.opaqueDirs?.has(dirRel) && dirRel !== '') {
      await add(whiteoutHeader(`${prefix}${OPQ}`, opts.mtimeClamp), EMPTY);
    }
    for (const n of whiteouts) await add(whiteoutHeader(`${prefix}${WH}${n}`, opts.mtimeClamp), EMPTY);
    for (const [n, st] of rest) {
      const rel = `${prefix}${n}`;
      const abs = path.join(dirAbs, n);
      if (opts.descend && !opts.descend(rel, st)) continue;
      await emit(abs, rel, st);
      if (st.isDirectory()) await walk(abs, rel);
    }
  };

  walk(root, '')
    .then(() => pack.finalize())
    .catch((e: unknown) => pack.destroy(e instanceof Error ? e : new Error(String(e))));
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

