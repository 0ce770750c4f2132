import { lstatSync, readlinkSync, statSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { LbuildError, isErrno } from '../errors.js';

const MAX_LINKS = 255;

/**
 * Resolve `unsafe` (absolute or relative to `/`) inside `root` the way openat2(RESOLVE_IN_ROOT)
 * would: `..` stops at the root and symlinks (absolute or relative) are followed as if `root`
 * were `/`. The result never leaves `root`. Components that do not exist are kept as written.
 * With followFinal false the last component is not followed when it is a symlink.
 */
export function resolveInRoot(root: string, unsafe: string, followFinal = true): string {
  const parts = unsafe.split('/').filter((p) => p !== '' && p !== '.');
  const current: string[] = [];
  let links = 0;
  let missing = false;
  while (parts.length > 0) {
    const p = parts.shift() as string;
    if (p === '..') {
      current.pop();
      continue;
    }
    if (missing) {
      current.push(p);
      continue;
    }
    const candidate = path.join(root, ...current, p);
    let isLink = false;
    try {
      isLink = lstatSync(candidate).isSymbolicLink();
    } catch (e) {
      if (!isErrno(e, 'ENOENT') && !isErrno(e, 'ENOTDIR')) throw e;
      missing = true;
    }
    if (isLink && (parts.length > 0 || followFinal)) {
      if (++links > MAX_LINKS) throw new LbuildError(`too many levels of symbolic links resolving ${unsafe}`);
      const target = readlinkSync(candidate);
      if (target.startsWith('/')) current.length = 0;
      parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    current.push(p);
  }
  return path.join(root, ...current);
}

/** The path of `abs` (a result of resolveInRoot) as seen inside the root, e.g. `/etc/passwd`. */
export function insideRoot(root: string, abs: string): string {
  const rel = path.relative(root, abs);
  return `/${rel.split(path.sep).join('/')}`.replace(/\/$/, '') || '/';
}

/**
 * lstat `rel` under `root` without following any symlink on the way. `missing` when a component
 * is absent; `blocked` when a parent is not a real directory (a symlink, say: one a RUN planted
 * pointing at the host, or a lower layer's `/bin -> usr/bin`). Used wherever a path of an image
 * is looked at from the host side, so that no link of the image is ever followed by the host.
 */
export function lstatBeneath(root: string, rel: string): Stats | 'missing' | 'blocked' {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return 'blocked';
  let cur = root;
  // the root itself is ours (it may be a link such as l/<id>); only what lies below it is the image's
  let st: Stats | undefined = statSync(root, { throwIfNoEntry: false });
  for (const p of parts) {
    if (!st) return 'missing';
    if (!st.isDirectory()) return 'blocked';
    cur = path.join(cur, p);
    st = lstatSync(cur, { throwIfNoEntry: false });
  }
  return st ?? 'missing';
}
