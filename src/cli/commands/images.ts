import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../errors.js';
import { imageSize } from '../../image/views.js';
import { type Digest, shortId } from '../../oci/digest.js';
import { configPlatform, formatPlatform } from '../../oci/platform.js';
import { splitTag } from '../../oci/reference.js';
import { layerContentSizes } from '../../store/layer-size.js';
import type { StoredImage } from '../../store/store.js';
import { humanAgo, humanSize } from '../../util/fsx.js';
import { type GlobalArgs, asArray, openStore, print, printJson } from '../common.js';
import { formatTable } from '../table.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  format?: string;
  quiet?: boolean;
  filter?: string[];
  digests?: boolean;
}

/** docker's reference filter: a glob over `repository:tag` (or the repository alone). */
function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('[^/]*')}$`);
  return re.test(text);
}

type Filter = (img: StoredImage, tag: string | undefined) => boolean;

/** `--filter` as docker images takes it: dangling, reference, label, before, since. */
async function parseFilters(specs: readonly string[], images: readonly StoredImage[], resolve: (ref: string) => Promise<string>): Promise<Filter[]> {
  const out: Filter[] = [];
  for (const spec of specs) out.push(await parseFilter(spec, images, resolve));
  return out;
}

async function parseFilter(spec: string, images: readonly StoredImage[], resolve: (ref: string) => Promise<string>): Promise<Filter> {
  const eq = spec.indexOf('=');
  const key = eq < 0 ? spec : spec.slice(0, eq);
  const value = eq < 0 ? '' : spec.slice(eq + 1);
  switch (key) {
    case 'dangling':
      if (value !== 'true' && value !== 'false') throw new UsageError(`--filter dangling=${value}: true or false`);
      return (img) => (img.tags.length === 0) === (value === 'true');
    case 'reference':
      return (_img, tag) => tag !== undefined && (globMatch(value, tag) || globMatch(value, splitTag(tag).repository));
    case 'label': {
      const [k, v] = value.split(/=(.*)/s) as [string, string | undefined];
      return (img) => {
        const labels = img.config.config.Labels ?? {};
        return k in labels && (v === undefined || labels[k] === v);
      };
    }
    case 'before':
    case 'since': {
      const id = await resolve(value).catch(() => undefined);
      const ref = images.find((i) => i.id === id);
      if (!ref) throw new UsageError(`--filter ${spec}: no such image`);
      const t = ref.config.created ?? '';
      return (img) => (key === 'before' ? (img.config.created ?? '') < t : (img.config.created ?? '') > t);
    }
    default:
      throw new UsageError(`--filter ${spec}: unknown filter (dangling, reference, label, before, since)`);
  }
}

export const imagesCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.images,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('format', { type: 'string', choices: ['table', 'json'], default: 'table' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'only image IDs' })
      .option('filter', { type: 'string', describe: 'dangling=true|false, reference=PATTERN, label=K[=V], before=IMAGE, since=IMAGE (repeatable)' })
      .option('digests', { type: 'boolean', default: false, describe: 'show the repository digests' }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const images = (await store.listImages()).sort((a, b) => (b.config.created ?? '').localeCompare(a.config.created ?? ''));
    const indexes = await store.listIndexes();
    // the platform images of a tagged multi-platform image are listed as it, not as dangling images
    const inIndex = new Set(indexes.filter((i) => i.tags.length > 0).flatMap((i) => i.images.map((m) => m.id)));
    const filters = await parseFilters(asArray(argv.filter), images, (ref) => store.resolve(ref));
    const sizes = await layerContentSizes(store, images.flatMap((i) => i.config.rootfs.diff_ids));
    interface Row {
      repository: string;
      tag: string;
      full: string | undefined;
      img: StoredImage;
      id: string;
      created: string | undefined;
      size: number;
      platforms: string[];
      repoDigests: string[];
    }
    const platformOf = (i: StoredImage): string => formatPlatform(configPlatform(i.config));
    const named = (t: string | undefined): Pick<Row, 'repository' | 'tag' | 'full'> => ({ ...(t ? splitTag(t) : { repository: '<none>', tag: '<none>' }), full: t });
    const rows: Row[] = [
      ...images
        .filter((img) => img.tags.length > 0 || !inIndex.has(img.id))
        .flatMap((img) => (img.tags.length ? img.tags : [undefined]).map((t) => ({ ...named(t), img, id: img.id, created: img.config.created, size: imageSize(img, sizes), platforms: [platformOf(img)], repoDigests: img.repoDigests }))),
      ...indexes.flatMap((ix) =>
        ix.tags.map((t) => ({
          ...named(t),
          img: ix.images[0] as StoredImage,
          id: ix.digest,
          created: ix.images.map((i) => i.config.created ?? '').sort().pop(),
          size: ix.images.reduce((n, i) => n + imageSize(i, sizes), 0),
          platforms: ix.images.map(platformOf),
          repoDigests: [],
        })),
      ),
    ]
      .filter((r) => filters.every((f) => f(r.img, r.full)))
      .sort((a, b) => (b.created ?? '').localeCompare(a.created ?? ''));
    if (argv.quiet) {
      // one line per row, as docker images -q (an image with two tags shows twice)
      if (rows.length) print(rows.map((r) => shortId(r.id as Digest)).join('\n'));
      return;
    }
    const digestOf = (r: Row): string => r.repoDigests.find((d) => d.startsWith(`${r.repository}@`))?.split('@')[1] ?? '<none>';
    if (argv.format === 'json') {
      printJson(rows.map((r) => ({ Repository: r.repository, Tag: r.tag, Id: r.id, Created: r.created ?? null, Size: r.size, Platforms: r.platforms, ...(argv.digests ? { Digest: digestOf(r) } : {}) })));
      return;
    }
    // a PLATFORMS column once the store holds a multi-platform image
    const showPlatforms = indexes.length > 0;
    print(
      formatTable(
        ['REPOSITORY', 'TAG', ...(argv.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE', ...(showPlatforms ? ['PLATFORMS'] : [])],
        rows.map((r) => [r.repository, r.tag, ...(argv.digests ? [digestOf(r)] : []), shortId(r.id as Digest), humanAgo(r.created), humanSize(r.size), ...(showPlatforms ? [r.platforms.join(',')] : [])]),
      ),
    );
  },
};
