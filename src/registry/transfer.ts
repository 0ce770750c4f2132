import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { type Platform, configPlatform, formatPlatform, hostPlatform, pickFor } from '../oci/platform.js';
import { DigestMismatchError, LbuildError } from '../errors.js';
import { type Digest, hexOf, sha256, tapDigest } from '../oci/digest.js';
import { gzipFile } from '../oci/layer-file.js';
import { normalizeTag } from '../oci/reference.js';
import { type Descriptor, type ImageIndex, type Manifest, MediaType } from '../oci/types.js';
import { parseImageConfig, parseManifest, parseManifestOrIndex } from '../oci/validate.js';
import type { StagedBlob } from '../store/content.js';
import type { Store, StoredImage, StoredIndex } from '../store/store.js';
import { decompress, type Compression } from '../util/decompress.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { type ClientOptions, RegistryClient, RegistryError, type RequestBody } from './client.js';
import { type RemoteRef, resolveRemote } from './ref.js';
import { layout } from '../store/layout.js';

export interface TransferOptions extends ClientOptions {
  log?: (line: string) => void;
  gzipLevel?: number;
  /** the platform to pick from a manifest list (default this host's) */
  platform?: Platform;
  /** pull: add the image without giving it the name (a build's base of another platform) */
  untagged?: boolean;
}

function compressionOf(mediaType: string): Compression {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  return 'none';
}

/** A stream that hashes what flows through it; `digest()` once it ended. */
function hashing(src: Readable): { out: Readable; digest: () => Digest } {
  const out = new PassThrough();
  const digest = tapDigest(src);
  src.on('error', (e) => out.destroy(e));
  src.pipe(out);
  return { out, digest };
}

function verifyBytes(bytes: Buffer, expected: string | undefined, what: string): void {
  if (expected && sha256(bytes) !== expected) throw new DigestMismatchError(what, expected, sha256(bytes));
}

/** Pick the manifest for a platform (this host's by default) from an index / manifest list. */
function pickPlatform(index: ImageIndex, display: string, p: Platform = hostPlatform()): Descriptor {
  const hit = pickFor(index.manifests, (m) => (m.platform ? configPlatform(m.platform) : undefined), p);
  if (!hit) throw new LbuildError(`${display}: no image for ${formatPlatform(p)} in its manifest list`);
  return hit;
}

/** Fetch one layer blob, verify its digest, decompress it and stage it against its diff_id. */
export async function fetchLayer(store: Store, client: RegistryClient, desc: Descriptor, diffId: Digest): Promise<StagedBlob> {
  const { out, digest } = hashing(await client.blob(desc.digest, desc.size));
  let staged: StagedBlob;
  try {
    staged = await store.content.stage(decompress(out, compressionOf(desc.mediaType)), diffId, `layer ${desc.digest}`);
  } catch (e) {
    if (e instanceof LbuildError) throw e;
    throw new RegistryError(`layer ${desc.digest}: corrupt or truncated download (${(e as Error).message})`);
  }
  if (digest() !== desc.digest) {
    await store.content.discard(staged);
    throw new DigestMismatchError(`layer ${desc.digest}`, desc.digest, digest());
  }
  return staged;
}

