import type { Argv, CommandModule } from 'yargs';
import { imageSize } from '../../image/views.js';
import { layerContentSizes } from '../../store/layer-size.js';
import { shortId } from '../../oci/digest.js';
import { splitTag } from '../../oci/reference.js';
import { humanAgo, humanSize } from '../../util/fsx.js';
import { type GlobalArgs, openStore, print, printJson } from '../common.js';
import { formatTable } from '../table.js';

interface Args extends GlobalArgs {
  format?: string;
}

export const imagesCommand: CommandModule<GlobalArgs, Args> = {
  command: 'images',
  describe: 'List images',
  builder: (y: Argv<GlobalArgs>) => y.option('format', { type: 'string', choices: ['table', 'json'], default: 'table' }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const images = (await store.listImages()).sort((a, b) => (b.config.created ?? '').localeCompare(a.config.created ?? ''));
    const sizes = await layerContentSizes(store, images.flatMap((i) => i.config.rootfs.diff_ids));
    const rows = images.flatMap((img) => {
      const tags = img.tags.length ? img.tags : ['<none>:<none>'];
      return tags.map((t) => ({ ...splitTag(t), img }));
    });
    if (argv.format === 'json') {
      printJson(rows.map((r) => ({ Repository: r.repository, Tag: r.tag, Id: r.img.id, Created: r.img.config.created ?? null, Size: imageSize(r.img, sizes) })));
      return;
    }
    print(
      formatTable(
        ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
        rows.map((r) => [r.repository, r.tag, shortId(r.img.id), humanAgo(r.img.config.created), humanSize(imageSize(r.img, sizes))]),
      ),
    );
  },
};
