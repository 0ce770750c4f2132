import { promises as fsp } from 'node:fs';
import { UsageError } from '../errors.js';

/*
 * Usage errors as Docker gives them: a mistyped command is an unknown command with a suggestion,
 * not a build context that does not exist; an unknown flag is named once.
 */

/** Damerau-free edit distance, small inputs only. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The closest command word within two edits (or a swap of two letters), if any. */
export function closestCommand(word: string, words: readonly string[]): string | undefined {
  let best: { w: string; d: number } | undefined;
  for (const w of words) {
    const d = distance(word.toLowerCase(), w);
    const swapped = word.length === w.length && [...word].sort().join('') === [...w].sort().join('') ? 2 : Infinity;
    const score = Math.min(d, swapped);
    if (score <= 2 && (!best || score < best.d)) best = { w, d: score };
  }
  return best?.w;
}

/**
 * `lbuild imagse`: the default command would take the word as a build context. When no such
 * path exists and the word is a near miss of a command, say it is an unknown command (any other
 * word stays a context, whose error names it).
 */
export async function refuseUnknownCommand(first: string | undefined, words: readonly string[]): Promise<void> {
  if (first === undefined || words.includes(first) || !/^[a-z][a-z-]*$/i.test(first)) return;
  if (await fsp.stat(first).then(() => true, () => false)) return;
  const near = closestCommand(first, words);
  if (near) throw new UsageError(`unknown command "${first}" (did you mean "${near}"?); see lbuild --help`);
}

/** yargs names an unknown `--add-hots` twice (add-hots, addHots): once is enough. */
export function dedupeUnknown(msg: string): string {
  const m = /^(Unknown arguments?): (.*)$/.exec(msg);
  if (!m) return msg;
  const names = (m[2] ?? '').split(', ');
  const kebab = new Set(names.filter((n) => n.includes('-')));
  const toKebab = (n: string): string => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const kept = names.filter((n) => !(n !== toKebab(n) && kebab.has(toKebab(n))));
  return `${kept.length === 1 ? 'Unknown argument' : 'Unknown arguments'}: ${kept.join(', ')}`;
}
