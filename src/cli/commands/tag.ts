import type { Argv, CommandModule } from 'yargs';
import { type GlobalArgs, openStore } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  source: string;
  target: string;
}

export const tagCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.tag,
  builder: (y: Argv<GlobalArgs>) =>
    y.positional('source', { type: 'string', demandOption: true }).positional('target', { type: 'string', demandOption: true }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    await store.tag(argv.source, argv.target);
  },
};
