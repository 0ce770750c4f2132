import type { Argv, CommandModule } from 'yargs';
import { BuildRecords } from '../../cache/records.js';
import { cacheReportText } from '../../report/build-report.js';
import { type GlobalArgs, openStore, print } from '../common.js';

interface ReportArgs extends GlobalArgs {
  last: number;
}

const reportCommand: CommandModule<GlobalArgs, ReportArgs> = {
  command: 'report',
  describe: "Recent builds' cache hit ratios and the steps that miss most",
  builder: (y: Argv<GlobalArgs>) => y.option('last', { type: 'number', default: 10, describe: 'how many recent builds' }) as Argv<ReportArgs>,
  handler: async (argv) => {
    const store = await openStore(argv);
    print(cacheReportText(await new BuildRecords(store.root).history(), Math.max(1, argv.last)));
  },
};

export const cacheCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'cache <command>',
  describe: 'Build cache reports',
  builder: (y) => y.command(reportCommand).demandCommand(1),
  handler: () => undefined,
};