/** `lbuild pull REF`: every blob verified before anything enters the store; layers present are skipped. */
/** The repository as docker names it in RepoDigests (Docker Hub's without its host and library/). */
function repoName(ref: RemoteRef): string {
  return ref.host === 'docker.io' ? ref.repository.replace(/^library\//, '') : `${ref.host}/${ref.repository}`;
}

export async function pullImage(store: Store, input: string, opts: TransferOptions = {}): Promise<StoredImage> {
  const ref = resolveRemote(input);
  const client = new RegistryClient(ref, opts);
  const log = opts.log ?? (() => undefined);
  let { bytes } = await client.getManifest(ref.digest ?? (ref.tag as string));
  verifyBytes(bytes, ref.digest, `manifest of ${ref.display}`);
  // docker's RepoDigest is what the name resolved to: an index's digest for a multi-platform image
  const resolved = sha256(bytes);
  let doc = parseManifestOrIndex(bytes, `manifest of ${ref.display}`);
  if ('index' in doc) {
    const d = pickPlatform(doc.index, ref.display, opts.platform);
    ({ bytes } = await client.getManifest(d.digest));
    verifyBytes(bytes, d.digest, `manifest of ${ref.display}`);
    doc = { manifest: parseManifest(bytes, `manifest of ${ref.display}`) };
  }
  const manifest = doc.manifest;
  const configBytes = await client.blobBytes(manifest.config.digest, manifest.config.size);
  verifyBytes(configBytes, manifest.config.digest, `config of ${ref.display}`);
  const config = parseImageConfig(configBytes, `config of ${ref.display}`);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) throw new LbuildError(`${ref.display}: ${manifest.layers.length} layers but ${diffIds.length} diff_ids`);
  const staged: StagedBlob[] = [];
  const origins: [Digest, LayerOrigin][] = [];
  try {
    for (const [i, l] of manifest.layers.entries()) {
      const diffId = diffIds[i] as Digest;
      origins.push([diffId, { host: ref.host, repository: ref.repository, descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size } }]);
      if (await store.content.has(diffId)) {
        log(`${hexOf(l.digest).slice(0, 12)}: Already exists`);
        continue;
      }
      log(`${hexOf(l.digest).slice(0, 12)}: Pulling ${l.size} bytes`);
      staged.push(await fetchLayer(store, client, l, diffId));
      log(`${hexOf(l.digest).slice(0, 12)}: Pull complete`);
    }
    for (const s of staged) await store.content.commit(s);
    staged.length = 0;
  } finally {
    for (const s of staged) await store.content.discard(s);
  }
  for (const [d, o] of origins) await saveOrigin(store, d, o);
  await store.ensureSnapshots(diffIds);
  const tags = opts.untagged || ref.digest ? [] : [normalizeTag(input)];
  const img = await store.commitImage(config, tags, configBytes);
  await store.addRepoDigest(img.id, `${repoName(ref)}@${resolved}`);
  log(`Digest: ${resolved}`);
  return { ...img, repoDigests: [...img.repoDigests.filter((r) => !r.startsWith(`${repoName(ref)}@`)), `${repoName(ref)}@${resolved}`].sort() };
}

/** Where a pulled layer came from, so a push to the same registry can mount it instead of uploading. */
interface LayerOrigin {
  host: string;
  repository: string;
  descriptor: Descriptor;
}

function originFile(store: Store, diffId: Digest): string {
  return layout.origins(store.root, diffId);
}

async function saveOrigin(store: Store, diffId: Digest, o: LayerOrigin): Promise<void> {
  await fsp.mkdir(path.dirname(originFile(store, diffId)), { recursive: true });
  await writeFileAtomic(originFile(store, diffId), JSON.stringify(o));
}

interface CompressedRef {
  digest: Digest;
  size: number;
}

/**
 * The gzip form of a stored layer, made once per store and remembered
 * (`cache/compressed/<diff_id>.json` → a blob in the content store).
 */
export async function compressedLayer(store: Store, diffId: Digest, level = 6): Promise<CompressedRef> {
  const map = layout.compressed(store.root, diffId);
  const known = await readJsonFile<CompressedRef>(map).catch(() => undefined);
  if (known && (await store.content.has(known.digest))) return known;
  const gz = await gzipFile(store.content.path(diffId), store.tmpDir, level, diffId);
  await store.content.adopt(gz.file, gz.digest);
  const rec = { digest: gz.digest, size: gz.size };
  await fsp.mkdir(path.dirname(map), { recursive: true });
  await writeFileAtomic(map, JSON.stringify(rec));
  return rec;
}

/** Compress layers, a few at a time (gzip is the slow part of a push). */
export async function compressAll(store: Store, diffIds: readonly Digest[], level = 6, parallel = 2): Promise<CompressedRef[]> {
  const out: CompressedRef[] = new Array(diffIds.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < diffIds.length) {
      const i = next++;
      out[i] = await compressedLayer(store, diffIds[i] as Digest, level);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, diffIds.length) }, worker));
  return out;
}

export async function uploadIfMissing(client: RegistryClient, store: Store, digest: Digest, size: number, log: (l: string) => void): Promise<void> {
  if (await client.hasBlob(digest)) {
    log(`${hexOf(digest).slice(0, 12)}: Layer already exists`);
    return;
  }
  log(`${hexOf(digest).slice(0, 12)}: Pushing ${size} bytes`);
  await client.uploadBlob(digest, size, () => createReadStream(store.content.path(digest)) as AsyncIterable<Uint8Array> as RequestBody);
  log(`${hexOf(digest).slice(0, 12)}: Pushed`);
}

