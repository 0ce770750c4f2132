import { LbuildError } from '../errors.js';
import { type Digest, parseDigest } from './digest.js';
import type { Descriptor, ImageConfig, ImageIndex, Manifest } from './types.js';

/*
 * Documents from outside (archives, registries, shared caches) are parsed here, at the
 * boundary: every digest in them goes through parseDigest and every field the code relies on
 * has the type the code assumes, so no later step meets a `TypeError` or a digest that is a path.
 */

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw new LbuildError(`${what} is not valid JSON (${(e as Error).message})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw new LbuildError(`${what}: not a descriptor`);
  const size = v.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new LbuildError(`${what}: bad size ${JSON.stringify(size)}`);
  return { ...(v as unknown as Descriptor), digest: parseDigest(v.digest, what), size, mediaType: typeof v.mediaType === 'string' ? v.mediaType : '' };
}

/** An image manifest or an index (manifest list): whichever the bytes are. */
export function parseManifestOrIndex(bytes: Buffer, what: string): { manifest: Manifest } | { index: ImageIndex } {
  const doc = parseJson(bytes, what);
  if (!isObject(doc)) throw new LbuildError(`${what}: not a JSON object`);
  if (Array.isArray(doc.manifests)) {
    return { index: { ...(doc as unknown as ImageIndex), manifests: doc.manifests.map((m, i) => parseDescriptor(m, `${what}: manifests[${i}]`)) } };
  }
  if (!isObject(doc.config) || !Array.isArray(doc.layers)) throw new LbuildError(`${what}: not an image manifest`);
  return {
    manifest: {
      ...(doc as unknown as Manifest),
      config: parseDescriptor(doc.config, `${what}: config`),
      layers: doc.layers.map((l, i) => parseDescriptor(l, `${what}: layers[${i}]`)),
    },
  };
}

export function parseManifest(bytes: Buffer, what: string): Manifest {
  const r = parseManifestOrIndex(bytes, what);
  if (!('manifest' in r)) throw new LbuildError(`${what}: an index where an image manifest was expected`);
  return r.manifest;
}

/** An image config: the fields lbuild relies on are checked, diff_ids are strict digests. */
export function parseImageConfig(bytes: Buffer, what: string): ImageConfig {
  const doc = parseJson(bytes, what);
  if (!isObject(doc)) throw new LbuildError(`${what}: not a JSON object`);
  const rootfs = doc.rootfs;
  if (!isObject(rootfs) || !Array.isArray(rootfs.diff_ids)) throw new LbuildError(`${what}: no rootfs.diff_ids`);
  const diffIds: Digest[] = rootfs.diff_ids.map((d, i) => parseDigest(d, `${what}: diff_ids[${i}]`));
  if (doc.config !== undefined && doc.config !== null && !isObject(doc.config)) throw new LbuildError(`${what}: config is not an object`);
  if (doc.history !== undefined && !Array.isArray(doc.history)) throw new LbuildError(`${what}: history is not a list`);
  return { ...(doc as unknown as ImageConfig), config: (doc.config ?? {}) as ImageConfig['config'], rootfs: { type: 'layers', diff_ids: diffIds } };
}
