import * as path from 'node:path';
import { LocatedError } from '../errors.js';
import { hasWildcard, segmentRegExp } from './glob.js';

/*
 * .dockerignore patterns with Docker's meaning (moby/patternmatcher): cleaned, root-anchored,
 * `*` and `?` within a segment, `**` for any number of segments, a pattern also matching every
 * path below what it matches, `!` exceptions, the last pattern that matches deciding.
 *
 * Matched segment by segment as a small automaton, never as one regular expression: the time is
 * (path segments x pattern segments) per pattern, so no pattern (`**\/**\/**\/…`) can backtrack
 * for minutes. Runs of plain names are looked up in a set. Where Docker's regular expression
 * means something no segment rule can (`**` inside a segment, as in `a**b`), `**` there is `*`.
 */

/** Wildcard patterns past this count are refused (each is tried on every path). */
export const MAX_WILDCARD_PATTERNS = 10_000;

type Seg = { kind: 'name'; re: RegExp } | { kind: 'any' } | { kind: 'some' };

interface Compiled {
  exclusion: boolean;
  segs: Seg[];
}

/** Consecutive plain (wildcard-free, non-exception) patterns: one set lookup per path prefix. */
interface PlainRun {
  exclusion: false;
  names: Set<string>;
}

type Rule = Compiled | PlainRun;

function isRun(r: Rule): r is PlainRun {
  return (r as PlainRun).names !== undefined;
}

/** filepath.Clean, then no leading or trailing slash, as Docker reads a pattern. */
export function cleanPattern(p: string): string {
  return path.posix.normalize(p.trim()).replace(/^\/+/, '').replace(/\/+$/, '');
}

function compileSegments(pattern: string): Seg[] {
  const parts = pattern.split('/');
  const segs: Seg[] = [];
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    if (part === '**') {
      // `a/**` needs something below a; `**/b` and `a/**/b` allow none
      segs.push(last && parts.length > 1 ? { kind: 'some' } : { kind: 'any' });
      return;
    }
    let rest = part;
    if (rest.startsWith('**')) {
      // `**.log` is Docker's `(.*/)?\.log`: any segments, then a segment `.log`
      segs.push({ kind: 'any' });
      rest = rest.replace(/^\*+/, '');
    }
    segs.push({ kind: 'name', re: segmentRegExp(rest.replace(/\*\*+/g, '*')) });
  });
  return segs;
}

/**
 * For each prefix length k of `names` (1..n), whether the pattern matches names[0..k): one pass
 * of a set of automaton states. Returns true at the first k that matches (a match of a parent
 * is a match, as in Docker).
 */
function matchesSelfOrParent(segs: readonly Seg[], names: readonly string[]): boolean {
  const P = segs.length;
  let states = new Uint8Array(P + 1);
  const close = (s: Uint8Array): void => {
    // an `any` may match no segment: its successor is reachable too
    for (let i = 0; i < P; i++) if (s[i] && segs[i]?.kind === 'any') s[i + 1] = 1;
  };
  states[0] = 1;
  close(states);
  for (const name of names) {
    const next = new Uint8Array(P + 1);
    let live = false;
    for (let i = 0; i < P; i++) {
      if (!states[i]) continue;
      const seg = segs[i] as Seg;
      if (seg.kind === 'name') {
        if (seg.re.test(name)) next[i + 1] = 1;
      } else {
        // any/some: consume this segment and stay, or consume it and move on
        next[i] = 1;
        next[i + 1] = 1;
      }
    }
    close(next);
    for (let i = 0; i <= P; i++) if (next[i]) live = true;
    if (next[P]) return true;
    if (!live) return false;
    states = next;
  }
  return false;
}

export interface PatternSet {
  /** true when the context-relative posix path is excluded */
  ignores(rel: string): boolean;
}

export function compilePatterns(lines: readonly string[], source = '.dockerignore'): PatternSet {
  const rules: Rule[] = [];
  let wildcards = 0;
  for (const line of lines) {
    const exclusion = line.startsWith('!');
    const body = exclusion ? line.slice(1) : line;
    if (exclusion && body.trim() === '') throw new LocatedError(`${source}: illegal exclusion pattern "!"`);
    const pattern = cleanPattern(body);
    if (!exclusion && !hasWildcard(pattern) && !pattern.includes('\\')) {
      const prev = rules[rules.length - 1];
      if (prev && isRun(prev)) prev.names.add(pattern);
      else rules.push({ exclusion: false, names: new Set([pattern]) });
      continue;
    }
    if (hasWildcard(pattern) && ++wildcards > MAX_WILDCARD_PATTERNS) {
      throw new LocatedError(`${source}: more than ${MAX_WILDCARD_PATTERNS} wildcard patterns (each is tried on every path of the context): merge them`);
    }
    rules.push({ exclusion, segs: compileSegments(pattern) });
  }
  return {
    ignores(rel: string): boolean {
      const names = rel.split('/');
      let matched = false;
      for (const r of rules) {
        // as Docker: an inclusion cannot change a match, an exception only undoes one
        if (r.exclusion !== matched) continue;
        let hit = false;
        if (isRun(r)) {
          let prefix = '';
          for (const n of names) {
            prefix = prefix === '' ? n : `${prefix}/${n}`;
            if (r.names.has(prefix)) {
              hit = true;
              break;
            }
          }
        } else hit = matchesSelfOrParent(r.segs, names);
        if (hit) matched = !r.exclusion;
      }
      return matched;
    },
  };
}