/** `lbuild push IMAGE [REF]`: gzip layers (once per store), upload what the registry lacks, then the manifest. */
export async function pushImage(store: Store, image: string, target: string | undefined, opts: TransferOptions = {}): Promise<{ ref: RemoteRef; digest: Digest }> {
  const index = await store.getIndex(image);
  if (index) return pushIndex(store, index, target ?? image, opts);
  const img = await store.getImage(image);
  const ref = resolveRemote(target ?? image);
  if (ref.digest || !ref.tag) throw new LbuildError(`push ${ref.display}: give a tag to push to`);
  const client = new RegistryClient(ref, opts);
  const pushed = await pushManifestOf(store, client, ref, img, ref.tag, opts);
  await store.addRepoDigest(img.id, `${repoName(ref)}@${pushed.digest}`);
  return { ref, digest: pushed.digest };
}

/**
 * An image's layers (gzip; mounted or skipped where the registry has them), config and
 * manifest into the repository, the manifest under `reference` (a tag, or its own digest).
 */
async function pushManifestOf(store: Store, client: RegistryClient, ref: RemoteRef, img: StoredImage, reference: string | undefined, opts: TransferOptions): Promise<{ digest: Digest; size: number }> {
  const log = opts.log ?? (() => undefined);
  // layers pulled from this registry are mounted from their repository (or already there)
  const descriptors = new Map<Digest, Descriptor>();
  for (const d of img.config.rootfs.diff_ids) {
    const o = await readJsonFile<LayerOrigin>(originFile(store, d)).catch(() => undefined);
    if (!o || o.host !== ref.host || descriptors.has(d)) continue;
    if ((await client.hasBlob(o.descriptor.digest)) || (await client.mountBlob(o.descriptor.digest, o.repository))) {
      log(`${hexOf(o.descriptor.digest).slice(0, 12)}: Mounted from ${o.repository}`);
      descriptors.set(d, o.descriptor);
    }
  }
  const rest = img.config.rootfs.diff_ids.filter((d) => !descriptors.has(d));
  const compressed = await compressAll(store, rest, opts.gzipLevel ?? 6);
  for (const [i, d] of rest.entries()) {
    const c = compressed[i] as CompressedRef;
    await uploadIfMissing(client, store, c.digest, c.size, log);
    descriptors.set(d, { mediaType: MediaType.ociLayerGzip, digest: c.digest, size: c.size });
  }
  const layers = img.config.rootfs.diff_ids.map((d) => descriptors.get(d) as Descriptor);
  await uploadIfMissing(client, store, img.id, await store.content.size(img.id), log);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: img.id, size: await store.content.size(img.id) },
    layers,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = sha256(bytes);
  await client.putManifest(reference ?? digest, bytes, MediaType.ociManifest);
  log(`${reference ?? hexOf(digest).slice(0, 12)}: digest: ${digest} size: ${bytes.length}`);
  return { digest, size: bytes.length };
}

/** A multi-platform image: each platform's manifest by digest, then an OCI index of them under the tag. */
export async function pushIndex(store: Store, index: StoredIndex, target: string, opts: TransferOptions = {}): Promise<{ ref: RemoteRef; digest: Digest }> {
  const ref = resolveRemote(target);
  if (ref.digest || !ref.tag) throw new LbuildError(`push ${ref.display}: give a tag to push to`);
  const client = new RegistryClient(ref, opts);
  const manifests: Descriptor[] = [];
  for (const img of index.images) {
    const m = await pushManifestOf(store, client, ref, img, undefined, opts);
    const p = configPlatform(img.config);
    manifests.push({ mediaType: MediaType.ociManifest, digest: m.digest, size: m.size, platform: { architecture: p.arch, os: p.os, ...(p.variant ? { variant: p.variant } : {}) } });
  }
  const doc: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  const bytes = Buffer.from(JSON.stringify(doc));
  await client.putManifest(ref.tag, bytes, MediaType.ociIndex);
  (opts.log ?? (() => undefined))(`${ref.tag}: digest: ${sha256(bytes)} size: ${bytes.length} (index of ${manifests.length} platforms)`);
  return { ref, digest: sha256(bytes) };
}
