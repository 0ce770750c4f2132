import { LbuildError, UsageError } from '../errors.js';
import { type ArchiveEntry, type ArchiveOut, type UnpackedArchive, writeArchive } from './archive-io.js';
import { type Digest, hexOf, isDigest } from './digest.js';
import { type ArchiveFormat, type ArchivedImage, type ExportImage, type ExportItem, isExportIndex } from './formats.js';
import { openLayerFile } from './layer-file.js';

/** `manifest.json` of `docker save` / `docker load`. */
interface DockerManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/**
 * docker-archive: `manifest.json` + config + uncompressed layer tars under `blobs/sha256/`
 * (the file names Docker 25+ uses), plus the legacy `repositories` file.
 */
export const dockerArchive: ArchiveFormat = {
  name: 'docker',

  async write(items: readonly ExportItem[], out: ArchiveOut): Promise<void> {
    const images: ExportImage[] = [];
    for (const item of items) {
      if (isExportIndex(item)) throw new UsageError(`${item.tags[0] ?? 'a multi-platform image'}: a docker-archive holds one platform per image; use the OCI format (save --format oci, -o type=oci) for all of them`);
      images.push(item);
    }
    const manifest: DockerManifestEntry[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    const written = new Set<string>();
    const entries: ArchiveEntry[] = [];
    for (const img of images) {
      const cfgName = `blobs/sha256/${hexOf(img.id)}`;
      if (!written.has(cfgName)) {
        written.add(cfgName);
        entries.push({ name: cfgName, data: img.configBytes });
      }
      const layers: string[] = [];
      for (const l of img.layers) {
        const name = `blobs/sha256/${hexOf(l.diffId)}`;
        layers.push(name);
        if (!written.has(name)) {
          written.add(name);
          entries.push({ name, file: l.file, size: l.size, digest: l.diffId });
        }
      }
      manifest.push({ Config: cfgName, RepoTags: img.tags.length ? img.tags : null, Layers: layers });
      const top = img.layers[img.layers.length - 1];
      for (const t of img.tags) {
        const colon = t.lastIndexOf(':');
        const repo = t.slice(0, colon);
        (repositories[repo] ??= {})[t.slice(colon + 1)] = top ? hexOf(top.diffId) : hexOf(img.id);
      }
    }
    entries.push({ name: 'manifest.json', data: Buffer.from(`${JSON.stringify(manifest)}\n`) });
    if (Object.keys(repositories).length) entries.push({ name: 'repositories', data: Buffer.from(`${JSON.stringify(repositories)}\n`) });
    await writeArchive(out, entries);
  },

  recognizes(archive: UnpackedArchive): boolean {
    return archive.has('manifest.json');
  },

  async read(archive: UnpackedArchive): Promise<ArchivedImage[]> {
    let entries: DockerManifestEntry[];
    try {
      entries = JSON.parse(((await archive.read('manifest.json')) ?? '').toString()) as DockerManifestEntry[];
    } catch (e) {
      throw new LbuildError(`manifest.json of the archive is not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(entries)) throw new LbuildError('manifest.json of the archive is not a list');
    const out: ArchivedImage[] = [];
    for (const e of entries) {
      if (typeof e !== 'object' || e === null || typeof e.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
        throw new LbuildError('manifest.json entry lacks Config or Layers');
      }
      const configBytes = await archive.read(e.Config);
      if (!configBytes) throw new LbuildError(`archive lacks the config ${JSON.stringify(e.Config)}`);
      // the config's file name is its digest, in both the legacy (<hex>.json) and blobs layouts
      const m = /([0-9a-f]{64})(?:\.json)?$/.exec(e.Config);
      const named = m ? `sha256:${m[1]}` : undefined;
      const img: ArchivedImage = {
        configBytes,
        tags: (Array.isArray(e.RepoTags) ? e.RepoTags : []).filter((t) => typeof t === 'string'),
        layers: e.Layers.map((l) => ({
          what: `layer ${JSON.stringify(l)}`,
          open: () => {
            const f = archive.file(l);
            if (f === undefined) throw new LbuildError(`archive lacks the layer ${JSON.stringify(l)}`);
            return openLayerFile(f);
          },
        })),
      };
      if (named && isDigest(named)) img.configDigest = named as Digest;
      out.push(img);
    }
    return out;
  },
};
