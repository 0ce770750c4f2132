import di from '@balena/dockerignore';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

// the package's typings declare an ES default export over `module.exports = fn`
const dockerignore = di as unknown as typeof di.default;

export interface IgnoreMatcher {
  /** the file the patterns came from, if any */
  source?: string;
  patterns: string[];
  /** true when the context-relative posix path is excluded */
  ignores(rel: string): boolean;
  /**
   * Whether an excluded directory must still be walked: Docker descends into it only when an
   * exception pattern starts with the directory's path (`!dir/keep.txt` for `dir`), so
   * a wildcard exception such as `!*` + `/x` re-includes nothing below an excluded directory.
   */
  mayReinclude(dirRel: string): boolean;
}

export function parseIgnoreLines(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    out.push(line);
  }
  return out;
}

/** filepath.Clean plus dropping a leading slash, as Docker reads .dockerignore lines. */
function cleanPattern(p: string): string {
  return path.posix.normalize(p.trim()).replace(/^\/+/, '').replace(/\/$/, '');
}

export function makeMatcher(patterns: string[], source?: string): IgnoreMatcher {
  const ig = dockerignore({ ignorecase: false }).add(patterns);
  const exceptions = patterns.filter((p) => p.startsWith('!')).map((p) => `${cleanPattern(p.slice(1))}/`);
  // the library memoizes every path it was asked about; a walk asks once per path, so over a
  // context of 100,000s of files that memo only holds memory: it is emptied now and then
  const memo = ig as unknown as { _cache?: Record<string, boolean> };
  let asked = 0;
  return {
    ...(source ? { source } : {}),
    patterns,
    mayReinclude: (dirRel: string) => exceptions.some((e) => e.startsWith(`${dirRel}/`)),
    ignores: (rel: string) => {
      if (rel === '' || rel === '.') return false;
      if (++asked % 4096 === 0 && memo._cache) memo._cache = {};
      return ig.ignores(rel);
    },
  };
}

/**
 * The ignore rules for a build: `<Dockerfile>.dockerignore` beside the Dockerfile wins over
 * `<context>/.dockerignore` (as BuildKit); no file means nothing is excluded.
 */
export async function loadIgnore(contextDir: string, dockerfile: string): Promise<IgnoreMatcher> {
  const candidates = [`${dockerfile}.dockerignore`, path.join(contextDir, '.dockerignore')];
  for (const c of candidates) {
    let text: string;
    try {
      text = await fsp.readFile(c, 'utf8');
    } catch {
      continue;
    }
    return makeMatcher(parseIgnoreLines(text), c);
  }
  return makeMatcher([]);
}
