import type { Argv, CommandModule } from 'yargs';
import { BuildRecords } from '../../cache/records.js';
import { cacheReportJson, cacheReportText } from '../../report/build-report.js';
import { type GlobalArgs, openStore, print, printJson } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface ReportArgs extends GlobalArgs {
  last: number;
  format: 'text' | 'json';
}

const reportCommand: CommandModule<GlobalArgs, ReportArgs> = {
  command: 'report',
  describe: "Recent builds' cache hit ratios and the steps that miss most",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('last', { type: 'number', default: 10, describe: 'how many recent builds' })
      .option('format', { type: 'string', choices: ['text', 'json'] as const, default: 'text' as const }) as Argv<ReportArgs>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const history = await new BuildRecords(store.root).history();
    if (argv.format === 'json') printJson(cacheReportJson(history, Math.max(1, argv.last)));
    else print(cacheReportText(history, Math.max(1, argv.last)));
  },
};

export const cacheCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  ...COMMAND_TEXT.cache,
  builder: (y) => y.command(reportCommand).demandCommand(1),
  handler: () => undefined,
};
