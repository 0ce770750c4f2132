import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../errors.js';
import { tempName } from '../../util/fsx.js';
import { loadArchive } from '../../image/transfer.js';
import { type GlobalArgs, openStore, print } from '../common.js';
import { withSignalCleanup } from '../signals.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  input?: string;
}

/** Standard input spooled to a temp file of the store (an archive is read more than once). */
async function spoolStdin(tmpDir: string): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('no archive on standard input: give -i FILE or pipe one in (docker save x | lbuild load)');
  const file = path.join(tmpDir, tempName('stdin'));
  await pipeline(process.stdin, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
  if ((await fsp.stat(file)).size === 0) {
    await fsp.rm(file, { force: true });
    throw new UsageError('standard input is empty: no archive to load');
  }
  return file;
}

export const loadCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.load,
  builder: (y: Argv<GlobalArgs>) => y.option('input', { alias: 'i', type: 'string', describe: 'archive to read (default, or -: standard input)' }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const loaded = await withSignalCleanup(store.tmpDir, 'the load', async () => {
      if (argv.input !== undefined && argv.input !== '-') return loadArchive(store, argv.input);
      const file = await spoolStdin(store.tmpDir);
      try {
        return await loadArchive(store, file, 'standard input');
      } finally {
        await fsp.rm(file, { force: true });
      }
    });
    for (const img of loaded) {
      if (img.tags.length) for (const t of img.tags) print(`Loaded image: ${t}`);
      else print(`Loaded image ID: ${img.id}`);
    }
  },
};
