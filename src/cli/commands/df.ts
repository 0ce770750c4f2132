import type { Argv, CommandModule } from 'yargs';
import { diskUsage } from '../../analyze/df.js';
import { shortId } from '../../oci/digest.js';
import { splitTag } from '../../oci/reference.js';
import { CacheIndex } from '../../store/cache.js';
import { humanAgo, humanSize } from '../../util/fsx.js';
import { type GlobalArgs, openStore, print, printJson } from '../common.js';
import { formatTable } from '../table.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  verbose?: boolean;
  format: string;
}

export const dfCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.df,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('verbose', { alias: 'v', type: 'boolean', default: false })
      .option('format', { type: 'string', choices: ['table', 'json'], default: 'table' }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const du = await diskUsage(store, await new CacheIndex(store.root).list());
    if (argv.format === 'json') {
      printJson({
        images: du.images.map((r) => ({ id: r.image.id, tags: r.image.tags, size: r.size, sharedSize: r.shared, uniqueSize: r.unique })),
        imagesSize: du.imagesTotal,
        imagesReclaimable: du.imagesReclaimable,
        layers: du.layers,
        buildCache: du.cache,
      });
      return;
    }
    const active = du.images.filter((r) => r.image.tags.length > 0).length;
    print(
      formatTable(
        ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
        [
          ['Images', String(du.images.length), String(active), humanSize(du.imagesTotal), humanSize(du.imagesReclaimable)],
          ['Layers', String(du.layers.count), String(du.layers.count), humanSize(du.layers.size), ''],
          ['Build Cache', String(du.cache.records), '0', humanSize(du.cache.size), humanSize(du.cache.reclaimable)],
        ],
      ),
    );
    if (!argv.verbose) return;
    print('\nImages space usage:\n');
    const rows = du.images.flatMap((r) => (r.image.tags.length ? r.image.tags : ['<none>:<none>']).map((t) => ({ ...splitTag(t), r })));
    print(
      formatTable(
        ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE'],
        rows.map(({ repository, tag, r }) => [repository, tag, shortId(r.image.id), humanAgo(r.image.config.created), humanSize(r.size), humanSize(r.shared), humanSize(r.unique)]),
      ),
    );
  },
};
