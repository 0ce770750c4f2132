import { cleaned } from '../lint/residue.js';
import { humanSize } from '../util/fsx.js';
import type { StepRef, WastedFile } from './waste.js';

/**
 * Wasted bytes grouped by what caused them: the step that added the bytes and the one that hid
 * them. One cause is one thing to fix, where a list of files is a thousand lines of the same.
 */
export interface Cause {
  addedBy: StepRef;
  removedBy: StepRef;
  how: 'deleted' | 'overwritten';
  bytes: number;
  files: number;
  /** the largest few paths */
  examples: string[];
  /** the bytes came with the base image (a package upgrade replacing its files): not the user's to avoid */
  fromBase: boolean;
  /** one sentence: what happened, and how to stop shipping the bytes */
  fix: string;
}

/** Where a step of a layer came from: its stage (lbuild's build info), for same-stage advice. */
export interface LayerStep extends StepRef {
  stage?: string;
}

const EXAMPLES = 3;

/**
 * Packages a removing RUN purges (`apt-get purge -y a b`, `apk del x`, `dnf remove y`), if it purges
 * any: lint's reading of what a RUN cleans (an autoremove purges packages it does not name).
 */
export function purgedPackages(instruction: string): string[] | undefined {
  const gone = [...cleaned(instruction)].filter((r) => r.startsWith('pkg:'));
  if (gone.length === 0) return undefined;
  // a `$VAR` list is named by the word "packages" in the fix, not by the variable
  return gone.filter((r) => r !== 'pkg:*' && !r.includes('$')).map((r) => r.slice(4));
}

function lineOf(s: StepRef): string {
  return s.line !== null ? `line ${s.line}` : `"${short(s.instruction, 40)}"`;
}

/** An instruction cut to fit one line of output. */
export function short(text: string, max = 72): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

function kindOf(s: StepRef): string {
  return s.instruction.split(/\s+/)[0]?.toUpperCase() ?? '';
}

function fixOf(c: Omit<Cause, 'fix'>, sameStage: boolean): string {
  const amount = `${humanSize(c.bytes)} in ${c.files.toLocaleString('en-US')} file${c.files === 1 ? '' : 's'}`;
  if (c.fromBase) return `from the base image: ${lineOf(c.removedBy)} replaces or removes files the base ships (${amount}); nothing in this Dockerfile adds them (a base image that is already up to date avoids it)`;
  const added = lineOf(c.addedBy);
  const removed = lineOf(c.removedBy);
  if (c.how === 'overwritten') return `${removed} rewrites files ${added} wrote: ${amount} — write them once, in one step`;
  const purged = purgedPackages(c.removedBy.instruction);
  if (purged !== undefined && kindOf(c.addedBy) === 'RUN') {
    const what = purged.length ? purged.slice(0, 4).join(' ') + (purged.length > 4 ? ' …' : '') : 'packages';
    return `${removed} purges ${what} installed on ${added}: ${amount} — install and purge in the same RUN, or build in a separate stage`;
  }
  if (kindOf(c.addedBy) === 'COPY' || kindOf(c.addedBy) === 'ADD') {
    return `${removed} deletes files ${added} copied in: ${amount} — leave them out of the COPY (.dockerignore or a narrower source), or use a multi-stage build`;
  }
  if (kindOf(c.addedBy) === 'RUN' && sameStage) return `${removed} deletes files ${added} created: ${amount} — create and delete them in the same RUN, or build in a separate stage`;
  return `${removed} deletes files ${added} added: ${amount} — use a multi-stage build and copy only what the final image needs`;
}

/**
 * Group wasted files by (adding layer, hiding layer, how), largest first. `baseLayers` is how many
 * leading layers came with the base image.
 */
export function groupCauses(files: readonly WastedFile[], steps: readonly LayerStep[], baseLayers: number): Cause[] {
  const groups = new Map<string, { f: WastedFile; list: WastedFile[] }>();
  for (const f of files) {
    const key = `${f.addedIn}/${f.removedIn}/${f.how}`;
    const g = groups.get(key);
    if (g) g.list.push(f);
    else groups.set(key, { f, list: [f] });
  }
  const ref = (i: number): StepRef => ({ line: steps[i]?.line ?? null, instruction: steps[i]?.instruction ?? '' });
  const out: Cause[] = [];
  for (const { f, list } of groups.values()) {
    const sorted = [...list].sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : 1));
    const base = {
      addedBy: ref(f.addedIn),
      removedBy: ref(f.removedIn),
      how: f.how,
      bytes: list.reduce((a, x) => a + x.bytes, 0),
      files: list.length,
      examples: sorted.slice(0, EXAMPLES).map((x) => `/${x.path}`),
      fromBase: f.addedIn < baseLayers,
    };
    const stage = steps[f.addedIn]?.stage;
    out.push({ ...base, fix: fixOf(base, stage !== undefined && stage === steps[f.removedIn]?.stage) });
  }
  return out.sort((a, b) => b.bytes - a.bytes || (a.addedBy.line ?? 0) - (b.addedBy.line ?? 0));
}
