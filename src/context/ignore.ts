import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanPattern, compilePatterns } from './patterns.js';

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

export function makeMatcher(patterns: string[], source?: string): IgnoreMatcher {
  const set = compilePatterns(patterns, source ?? '--exclude');
  const exceptions = patterns.filter((p) => p.startsWith('!')).map((p) => `${cleanPattern(p.slice(1))}/`);
  return {
    ...(source ? { source } : {}),
    patterns,
    mayReinclude: (dirRel: string) => exceptions.some((e) => e.startsWith(`${dirRel}/`)),
    ignores: (rel: string) => rel !== '' && rel !== '.' && set.ignores(rel),
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
