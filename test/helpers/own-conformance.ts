import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { REPO, run } from './cli.js';

/** lbuild's own conformance corpus: testdata/conformance/cases (README there). */
export const CASES = path.join(REPO, 'testdata', 'conformance', 'cases');
const META = ['expected.json', 'ARGS', 'SETUP'];

export async function caseNames(): Promise<string[]> {
  return (await fsp.readdir(CASES)).sort();
}

/** The extra build flags of a case. */
export async function caseArgs(name: string): Promise<string[]> {
  const text = await fsp.readFile(path.join(CASES, name, 'ARGS'), 'utf8').catch(() => '');
  return text.split(/\s+/).filter((w) => w !== '');
}

/**
 * A case's context as both builders get it: a copy owned by root, directories 0755, files 0644
 * (0755 when executable), without the corpus's own files, then its SETUP run inside it.
 */
export async function stageCase(name: string, into: string): Promise<string> {
  const dest = path.join(into, name);
  await fsp.rm(dest, { recursive: true, force: true });
  await fsp.mkdir(into, { recursive: true });
  const cp = await run('cp', ['-a', path.join(CASES, name), dest]);
  if (cp.exitCode !== 0) throw new Error(cp.stderr);
  for (const m of META) await fsp.rm(path.join(dest, m), { force: true });
  const norm = await run('sh', ['-c', `chown -R -h 0:0 "$1" && find "$1" -type d -exec chmod 0755 {} + && find "$1" -type f -perm /111 -exec chmod 0755 {} + && find "$1" -type f ! -perm /111 -exec chmod 0644 {} +`, 'sh', dest]);
  if (norm.exitCode !== 0) throw new Error(norm.stderr);
  const setup = await fsp.readFile(path.join(CASES, name, 'SETUP'), 'utf8').catch(() => undefined);
  if (setup !== undefined) {
    const r = await run('sh', ['-ec', `cd "$1" && ${setup}`, 'sh', dest]);
    if (r.exitCode !== 0) throw new Error(`${name}/SETUP: ${r.stderr}`);
  }
  return dest;
}
