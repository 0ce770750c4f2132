import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { sha256 } from '../oci/digest.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import type { RecordedStep } from './explain.js';

/** The last build of one Dockerfile + target, for explaining the next build's misses. */
export interface BuildRecord {
  version: 1;
  dockerfile: string;
  target: string;
  finished: string;
  steps: RecordedStep[];
}

/** One line of `cache/history.jsonl`, for `lbuild cache report`. */
export interface HistoryLine {
  time: string;
  dockerfile: string;
  target: string;
  image: string;
  durationMs: number;
  steps: { stage: string; index: number; line: number; instruction: string; cache: 'hit' | 'miss'; reason?: string; durationMs: number }[];
  summary: { steps: number; hits: number; misses: number; hitRatio: number; savedMs: number };
}

export class BuildRecords {
  private readonly dir: string;

  constructor(root: string) {
    this.dir = path.join(root, 'cache');
  }

  private file(dockerfile: string, target: string): string {
    return path.join(this.dir, 'builds', `${sha256(`${dockerfile}\0${target}`).slice(7, 31)}.json`);
  }

  async last(dockerfile: string, target: string): Promise<BuildRecord | undefined> {
    const r = await readJsonFile<BuildRecord>(this.file(dockerfile, target)).catch(() => undefined);
    return r?.version === 1 ? r : undefined;
  }

  async save(rec: BuildRecord): Promise<void> {
    const f = this.file(rec.dockerfile, rec.target);
    await fsp.mkdir(path.dirname(f), { recursive: true });
    await writeFileAtomic(f, JSON.stringify(rec));
  }

  async appendHistory(line: HistoryLine): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    // one write of one line in append mode: concurrent builds interleave whole lines
    await fsp.appendFile(path.join(this.dir, 'history.jsonl'), `${JSON.stringify(line)}\n`);
  }

  async history(): Promise<HistoryLine[]> {
    const text = await fsp.readFile(path.join(this.dir, 'history.jsonl'), 'utf8').catch(() => '');
    const out: HistoryLine[] = [];
    for (const l of text.split('\n')) {
      if (!l.trim()) continue;
      try {
        out.push(JSON.parse(l) as HistoryLine);
      } catch {
        // a torn last line from a killed process: skip it
      }
    }
    return out;
  }
}
