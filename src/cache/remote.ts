import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LbuildError, UsageError } from '../errors.js';
import { type Digest, hexOf, parseDigest, sha256 } from '../oci/digest.js';
import { parseDescriptor, parseManifest, parseManifestOrIndex } from '../oci/validate.js';
import { decompress } from '../util/decompress.js';
import { type Descriptor, type ImageIndex, type Manifest, MediaType } from '../oci/types.js';
import { type ClientOptions, RegistryClient } from '../registry/client.js';
import { resolveRemote } from '../registry/ref.js';
import { compressAll, fetchLayer, uploadIfMissing } from '../registry/transfer.js';
import type { CacheRecord } from '../store/cache.js';
import type { Store } from '../store/store.js';

/**
 * The shared build cache, as an OCI artifact (version 1): an image manifest whose config has
 * media type `application/vnd.lbuild.cache.config.v1+json` and holds the records
 * `{version: 1, records: [{key, diffId, layer: {digest, size, mediaType}, createdBy, durationMs}]}`,
 * and whose layers are the gzip layer blobs those records name (so the registry keeps them).
 * Pushed to a registry tag (`type=registry,ref=R`) or written as an OCI layout directory
 * (`type=local,dest=DIR`, tag `cache`). Import reads only the manifest and config; a layer is
 * fetched when a step hits it.
 */
export const CACHE_CONFIG_TYPE = 'application/vnd.lbuild.cache.config.v1+json';

export interface RemoteRecord {
  key: string;
  diffId: Digest;
  layer: Descriptor;
  createdBy: string;
  durationMs: number;
}

interface CacheConfig {
  version: 1;
  records: RemoteRecord[];
}

export interface CacheSpec {
  type: 'registry' | 'local';
  ref?: string;
  dir?: string;
  mode: 'min' | 'max';
  gzipLevel: number;
}

export function parseCacheSpec(spec: string, flag: string): CacheSpec {
  const kv: Record<string, string> = {};
  // as docker build: a bare reference is a registry cache
  if (!spec.includes('=')) spec = `type=registry,ref=${spec}`;
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new UsageError(`${flag} ${spec}: expected key=value pairs (type=registry,ref=…)`);
    kv[part.slice(0, eq)] = part.slice(eq + 1);
  }
  const type = kv.type ?? 'registry';
  if (type !== 'registry' && type !== 'local') throw new UsageError(`${flag}: unsupported cache type "${type}" (registry or local)`);
  const mode = kv.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UsageError(`${flag}: mode must be min or max`);
  const out: CacheSpec = { type, mode, gzipLevel: kv['compression-level'] ? Number(kv['compression-level']) : 6 };
  if (type === 'registry') {
    if (!kv.ref) throw new UsageError(`${flag}: type=registry needs ref=`);
    out.ref = kv.ref;
  } else {
    const dir = flag === '--cache-to' ? kv.dest : kv.src;
    if (!dir) throw new UsageError(`${flag}: type=local needs ${flag === '--cache-to' ? 'dest' : 'src'}=`);
    out.dir = dir;
  }
  return out;
}

/**
 * The records of a cache config, verified against its digest. Every field comes from another
 * machine: digests are parsed strictly and a record of the wrong shape refuses the whole cache.
 */
export function parseCacheConfig(bytes: Buffer, digest: Digest, what: string): RemoteRecord[] {
  if (sha256(bytes) !== digest) throw new LbuildError(`${what}: cache config digest mismatch`);
  let cfg: Partial<CacheConfig>;
  try {
    cfg = JSON.parse(bytes.toString('utf8')) as Partial<CacheConfig>;
  } catch {
    throw new LbuildError(`${what}: cache config is not valid JSON`);
  }
  if (cfg?.version !== 1 || !Array.isArray(cfg.records)) return [];
  return cfg.records.map((r: Partial<RemoteRecord>, i) => {
    const at = `${what}: record ${i}`;
    if (typeof r !== 'object' || r === null || typeof r.key !== 'string' || !/^[0-9a-f]{64}$/.test(r.key)) throw new LbuildError(`${at}: bad key`);
    return {
      key: r.key,
      diffId: parseDigest(r.diffId, `${at}: diffId`),
      layer: parseDescriptor(r.layer, `${at}: layer`),
      createdBy: typeof r.createdBy === 'string' ? r.createdBy : '',
      durationMs: typeof r.durationMs === 'number' && Number.isFinite(r.durationMs) ? r.durationMs : 0,
    };
  });
}

/** Records imported with --cache-from; `fetch` brings a hit's layer into the store. */
export class ImportedCache {
  constructor(
    private readonly records: Map<string, RemoteRecord>,
    private readonly fetcher: (store: Store, r: RemoteRecord) => Promise<void>,
  ) {}

  get size(): number {
    return this.records.size;
  }

  lookup(key: string): RemoteRecord | undefined {
    return this.records.get(key);
  }

  async fetch(store: Store, r: RemoteRecord): Promise<void> {
    if (!(await store.content.has(r.diffId))) await this.fetcher(store, r);
  }
}

