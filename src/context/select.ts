import { lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { LbuildError } from '../errors.js';
import { resolveInRoot } from '../snapshot/rootpath.js';
import { hasWildcard, segmentRegExp } from './glob.js';
import type { IgnoreMatcher } from './ignore.js';
import { childPath } from '../util/paths.js';

/*
 * Which files a COPY/ADD selects. The copier and the cache key both use these functions, so the
 * key covers exactly the files that are copied.
 */

/** Where COPY/ADD read from: the build context (with .dockerignore) or another stage's root. */
export interface CopySource {
  root: string;
  /** context-relative paths excluded by .dockerignore; undefined for stage/image sources */
  ignore?: IgnoreMatcher;
  /** files keep their owner (COPY --from) or become root's (context), as BuildKit */
  keepOwner: boolean;
  /** how to name it in messages */
  what: string;
}


export interface Matched {
  /** path inside the source root (posix, no leading slash) as written/matched, before following links */
  rel: string;
  /** host path after following symlinks inside the source root */
  abs: string;
  /** `abs` relative to the source root: where the entry really is, which .dockerignore judges */
  real: string;
  st: Stats;
}

/**
 * .dockerignore judges both the name as written and what it resolves to: `ln -s .env envlink`
 * then `COPY envlink` must not copy the ignored `.env` (BuildKit never sends it at all).
 */
function ignoredMatch(source: CopySource, rel: string, real: string, st: Stats): boolean {
  const ig = source.ignore;
  if (!ig) return false;
  const hidden = (p: string): boolean => p !== '' && ig.ignores(p) && !(st.isDirectory() && ig.mayReinclude(p));
  return hidden(rel) || (real !== rel && hidden(real));
}

function realOf(root: string, abs: string): string {
  return path.relative(root, abs).split(path.sep).join('/');
}

export function cleanSource(src: string, file: string, line: number): string {
  // `..` above the context root: refused rather than clamped, so a typo is not silently another file
  if (path.posix.normalize(src.startsWith('/') ? src : `./${src}`).startsWith('../')) {
    throw new LbuildError(`${file}:${line}: COPY/ADD source ${src} is outside the build context`);
  }
  // context-relative, no leading or trailing slash ('' is the context root)
  return path.posix.normalize(`/${src}`).replace(/^\/+|\/+$/g, '');
}

/** Expand one source (wildcards per segment, Go filepath.Match) inside the source root. */
export function matchSource(source: CopySource, pattern: string): Matched[] {
  const segs = pattern.split('/').filter((s) => s !== '' && s !== '.');
  if (!hasWildcard(pattern)) {
    const abs = resolveInRoot(source.root, pattern, true);
    let st: Stats;
    try {
      st = statSync(abs);
    } catch {
      return [];
    }
    const real = realOf(source.root, abs);
    if (ignoredMatch(source, pattern, real, st)) return [];
    return [{ rel: pattern, abs, real, st }];
  }
  let current: string[] = [''];
  for (const seg of segs) {
    const next: string[] = [];
    const re = hasWildcard(seg) ? segmentRegExp(seg) : undefined;
    for (const dir of current) {
      if (!re) {
        next.push(dir === '' ? seg : `${dir}/${seg}`);
        continue;
      }
      const absDir = resolveInRoot(source.root, dir, true);
      let names: string[];
      try {
        names = readdirSync(absDir).sort();
      } catch {
        continue;
      }
      for (const n of names) if (re.test(n)) next.push(dir === '' ? n : `${dir}/${n}`);
    }
    current = next;
  }
  const out: Matched[] = [];
  for (const rel of current) {
    if (source.ignore?.ignores(rel)) continue;
    const abs = resolveInRoot(source.root, rel, true);
    const st = statSync(abs, { throwIfNoEntry: false });
    if (!st) continue; // a dangling match: nothing to copy
    const real = realOf(source.root, abs);
    if (real !== rel && ignoredMatch(source, rel, real, st)) continue;
    out.push({ rel, abs, real, st });
  }
  return out;
}

/** What a directory walk leaves out: .dockerignore (context-relative) and --exclude (source-relative). */
export interface Selection {
  ignore?: IgnoreMatcher;
  exclude?: IgnoreMatcher;
}

/** Whether a child of a copied directory is selected. */
export function childVisible(sel: Selection, abs: string, ctxRel: string, exRel: string, st: Stats): boolean {
  if (sel.exclude?.ignores(exRel)) return false;
  if (sel.ignore?.ignores(ctxRel)) {
    // an excluded directory is still walked when an exception may re-include something in it
    if (!(st.isDirectory() && sel.ignore.mayReinclude(ctxRel))) return false;
    if (!hasIncluded(abs, ctxRel, sel.ignore)) return false;
  }
  return true;
}

export function hasIncluded(dir: string, ctxRel: string, ignore: IgnoreMatcher): boolean {
  for (const name of readdirSync(dir)) {
    const rel = `${ctxRel}/${name}`;
    if (!ignore.ignores(rel)) return true;
    const st = lstatEntry(path.join(dir, name), rel, { ignore });
    if (st?.isDirectory() && hasIncluded(path.join(dir, name), rel, ignore)) return true;
  }
  return false;
}

/**
 * lstat of a directory entry. Node reads names as UTF-8: a name that is not cannot be opened
 * again by the name it was read as (U+FFFD in place of its bytes). Such an entry is skipped when
 * .dockerignore or --exclude leaves it out anyway, and otherwise named in a one-line error.
 */
export function lstatEntry(abs: string, ctxRel: string, sel: Selection, exRel = ctxRel): Stats | undefined {
  try {
    return lstatSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !path.basename(abs).includes('\uFFFD')) throw e;
    if (sel.exclude?.ignores(exRel) || sel.ignore?.ignores(ctxRel)) return undefined;
    throw new LbuildError(`${ctxRel}: the file name is not valid UTF-8, which lbuild cannot copy (rename it, or leave it out in .dockerignore)`);
  }
}

