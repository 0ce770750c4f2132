import { taggedImages } from '../../store/images.js';
import { createInterface } from 'node:readline';
import type { Argv, CommandModule } from 'yargs';
import { parseSize } from '../../analyze/size.js';
import { dirSize } from '../../analyze/df.js';
import { LbuildError } from '../../errors.js';
import { CacheIndex } from '../../store/cache.js';
import { fsck } from '../../store/fsck.js';
import { pruneBuildState } from '../../store/sweep.js';
import { humanSize } from '../../util/fsx.js';
import { type GlobalArgs, openStore, print } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface FsckArgs extends GlobalArgs {
  repair?: boolean;
}

export const fsckCommand: CommandModule<GlobalArgs, FsckArgs> = {
  ...COMMAND_TEXT.fsck,
  builder: (y: Argv<GlobalArgs>) => y.option('repair', { type: 'boolean', default: false }) as Argv<FsckArgs>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const problems = await fsck(store, argv.repair === true);
    for (const p of problems) print(`${p.repaired ? 'repaired' : 'problem'}: ${p.what}`);
    const open = problems.filter((p) => !p.repaired);
    if (open.length) throw new LbuildError(`fsck: ${open.length} problem(s) found (run lbuild fsck --repair)`);
    print(problems.length ? `fsck: ${problems.length} problem(s) repaired` : 'fsck: the store is consistent');
  },
};

/** As docker's prune: ask on stderr, read one line from stdin; anything but y/yes (or no answer) is no. */
async function confirm(question: string): Promise<boolean> {
  process.stderr.write(question);
  const rl = createInterface({ input: process.stdin });
  const answer = await new Promise<string>((resolve) => {
    rl.once('line', resolve);
    rl.once('close', () => resolve(''));
  });
  rl.close();
  if (!process.stdin.isTTY) process.stderr.write('\n');
  return /^\s*y(es)?\s*$/i.test(answer);
}

interface PruneArgs extends GlobalArgs {
  all?: boolean;
  force?: boolean;
  'keep-storage'?: string;
}

export const pruneCommand: CommandModule<GlobalArgs, PruneArgs> = {
  ...COMMAND_TEXT.prune,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('all', { alias: 'a', type: 'boolean', default: false })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'do not ask before removing' })
      .option('keep-storage', { type: 'string', describe: 'keep at most this much (e.g. 10GB)' }) as Argv<PruneArgs>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const what = argv.all ? 'dangling images, unused layers and all build cache' : 'dangling images, unused layers and stale build cache';
    if (!argv.force && !(await confirm(`WARNING! This will remove ${what}.\nAre you sure you want to continue? [y/N] `))) {
      process.stderr.write('nothing was removed (answer y, or give -f)\n');
      return;
    }
    const dangling = await store.images.update((idx) => {
      // a multi-platform image no tag names is dangling too (a rebuild moved its name)
      const named = new Set<string>(Object.values(idx.tags));
      const goneIndexes = Object.keys(idx.indexes ?? {}).filter((d) => !named.has(d));
      for (const d of goneIndexes) delete idx.indexes?.[d];
      const tagged = taggedImages(idx);
      const gone = Object.keys(idx.images).filter((id) => !tagged.has(id as `sha256:${string}`));
      for (const id of gone) delete idx.images[id];
      return [...goneIndexes, ...gone];
    });
    const cache = new CacheIndex(store.root);
    let records = await cache.list();
    let removedRecords = 0;
    for (const r of records) {
      if (argv.all || !(await store.content.has(r.diffId))) {
        await cache.remove(r.key);
        removedRecords++;
      }
    }
    let gc = await store.collectGarbage();
    if (argv['keep-storage'] !== undefined) {
      // one size walk and one collection, whatever the number of records: removing a record frees
      // its layer's bytes once no other record and no image needs that layer
      const limit = parseSize(argv['keep-storage']);
      let used = dirSize(store.root);
      records = (await cache.list()).sort((a, b) => a.lastUsed.localeCompare(b.lastUsed));
      const pinned = await store.pinnedLayers();
      const refs = new Map<string, number>();
      for (const r of records) refs.set(r.diffId, (refs.get(r.diffId) ?? 0) + 1);
      for (const r of records) {
        if (used <= limit) break;
        await cache.remove(r.key);
        removedRecords++;
        const left = (refs.get(r.diffId) ?? 1) - 1;
        refs.set(r.diffId, left);
        if (left === 0 && !pinned.has(r.diffId)) used -= await store.layerBytes(r.diffId);
      }
      const more = await store.collectGarbage();
      gc = { blobs: gc.blobs + more.blobs, snapshots: gc.snapshots + more.snapshots, bytes: gc.bytes + more.bytes };
    }
    const logs = await pruneBuildState(store.root, argv.all === true);
    for (const id of dangling) print(`deleted image: ${id}`);
    print(`deleted ${dangling.length} dangling image(s), ${removedRecords} cache record(s), ${gc.blobs} blob(s), ${gc.snapshots} layer snapshot(s), ${logs} build log and cache-mount entr${logs === 1 ? 'y' : 'ies'}`);
    print(`Total reclaimed space: ${humanSize(gc.bytes)}`);
  },
};
