import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type Digest, sha256 } from '../oci/digest.js';
import { readJsonFile, tempName, writeFileAtomic } from '../util/fsx.js';
import type { RecordedStep } from './explain.js';
import { layout } from '../store/layout.js';

/** The last build of one Dockerfile + target, for explaining the next build's misses. */
export interface BuildRecord {
  version: 1;
  dockerfile: string;
  target: string;
  finished: string;
  steps: RecordedStep[];
  /** the image the build made (a fully cached rebuild of the same config gives it again) */
  image?: Digest;
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
  private readonly root: string;

  constructor(root: string) {
    this.dir = layout.cache(root);
    this.root = root;
  }

  private file(dockerfile: string, target: string): string {
    return path.join(layout.builds(this.root), `${sha256(`${dockerfile}\0${target}`).slice(7, 31)}.json`);
  }

  async last(dockerfile: string, target: string): Promise<BuildRecord | undefined> {
    const r = await readJsonFile<BuildRecord>(this.file(dockerfile, target)).catch(() => undefined);
    return r?.version === 1 ? r : undefined;
  }

  async save(rec: BuildRecord): Promise<void> {
    const f = this.file(rec.dockerfile, rec.target);
    await fsp.mkdir(path.dirname(f), { recursive: true });
    await writeFileAtomic(f, JSON.stringify(rec));
    await this.pruneFileLists();
  }

  /*
   * The files a COPY selected (path → description, for "source changed: src/x.ts") live beside
   * the records, one file per sources digest: a record stays small, a warm build reads none of
   * them, and a file list is written once however many builds share it.
   */
  private fileList(sources: string): string {
    return path.join(layout.files(this.root), `${sources.replace(/^sha256:/, '').slice(0, 32)}.json`);
  }

  /**
   * Write a step's file list to a temp file now (the list can be large: the caller lets go of it
   * while the step runs) and return what puts it in place once the step has succeeded, or
   * removes it; nothing when the list is already there.
   */
  async stageFiles(sources: string, files: Record<string, string>, tmpDir: string): Promise<{ commit(): Promise<void>; discard(): Promise<void> }> {
    const f = this.fileList(sources);
    const none = { commit: async () => undefined, discard: async () => undefined };
    if (await fsp.access(f).then(() => true, () => false)) return none;
    const tmp = path.join(tmpDir, tempName('files'));
    await fsp.writeFile(tmp, JSON.stringify(files));
    return {
      commit: async () => {
        await fsp.mkdir(path.dirname(f), { recursive: true });
        await fsp.rename(tmp, f);
      },
      discard: async () => fsp.rm(tmp, { force: true }),
    };
  }

  async loadFiles(sources: string): Promise<Record<string, string> | undefined> {
    return readJsonFile<Record<string, string>>(this.fileList(sources)).catch(() => undefined);
  }

  /**
   * Drop the file lists no build record refers to any more. A list younger than an hour is kept:
   * a build still running has committed its lists but not yet its record.
   */
  private async pruneFileLists(): Promise<void> {
    const dir = layout.files(this.root);
    const lists = await fsp.readdir(dir).catch(() => [] as string[]);
    if (!lists.length) return;
    const used = new Set<string>();
    for (const n of await fsp.readdir(layout.builds(this.root)).catch(() => [] as string[])) {
      const r = await readJsonFile<BuildRecord>(path.join(layout.builds(this.root), n)).catch(() => undefined);
      for (const st of r?.steps ?? []) if (st.inputs.sources) used.add(path.basename(this.fileList(st.inputs.sources)));
    }
    for (const n of lists) {
      if (!n.endsWith('.json') || used.has(n)) continue;
      const st = await fsp.stat(path.join(dir, n)).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 3_600_000) await fsp.rm(path.join(dir, n), { force: true });
    }
  }

  async appendHistory(line: HistoryLine): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    // one write of one line in append mode: concurrent builds interleave whole lines
    await fsp.appendFile(layout.history(this.root), `${JSON.stringify(line)}\n`);
  }

  async history(): Promise<HistoryLine[]> {
    const text = await fsp.readFile(layout.history(this.root), 'utf8').catch(() => '');
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
