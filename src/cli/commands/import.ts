import type { Argv, CommandModule } from 'yargs';
import { importRootfs } from '../../image/import.js';
import { type GlobalArgs, asArray, openStore, print } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  file: string;
  name?: string;
  change?: string[];
}

export const importCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.import,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('file', { type: 'string', demandOption: true })
      .positional('name', { type: 'string' })
      .option('change', { alias: 'c', type: 'string', describe: 'Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, …)' }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const img = await importRootfs(store, argv.file, argv.name ? [argv.name] : [], asArray(argv.change));
    print(img.id);
  },
};
