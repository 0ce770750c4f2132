import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { hashFileRaw, loadHasher } from '../context/checksum.js';
import { safeComponents } from '../snapshot/apply.js';
import { tarEntries } from '../util/tar-read.js';

/*
 * Does a layer's snapshot still hold what its layer tar says? Every entry of the tar (the last
 * of a name wins) is compared with the snapshot: type, mode, owner, size, link target, and for
 * files the content (xxh64 of both). Times are not compared (a SOURCE_DATE_EPOCH clamp changes
 * them in the tar only). Whiteouts are 0/0 character devices in a snapshot; opaque markers are
 * xattrs, not checked here.
 */

interface Want {
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'whiteout' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  hash?: bigint;
  target?: string;
}

export async function snapshotDifference(layer: Readable, diffDir: string): Promise<string | undefined> {
  const x = await loadHasher();
  const want = new Map<string, Want>();
  for await (const entry of tarEntries(layer)) {
    const h = entry.header;
    const parts = safeComponents(h.name);
    const base = parts[parts.length - 1] ?? '';
    const rel = parts.join('/');
    const meta = { mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, size: h.size ?? 0 };
    if (base.startsWith('.wh.')) {
      if (base !== '.wh..wh..opq') want.set([...parts.slice(0, -1), base.slice(4)].join('/'), { type: 'whiteout', ...meta });
      entry.resume();
      continue;
    }
    if (h.type === 'file' || h.type === 'contiguous-file') {
      const hasher = x.create64();
      for await (const c of entry) hasher.update(c as Buffer);
      want.set(rel, { type: 'file', ...meta, hash: hasher.digest() });
      continue;
    }
    entry.resume();
    if (rel === '') continue;
    if (h.type === 'directory') want.set(rel, { type: 'dir', ...meta });
    else if (h.type === 'symlink') want.set(rel, { type: 'symlink', ...meta, target: h.linkname ?? '' });
    else if (h.type === 'link') want.set(rel, { type: 'hardlink', ...meta, target: safeComponents(h.linkname ?? '').join('/') });
    else want.set(rel, { type: 'other', ...meta });
  }
  for (const [rel, w] of want) {
    const abs = path.join(diffDir, rel);
    let st: Stats;
    try {
      st = lstatSync(abs);
    } catch {
      return `${rel}: missing`;
    }
    // mode and owner, for the entries that carry them
    const meta = (): string | undefined =>
      (st.mode & 0o7777) !== w.mode
        ? `${rel}: mode ${(st.mode & 0o7777).toString(8)}, the layer says ${w.mode.toString(8)}`
        : st.uid !== w.uid || st.gid !== w.gid
          ? `${rel}: owner ${st.uid}:${st.gid}, the layer says ${w.uid}:${w.gid}`
          : undefined;
    switch (w.type) {
      case 'whiteout':
        if (!st.isCharacterDevice() || st.rdev !== 0) return `${rel}: should be a whiteout`;
        break;
      case 'file': {
        if (!st.isFile()) return `${rel}: not a file`;
        if (st.size !== w.size) return `${rel}: ${st.size} bytes, the layer says ${w.size}`;
        const bad = meta();
        if (bad) return bad;
        if ((await hashFileRaw(abs, st.size)) !== w.hash) return `${rel}: content differs from the layer's`;
        break;
      }
      case 'dir': {
        if (!st.isDirectory()) return `${rel}: not a directory`;
        const bad = meta();
        if (bad) return bad;
        break;
      }
      case 'symlink':
        if (!st.isSymbolicLink() || readlinkSync(abs) !== w.target) return `${rel}: not the symlink to ${w.target}`;
        break;
      case 'hardlink': {
        const t = lstatSync(path.join(diffDir, w.target ?? ''), { throwIfNoEntry: false });
        if (!t || t.ino !== st.ino) return `${rel}: not a hard link of ${w.target}`;
        break;
      }
      default:
        break;
    }
  }
  return undefined;
}
