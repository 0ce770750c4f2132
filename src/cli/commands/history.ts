import type { Argv, CommandModule } from 'yargs';
import { historyRows } from '../../image/views.js';
import { layerContentSizes } from '../../store/layer-size.js';
import { shortId } from '../../oci/digest.js';
import { humanAgo, humanSize } from '../../util/fsx.js';
import { type GlobalArgs, openStore, print, printJson } from '../common.js';
import { formatTable } from '../table.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  image: string;
  format?: string;
  trunc?: boolean;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export const historyCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.history,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true })
      .option('format', { type: 'string', choices: ['table', 'json'], default: 'table' })
      .option('trunc', { type: 'boolean', default: true, describe: 'truncate CREATED BY (--no-trunc for the full text)' }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const img = await store.getImage(argv.image);
    const rows = historyRows(img, await layerContentSizes(store, img.config.rootfs.diff_ids));
    if (argv.format === 'json') {
      printJson(rows);
      return;
    }
    print(
      formatTable(
        ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
        rows.map((r) => [
          r.id ? shortId(r.id as `sha256:${string}`) : '<missing>',
          humanAgo(r.created ?? undefined),
          argv.trunc ? truncate(r.createdBy.replace(/\s+/g, ' '), 45) : r.createdBy,
          humanSize(r.size),
          r.comment,
        ]),
      ),
    );
  },
};
