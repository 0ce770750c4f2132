import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { applyMetadata, isMetadataOnly } from '../builder/metadata.js';
import { storeTreeAsLayer } from '../diff/layer.js';
import { DockerfileError } from '../dockerfile/errors.js';
import { parseTrigger } from '../dockerfile/parse.js';
import { Scope } from '../dockerfile/scope.js';
import { hostPlatform } from '../oci/platform.js';
import { LbuildError, UsageError } from '../errors.js';
import { emptyConfig, withLayer } from '../oci/config.js';
import type { ImageConfig } from '../oci/types.js';
import { applyLayer } from '../snapshot/apply.js';
import type { Store, StoredImage } from '../store/store.js';
import { decompress, sniffFile } from '../util/decompress.js';
import { tempName } from '../util/fsx.js';

const CHANGE_KINDS = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR', 'SHELL', 'HEALTHCHECK']);

/** The creation time: SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
export function creationTime(env: NodeJS.ProcessEnv = process.env): string {
  const sde = env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && sde !== '') {
    const n = Number(sde);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`SOURCE_DATE_EPOCH must be a non-negative integer, not ${JSON.stringify(sde)}`);
    return new Date(n * 1000).toISOString().replace('.000Z', 'Z');
  }
  return new Date().toISOString();
}

/** Apply `--change` instructions (docker import/commit's list) to a config. */
export function applyChanges(cfg: ImageConfig, changes: readonly string[]): ImageConfig {
  let out = cfg;
  const scope = new Scope('--change', '\\', new Map());
  scope.loadEnv(cfg.config.Env);
  for (const c of changes) {
    let instr;
    try {
      instr = parseTrigger(c, '--change', 1);
    } catch (e) {
      if (e instanceof DockerfileError) throw new UsageError(`--change ${JSON.stringify(c)}: ${e.detail}`);
      throw e;
    }
    if (!CHANGE_KINDS.has(instr.kind) || !isMetadataOnly(instr)) throw new UsageError(`--change ${JSON.stringify(c)}: ${instr.kind} is not allowed (use one of ${[...CHANGE_KINDS].join(', ')})`);
    out = applyMetadata(out, instr, scope, { cmdSetInStage: true }, '--change');
  }
  return out;
}

/** `lbuild import ROOTFS.tar NAME[:TAG]`: a one-layer image from a root filesystem tar (like docker import). */
export async function importRootfs(store: Store, file: string, tags: readonly string[], changes: readonly string[]): Promise<StoredImage> {
  const st = await fsp.stat(file).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError(`${file}: no such file`);
  const created = creationTime();
  const config0 = applyChanges(emptyConfig(hostPlatform(), created), changes);
  const tmp = path.join(store.tmpDir, tempName('import'));
  await fsp.mkdir(path.join(tmp, 'diff'), { recursive: true, mode: 0o755 });
  try {
    try {
      await applyLayer(decompress(createReadStream(file), await sniffFile(file)), path.join(tmp, 'diff'));
    } catch (e) {
      if (e instanceof LbuildError) throw new LbuildError(`${file}: ${e.message}`);
      throw new LbuildError(`${file}: not a readable tar archive (${(e as Error).message})`);
    }
    // re-pack deterministically: the snapshot and the stored tar then describe the same tree
    const layer = await storeTreeAsLayer(store.content, path.join(tmp, 'diff'));
    await store.snapshots.adopt(layer.diffId, tmp);
    const config = withLayer(config0, layer.diffId, { created, created_by: '', comment: `Imported from ${path.basename(file)}` });
    return await store.commitImage(config, tags);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
