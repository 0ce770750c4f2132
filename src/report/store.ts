import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { NotFoundError } from '../errors.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import type { BuildReport } from './build-report.js';
import { layout } from '../store/layout.js';

/** A finished (or failed) build's report, kept for `lbuild report html` (`cache/reports/<id>.json`). */
export interface StoredReport {
  version: 1;
  id: string;
  dockerfile: string;
  target: string;
  report: BuildReport;
}

function dir(root: string): string {
  return layout.reports(root);
}

export function newBuildId(): string {
  // sortable by time, unique enough for one machine
  return `${Date.now().toString(36)}-${process.pid.toString(36)}`;
}

export async function saveReport(root: string, r: StoredReport): Promise<void> {
  await fsp.mkdir(dir(root), { recursive: true });
  await writeFileAtomic(path.join(dir(root), `${r.id}.json`), JSON.stringify(r));
}

export async function loadReport(root: string, id: string | undefined): Promise<StoredReport> {
  let name = id;
  if (name === undefined) {
    const all = (await fsp.readdir(dir(root)).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
    const last = all[all.length - 1];
    if (!last) throw new NotFoundError('build report (no build recorded yet)');
    name = last.slice(0, -5);
  }
  if (!/^[0-9a-z-]+$/.test(name)) throw new NotFoundError(`build report ${name}`);
  const r = await readJsonFile<StoredReport>(path.join(dir(root), `${name}.json`)).catch(() => undefined);
  if (!r || r.version !== 1) throw new NotFoundError(`build report ${name}`);
  return r;
}
