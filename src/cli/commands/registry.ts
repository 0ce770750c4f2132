import type { Argv, CommandModule } from 'yargs';
import { parsePlatform } from '../../oci/platform.js';
import { pullImage, pushImage } from '../../registry/transfer.js';
import { type GlobalArgs, asArray, openStore, print } from '../common.js';
import { withSignalCleanup } from '../signals.js';
import { COMMAND_TEXT } from '../command-list.js';

interface PullArgs extends GlobalArgs {
  ref: string;
  'insecure-registry'?: string[];
  platform?: string;
}

interface PushArgs extends GlobalArgs {
  image: string;
  ref?: string;
  'insecure-registry'?: string[];
  'gzip-level': number;
}

const log = (l: string): void => {
  process.stderr.write(`${l}\n`);
};

export const pullCommand: CommandModule<GlobalArgs, PullArgs> = {
  ...COMMAND_TEXT.pull,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('ref', { type: 'string', demandOption: true })
      .option('insecure-registry', { type: 'string', describe: 'host[:port] reached over plain HTTP (repeatable)' })
      .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] to take from a multi-platform image (default this host\'s)' }) as Argv<PullArgs>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const platform = argv.platform !== undefined ? parsePlatform(argv.platform) : undefined;
    const img = await withSignalCleanup(store.tmpDir, 'the pull', () => pullImage(store, argv.ref, { insecure: asArray(argv['insecure-registry']), log, ...(platform ? { platform } : {}) }));
    print(img.id);
  },
};

export const pushCommand: CommandModule<GlobalArgs, PushArgs> = {
  ...COMMAND_TEXT.push,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true })
      .positional('ref', { type: 'string' })
      .option('insecure-registry', { type: 'string' })
      .option('gzip-level', { type: 'number', default: 6 }) as Argv<PushArgs>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const r = await withSignalCleanup(store.tmpDir, 'the push', () => pushImage(store, argv.image, argv.ref, { insecure: asArray(argv['insecure-registry']), log, gzipLevel: argv['gzip-level'] }));
    print(r.digest);
  },
};
