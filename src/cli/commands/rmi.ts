import type { Argv, CommandModule } from 'yargs';
import { type GlobalArgs, asArray, openStore, print } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  images: string[];
  force?: boolean;
}

export const rmiCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.rmi,
  builder: (y: Argv<GlobalArgs>) =>
    y.positional('images', { type: 'string', array: true, demandOption: true }).option('force', { alias: 'f', type: 'boolean', default: false }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    for (const r of asArray(argv.images)) {
      const res = await store.removeImage(r, argv.force);
      for (const t of res.untagged) print(`Untagged: ${t}`);
      for (const d of res.deleted) print(`Deleted: ${d}`);
    }
  },
};
