import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { readLayerEntries } from '../../analyze/layers.js';
import { type CiLimits, DEFAULT_LIMITS, parseDiveCi, ratio } from '../../analyze/dive-ci.js';
import { type AnalyzeResult, analyzeLayers, analyzeText, ciFailures } from '../../analyze/report.js';
import { parseSize } from '../../analyze/size.js';
import { LbuildError, NotFoundError, UsageError } from '../../errors.js';
import { loadArchive } from '../../image/transfer.js';
import { pullImage } from '../../registry/transfer.js';
import { loadBuildInfo } from '../../store/buildinfo.js';
import { Store } from '../../store/store.js';
import { tempName } from '../../util/fsx.js';
import { type GlobalArgs, asArray, openStore, print, printJson } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';
import { withSignalCleanup } from '../signals.js';

interface Args extends GlobalArgs {
  image: string;
  format: string;
  files?: boolean;
  ci?: boolean;
  'ci-config'?: string;
  'lowest-efficiency'?: number;
  'highest-wasted-bytes'?: string;
  'highest-user-wasted-percent'?: number;
  'insecure-registry'?: string[];
}

/** Where the image comes from: the store, an archive file, or a registry. */
type Source = { kind: 'store'; ref: string } | { kind: 'archive'; file: string } | { kind: 'registry'; ref: string };

const PREFIXES: [RegExp, Source['kind']][] = [
  [/^(?:docker-archive|oci-archive|archive):/, 'archive'],
  [/^(?:docker|registry):\/\//, 'registry'],
];

/**
 * `docker-archive:FILE` / `oci-archive:FILE` and `docker://REF` say it; otherwise the store's
 * image, then a file of that name, then a reference naming a registry host.
 */
async function sourceOf(store: Store, arg: string): Promise<Source> {
  for (const [re, kind] of PREFIXES) {
    if (re.test(arg)) return kind === 'archive' ? { kind, file: arg.replace(re, '') } : { kind: 'registry', ref: arg.replace(re, '') };
  }
  const inStore = await store.resolve(arg).then(() => true, (e: unknown) => {
    if (e instanceof NotFoundError) return false;
    throw e;
  });
  if (inStore) return { kind: 'store', ref: arg };
  if (existsSync(arg)) return { kind: 'archive', file: arg };
  const first = arg.split('/')[0] ?? '';
  if (arg.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return { kind: 'registry', ref: arg };
  throw new LbuildError(`image ${arg}: not in the store, and no such file (a registry image: docker://REF)`);
}

async function analyzeStored(store: Store, ref: string, name?: string): Promise<AnalyzeResult> {
  const img = await store.getImage(ref);
  const layers = [];
  for (const d of img.config.rootfs.diff_ids) layers.push(await readLayerEntries(store.content.open(d)));
  return analyzeLayers(img, layers, await loadBuildInfo(store.root, img.id), name);
}

/** An archive or a registry image is read into a throwaway store beside the real one, verified as load and pull verify. */
async function analyzeOutside(store: Store, src: Exclude<Source, { kind: 'store' }>, insecure: string[]): Promise<AnalyzeResult> {
  const dir = path.join(store.tmpDir, tempName('analyze'));
  return withSignalCleanup(store.tmpDir, 'the analysis', async () => {
    try {
      const scratch = await Store.open(dir);
      if (src.kind === 'registry') {
        const img = await pullImage(scratch, src.ref, { insecure });
        return await analyzeStored(scratch, img.id, src.ref);
      }
      const images = await loadArchive(scratch, src.file);
      const [img, ...more] = images;
      if (!img) throw new LbuildError(`${src.file}: the archive holds no image`);
      if (more.length) throw new UsageError(`${src.file} holds ${images.length} images (${images.map((i) => i.tags[0] ?? i.id.slice(7, 19)).join(', ')}): load it and analyze one by name`);
      return await analyzeStored(scratch, img.id, img.tags[0] ?? src.file);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
}

/** --ci's limits: dive's defaults, then the .dive-ci file (if any), then the flags. */
async function ciLimits(argv: Args): Promise<CiLimits> {
  const file = argv['ci-config'] ?? '.dive-ci';
  let fromFile: Partial<CiLimits> = {};
  const text = await fsp.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' && argv['ci-config'] === undefined) return undefined;
    throw new UsageError(`--ci-config ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  if (text !== undefined) fromFile = parseDiveCi(text, file);
  const flags: Partial<CiLimits> = {
    ...(argv['lowest-efficiency'] !== undefined ? { lowestEfficiency: ratio(argv['lowest-efficiency'], '--lowest-efficiency') } : {}),
    ...(argv['highest-wasted-bytes'] !== undefined ? { highestWastedBytes: parseSize(argv['highest-wasted-bytes']) } : {}),
    ...(argv['highest-user-wasted-percent'] !== undefined ? { highestUserWastedPercent: ratio(argv['highest-user-wasted-percent'], '--highest-user-wasted-percent') } : {}),
  };
  return { ...DEFAULT_LIMITS, ...fromFile, ...flags };
}

export const analyzeCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.analyze,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'an image of the store, an archive file (docker-archive:FILE, oci-archive:FILE) or a registry image (docker://REF)' })
      .option('format', { type: 'string', choices: ['table', 'json'], default: 'table' })
      .option('files', { type: 'boolean', default: false, describe: 'list every wasted file, not only the causes' })
      .option('ci', { type: 'boolean', default: false, describe: 'exit 1 when a limit is crossed (dive\'s defaults: efficiency 0.9, user wasted share 0.1; .dive-ci and the flags below set them)' })
      .option('ci-config', { type: 'string', describe: 'dive\'s CI rules file (default: .dive-ci, when present)' })
      .option('lowest-efficiency', { type: 'number', describe: 'e.g. 0.95' })
      .option('highest-wasted-bytes', { type: 'string', describe: 'e.g. 20MB, 1GiB' })
      .option('highest-user-wasted-percent', { type: 'number', describe: 'e.g. 0.20' })
      .option('insecure-registry', { type: 'string', describe: 'host[:port] reached over plain HTTP (repeatable)' }) as unknown as Argv<Args>,
  handler: async (argv) => {
    // the limits first: a bad .dive-ci fails before any work
    const limits = argv.ci ? await ciLimits(argv) : undefined;
    const store = await openStore(argv);
    const src = await sourceOf(store, argv.image);
    const result = src.kind === 'store' ? await analyzeStored(store, src.ref) : await analyzeOutside(store, src, asArray(argv['insecure-registry']));
    if (argv.format === 'json') printJson(result);
    else print(analyzeText(result, { files: argv.files === true }));
    if (limits) {
      const failures = ciFailures(result, limits);
      if (failures.length) throw new LbuildError(`analyze --ci: ${failures.join('; ')}`);
    }
  },
};
