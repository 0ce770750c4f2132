import { promises as fsp } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { renderHtml } from '../../report/html.js';
import { layerRows } from '../../report/layers.js';
import { loadReport } from '../../report/store.js';
import { type GlobalArgs, openStore, print } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface HtmlArgs extends GlobalArgs {
  id?: string;
  last?: boolean;
  output: string;
}

const htmlCommand: CommandModule<GlobalArgs, HtmlArgs> = {
  command: 'html [id]',
  describe: 'Write a recorded build as one self-contained HTML file (--last: the latest build)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('id', { type: 'string', describe: 'build ID (see cache/reports); default the latest' })
      .option('last', { type: 'boolean', default: false })
      .option('output', { alias: 'o', type: 'string', demandOption: true }) as Argv<HtmlArgs>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const r = await loadReport(store.root, argv.last ? undefined : argv.id);
    const img = r.report.image.id ? await store.getImage(r.report.image.id).catch(() => undefined) : undefined;
    const layers = img ? await layerRows(store, img) : undefined;
    await fsp.writeFile(argv.output, renderHtml(r.report, layers, r.report.image.tags[0] ?? r.dockerfile));
    print(`wrote ${argv.output} (build ${r.id})`);
  },
};

export const reportCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  ...COMMAND_TEXT.report,
  builder: (y) => y.command(htmlCommand).demandCommand(1),
  handler: () => undefined,
};
