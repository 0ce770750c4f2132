import type { Argv, CommandModule } from 'yargs';
import { saveImages } from '../../image/transfer.js';
import { UsageError } from '../../errors.js';
import { type GlobalArgs, asArray, openStore } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  images: string[];
  output?: string;
  format: 'docker' | 'oci';
}

export const saveCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.save,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('images', { type: 'string', array: true, demandOption: true })
      .option('output', { alias: 'o', type: 'string', describe: 'archive file to write (default, or -: standard output)' })
      .option('format', { type: 'string', choices: ['docker', 'oci'] as const, default: 'docker' as const }) as Argv<Args>,
  handler: async (argv) => {
    const out = argv.output ?? '-';
    // as docker save: an archive is not for a terminal
    if (out === '-' && process.stdout.isTTY) throw new UsageError('refusing to write an archive to a terminal: give -o FILE or redirect the output');
    const store = await openStore(argv);
    await saveImages(store, asArray(argv.images), out, argv.format);
  },
};
