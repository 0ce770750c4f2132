import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type Digest, hexOf } from '../oci/digest.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { layout } from './layout.js';

/**
 * Which Dockerfile step made each layer of a built image (`buildinfo/<image id>.json`, version
 * 1). The image config cannot carry it; analyze uses it to point at the line to fix.
 */
export interface BuildInfo {
  version: 1;
  dockerfile: string;
  /** aligned with rootfs.diff_ids; null for layers of the base image */
  layers: ({ line: number; instruction: string; stage: string } | null)[];
}

export async function saveBuildInfo(root: string, id: Digest, info: BuildInfo): Promise<void> {
  const dir = layout.buildinfo(root);
  await fsp.mkdir(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, `${hexOf(id)}.json`), JSON.stringify(info));
}

export async function loadBuildInfo(root: string, id: Digest): Promise<BuildInfo | undefined> {
  const b = await readJsonFile<BuildInfo>(layout.buildinfo(root, id)).catch(() => undefined);
  return b?.version === 1 ? b : undefined;
}
