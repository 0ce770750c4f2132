import type { Argv, CommandModule } from 'yargs';
import { loadArchive } from '../../image/transfer.js';
import { type GlobalArgs, openStore, print } from '../common.js';
import { withSignalCleanup } from '../signals.js';

interface Args extends GlobalArgs {
  input: string;
}

export const loadCommand: CommandModule<GlobalArgs, Args> = {
  command: 'load',
  describe: 'Load images from a docker-archive or OCI layout tar (every digest verified)',
  builder: (y: Argv<GlobalArgs>) => y.option('input', { alias: 'i', type: 'string', demandOption: true }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    for (const img of await withSignalCleanup(store.tmpDir, 'the load', () => loadArchive(store, argv.input))) {
      if (img.tags.length) for (const t of img.tags) print(`Loaded image: ${t}`);
      else print(`Loaded image ID: ${img.id}`);
    }
  },
};