export async function importCache(specs: readonly CacheSpec[], opts: ClientOptions): Promise<ImportedCache> {
  const all = new Map<string, RemoteRecord>();
  const fetchers = new Map<string, (store: Store, r: RemoteRecord) => Promise<void>>();
  for (const spec of specs) {
    let records: RemoteRecord[];
    let fetcher: (store: Store, r: RemoteRecord) => Promise<void>;
    if (spec.type === 'registry') {
      const client = new RegistryClient(resolveRemote(spec.ref as string), opts);
      const m = await client.getManifest(resolveRemote(spec.ref as string).tag ?? 'latest').catch((e: unknown) => {
        if (e instanceof LbuildError && /not found/.test(e.message)) return undefined; // no cache there yet
        throw e;
      });
      if (!m) continue;
      const what = `--cache-from ${spec.ref}`;
      const manifest = parseManifest(m.bytes, what);
      if (manifest.config.mediaType !== CACHE_CONFIG_TYPE) throw new LbuildError(`${what}: not an lbuild cache`);
      // a cache of many steps has a larger config than an image: 64 MiB at most
      records = parseCacheConfig(await client.blobBytes(manifest.config.digest, manifest.config.size, 64 << 20), manifest.config.digest, what);
      fetcher = async (st, r) => st.content.commit(await fetchLayer(st, client, r.layer, r.diffId));
    } else {
      const dir = spec.dir as string;
      const what = `--cache-from ${dir}`;
      const blob = (d: Digest): string => path.join(dir, 'blobs', 'sha256', hexOf(d));
      const read = async (f: string): Promise<Buffer | undefined> => fsp.readFile(f).catch(() => undefined);
      const indexBytes = await read(path.join(dir, 'index.json'));
      if (!indexBytes) continue;
      const index = parseManifestOrIndex(indexBytes, `${what}: index.json`);
      if (!('index' in index)) throw new LbuildError(`${what}: index.json is not an index`);
      const desc = index.index.manifests[0];
      if (!desc) continue;
      const mbytes = await read(blob(desc.digest));
      if (!mbytes || sha256(mbytes) !== desc.digest) throw new LbuildError(`${what}: cache manifest ${desc.digest} missing or corrupt`);
      const manifest = parseManifest(mbytes, what);
      const cfg = await read(blob(manifest.config.digest));
      if (!cfg) throw new LbuildError(`${what}: cache config ${manifest.config.digest} missing`);
      records = parseCacheConfig(cfg, manifest.config.digest, what);
      fetcher = async (st, r) => {
        const staged = await st.content.stage(decompress(createReadStream(blob(r.layer.digest)), 'gzip'), r.diffId, `cached layer ${r.layer.digest}`);
        await st.content.commit(staged);
      };
    }
    for (const r of records) {
      if (!all.has(r.key)) {
        all.set(r.key, r);
        fetchers.set(r.key, fetcher);
      }
    }
  }
  return new ImportedCache(all, async (st, r) => (fetchers.get(r.key) as (s: Store, r: RemoteRecord) => Promise<void>)(st, r));
}

/** --cache-to: the given records (min: the final image's steps; max: every step built) and their layers. */
export async function exportCache(store: Store, spec: CacheSpec, records: readonly CacheRecord[], opts: ClientOptions & { log?: (l: string) => void }): Promise<number> {
  const unique = [...new Map(records.map((r) => [r.key, r])).values()];
  const gz = await compressAll(store, unique.map((r) => r.diffId), spec.gzipLevel);
  const remote: RemoteRecord[] = unique.map((r, i) => ({
    key: r.key,
    diffId: r.diffId,
    layer: { mediaType: MediaType.ociLayerGzip, digest: (gz[i] as { digest: Digest }).digest, size: (gz[i] as { size: number }).size },
    createdBy: r.createdBy,
    durationMs: r.durationMs,
  }));
  const configBytes = Buffer.from(JSON.stringify({ version: 1, records: remote } satisfies CacheConfig));
  const layers = [...new Map(remote.map((r) => [r.layer.digest, r.layer])).values()];
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: CACHE_CONFIG_TYPE, digest: sha256(configBytes), size: configBytes.length },
    layers,
  };
  const mbytes = Buffer.from(JSON.stringify(manifest));
  const log = opts.log ?? (() => undefined);
  if (spec.type === 'registry') {
    const ref = resolveRemote(spec.ref as string);
    const client = new RegistryClient(ref, opts);
    for (const l of layers) await uploadIfMissing(client, store, l.digest, l.size, log);
    await store.content.ingest(configBytes);
    await uploadIfMissing(client, store, manifest.config.digest, configBytes.length, log);
    await client.putManifest(ref.tag ?? 'latest', mbytes, MediaType.ociManifest);
  } else {
    const dir = spec.dir as string;
    const blobs = path.join(dir, 'blobs', 'sha256');
    await fsp.mkdir(blobs, { recursive: true });
    for (const l of layers) await fsp.copyFile(store.content.path(l.digest), path.join(blobs, hexOf(l.digest)));
    await fsp.writeFile(path.join(blobs, hexOf(manifest.config.digest)), configBytes);
    await fsp.writeFile(path.join(blobs, hexOf(sha256(mbytes))), mbytes);
    await fsp.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ mediaType: MediaType.ociManifest, digest: sha256(mbytes), size: mbytes.length, annotations: { 'org.opencontainers.image.ref.name': 'cache' } }],
    };
    await fsp.writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
  }
  return remote.length;
}
