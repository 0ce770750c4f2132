import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../errors.js';
import { imageSize } from '../../image/views.js';
import { shortId } from '../../oci/digest.js';
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
    const filters = await parseFilters(asArray(argv.filter), images, (ref) => store.resolve(ref));
    const rows = images
      .flatMap((img) => (img.tags.length ? img.tags : [undefined]).map((t) => ({ ...(t ? splitTag(t) : { repository: '<none>', tag: '<none>' }), full: t, img })))
      .filter((r) => filters.every((f) => f(r.img, r.full)));
    if (argv.quiet) {
      // one line per row, as docker images -q (an image with two tags shows twice)
      if (rows.length) print(rows.map((r) => shortId(r.img.id)).join('\n'));
      return;
    }
    const sizes = await layerContentSizes(store, images.flatMap((i) => i.config.rootfs.diff_ids));
    const digestOf = (r: (typeof rows)[number]): string => r.img.repoDigests.find((d) => d.startsWith(`${r.repository}@`))?.split('@')[1] ?? '<none>';
    if (argv.format === 'json') {
      printJson(rows.map((r) => ({ Repository: r.repository, Tag: r.tag, Id: r.img.id, Created: r.img.config.created ?? null, Size: imageSize(r.img, sizes), ...(argv.digests ? { Digest: digestOf(r) } : {}) })));
      return;
    }
    print(
      formatTable(
        ['REPOSITORY', 'TAG', ...(argv.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'],
        rows.map((r) => [r.repository, r.tag, ...(argv.digests ? [digestOf(r)] : []), shortId(r.img.id), humanAgo(r.img.config.created), humanSize(imageSize(r.img, sizes))]),
      ),
    );
  },
};
