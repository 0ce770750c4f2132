import type { Argv, CommandModule } from 'yargs';
import { readLayerEntries } from '../../analyze/layers.js';
import { analyzeLayers, analyzeText, ciFailures, parseSize } from '../../analyze/report.js';
import { LbuildError, UsageError } from '../../errors.js';
import { loadBuildInfo } from '../../store/buildinfo.js';
import { type GlobalArgs, openStore, print, printJson } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  image: string;
  format: string;
  ci?: boolean;
  'lowest-efficiency'?: number;
  'highest-wasted-bytes'?: string;
  'highest-user-wasted-percent'?: number;
}

function fraction(v: number | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  // accept 0.2 or 20 (percent)
  const f = v > 1 ? v / 100 : v;
  if (!(f >= 0 && f <= 1)) throw new UsageError(`${flag} must be between 0 and 1 (or a percentage)`);
  return f;
}

export const analyzeCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.analyze,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true })
      .option('format', { type: 'string', choices: ['table', 'json'], default: 'table' })
      .option('ci', { type: 'boolean', default: false, describe: 'exit 1 when a limit below is crossed' })
      .option('lowest-efficiency', { type: 'number', describe: 'e.g. 0.95' })
      .option('highest-wasted-bytes', { type: 'string', describe: 'e.g. 20MB, 1GiB' })
      .option('highest-user-wasted-percent', { type: 'number', describe: 'e.g. 0.20' }) as unknown as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const img = await store.getImage(argv.image);
    const layers = [];
    for (const d of img.config.rootfs.diff_ids) layers.push(await readLayerEntries(store.content.open(d)));
    const result = analyzeLayers(img, layers, await loadBuildInfo(store.root, img.id));
    if (argv.format === 'json') printJson(result);
    else print(analyzeText(result));
    if (argv.ci) {
      const limits = {
        ...(argv['lowest-efficiency'] !== undefined ? { lowestEfficiency: fraction(argv['lowest-efficiency'], '--lowest-efficiency') as number } : {}),
        ...(argv['highest-wasted-bytes'] !== undefined ? { highestWastedBytes: parseSize(argv['highest-wasted-bytes']) } : {}),
        ...(argv['highest-user-wasted-percent'] !== undefined
          ? { highestUserWastedPercent: fraction(argv['highest-user-wasted-percent'], '--highest-user-wasted-percent') as number }
          : {}),
      };
      const failures = ciFailures(result, limits);
      if (failures.length) throw new LbuildError(`analyze --ci: ${failures.join('; ')}`);
    }
  },
};