/**
 * What a walk saw: each directory's selected entries with their lstat, so that the copy that
 * follows the cache key's walk does not list and stat them again (issue 17: 20-30 ms of a
 * 5,000-file edit here). Kept up to LISTING_MAX entries: past that, the copy walks again (a
 * 200,000-file context would hold tens of MB of Stats for it, against a 250 MB budget).
 */
export class WalkListing {
  private readonly dirs = new Map<string, [name: string, st: Stats][]>();
  private entries = 0;
  private full = false;

  /** The list a walk of `dirAbs` (its --exclude path `exRel`) fills, undefined once the listing is full. */
  open(dirAbs: string, exRel: string): [string, Stats][] | undefined {
    if (this.full) return undefined;
    const list: [string, Stats][] = [];
    this.dirs.set(`${exRel}\0${dirAbs}`, list);
    return list;
  }

  /** Count an entry in; false (and the listing dropped) past LISTING_MAX. */
  count(): boolean {
    if (++this.entries <= LISTING_MAX) return true;
    this.full = true;
    this.dirs.clear();
    return false;
  }

  /** A directory's selected entries in name order, as the walk saw them; undefined if not listed. */
  children(dirAbs: string, exRel: string): readonly [string, Stats][] | undefined {
    return this.full ? undefined : this.dirs.get(`${exRel}\0${dirAbs}`);
  }
}

export const LISTING_MAX = 20_000;

/** Every selected entry below a directory, depth first in name order; recorded in `listing` if given. */
export function* walkSelected(sel: Selection, dirAbs: string, ctxRel: string, exRel: string, listing?: WalkListing): Generator<{ abs: string; ctxRel: string; exRel: string; st: Stats }> {
  let list = listing?.open(dirAbs, exRel);
  for (const name of readdirSync(dirAbs).sort()) {
    const abs = childPath(dirAbs, name);
    const c = ctxRel === '' ? name : `${ctxRel}/${name}`;
    const e = exRel === '' ? name : `${exRel}/${name}`;
    const st = lstatEntry(abs, c, sel, e);
    if (!st || !childVisible(sel, abs, c, e, st)) continue;
    if (list && listing?.count()) list.push([name, st]);
    else list = undefined;
    yield { abs, ctxRel: c, exRel: e, st };
    if (st.isDirectory()) yield* walkSelected(sel, abs, c, e, list ? listing : undefined);
  }
}
