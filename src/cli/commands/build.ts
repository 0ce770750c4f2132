import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { readDockerfileText } from '../../dockerfile/read.js';
import { applyLayer } from '../../snapshot/apply.js';
import { decompress, sniffCompression } from '../../util/decompress.js';
import type { Argv, CommandModule } from 'yargs';
import { parseDockerfile } from '../../dockerfile/parse.js';
import { type BuildPlan, planBuild, renderPlan } from '../../dockerfile/plan.js';
import { UsageError, errorMessage } from '../../errors.js';
import { Builder, type BuildResult, type NamedContext, type StepRecord } from '../../builder/builder.js';
import { chooseMode, jsonProgress, plainProgress } from '../../report/progress.js';
import { type BuildReport, buildReport, historyLine, reportMarkdown } from '../../report/build-report.js';
import { renderHtml } from '../../report/html.js';
import { layerRows } from '../../report/layers.js';
import { newBuildId, saveReport } from '../../report/store.js';
import { exportCache, importCache, parseCacheSpec } from '../../cache/remote.js';
import { parseSecret } from '../../builder/mounts.js';
import { parseSsh } from '../../builder/ssh-agent.js';
import type { StoredImage, StoredIndex } from '../../store/store.js';
import { BuildRecords } from '../../cache/records.js';
import { type Stage, stageLabel } from '../../dockerfile/plan.js';
import { installSignalCleanup } from '../signals.js';
import { type GlobalArgs, asArray, openStore, parseAddHosts, parsePairs, print, readStdin } from '../common.js';
import { normalizeTag, parseReference } from '../../oci/reference.js';
import { type Platform, configPlatform, formatPlatform, parsePlatforms } from '../../oci/platform.js';
import { type Delivered, checkMultiOutputs, deliverIndexOutputs, deliverOutputs, parseOutputs } from '../../image/outputs.js';
import { COMMAND_TEXT } from '../command-list.js';

export interface BuildArgs extends GlobalArgs {
  context: string;
  tag?: string[];
  file?: string;
  'build-arg'?: string[];
  target?: string;
  platform?: string;
  cache: boolean;
  'nocache-filter'?: string[];
  progress: string;
  report?: string;
  'report-html'?: string;
  iidfile?: string;
  'cache-from'?: string[];
  'cache-to'?: string | string[];
  label?: string[];
  network: string;
  'add-host'?: string[];
  'build-context'?: string[];
  ssh?: string[];
  'print-plan'?: boolean;
  'context-stdin'?: boolean;
  'pull-never'?: boolean;
  quiet?: boolean;
  output?: string[];
  push?: boolean;
  load?: boolean;
  'metadata-file'?: string;
  pull?: boolean;
  'insecure-registry'?: string[];
  secret?: string[];
  allow?: string[];
}

export function buildOptions(y: Argv<GlobalArgs>): Argv<BuildArgs> {
  return y
    .positional('context', { type: 'string', default: '.', describe: 'build context directory' })
    .option('tag', { alias: 't', type: 'string', describe: 'name:tag of the image (repeatable)' })
    .option('file', { alias: 'f', type: 'string', describe: 'Dockerfile (default: CONTEXT/Dockerfile)' })
    .option('build-arg', { type: 'string', describe: 'K=V build argument (repeatable)' })
    .option('target', { type: 'string', describe: 'stage to build' })
    .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] to build for (default this host\'s; env DOCKER_DEFAULT_PLATFORM); RUN of another architecture runs under QEMU' })
    .option('cache', { type: 'boolean', default: true, describe: 'use the layer cache (--no-cache to rebuild every step)' })
    .option('nocache-filter', { type: 'string', describe: 'stages not to take from the cache (given as --no-cache-filter)' })
    .option('progress', { type: 'string', choices: ['auto', 'plain', 'tty', 'json', 'rawjson', 'quiet'], default: 'auto' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress; print only the image ID' })
    .option('output', { alias: 'o', type: 'string', describe: 'DIR, -, or type=local|tar|oci|docker|image|registry,dest=… (repeatable)' })
    .option('push', { type: 'boolean', default: false, describe: 'push the tagged image (as -o type=image,push=true)' })
    .option('load', { type: 'boolean', default: false, describe: 'load the image into dockerd (DOCKER_HOST or /var/run/docker.sock)' })
    .option('metadata-file', { type: 'string', describe: 'write the result\'s digests and names here (JSON)' })
    .option('report', { type: 'string', describe: 'write the build report (JSON) here' })
    .option('report-html', { type: 'string', describe: 'write a self-contained HTML report here' })
    .option('iidfile', { type: 'string', describe: 'write the image ID here' })
    .option('cache-from', { type: 'string' })
    .option('cache-to', { type: 'string' })
    .option('label', { type: 'string', describe: 'K=V label on the image (repeatable)' })
    .option('network', { type: 'string', choices: ['default', 'none', 'host'], default: 'default' })
    .option('add-host', { type: 'string', describe: 'NAME:IP line for /etc/hosts in RUN (repeatable)' })
    .option('ssh', { type: 'string', describe: 'default, ID, or ID=SOCKET|KEY[,KEY]: an SSH agent for RUN --mount=type=ssh (repeatable)' })
    .option('build-context', { type: 'string', describe: 'NAME=DIR or NAME=docker-image://REF: what FROM NAME and COPY --from=NAME take (repeatable)' })
    .option('pull', { type: 'boolean', default: false, describe: 'check the registry for base images even when present (--pull=always|missing|never)' })
    .option('pull-never', { type: 'boolean', hidden: true, describe: '--pull=never (set by the CLI)' })
    .option('insecure-registry', { type: 'string', describe: 'host[:port] reached over plain HTTP (repeatable)' })
    .option('secret', { type: 'string', describe: 'id=X,src=FILE or id=X,env=VAR: a secret for RUN --mount=type=secret (repeatable)' })
    .option('allow', { type: 'string', describe: 'extra privileges: security.insecure lets RUN --security=insecure run unconfined (repeatable)' })
    .option('print-plan', { type: 'boolean', default: false, describe: 'print the build plan and exit' })
    .option('context-stdin', { type: 'boolean', hidden: true, describe: 'a context of "-" (set by the CLI: yargs drops a lone -)' }) as unknown as Argv<BuildArgs>;
}

function allowed(values: readonly string[]): Set<string> {
  const out = new Set(values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== ''));
  for (const v of out) if (v !== 'security.insecure') throw new UsageError(`--allow ${v}: unknown entitlement (security.insecure)`);
  return out;
}

/** --build-context NAME=DIR | NAME=docker-image://REF (other BuildKit sources are refused by name). */
async function parseBuildContexts(specs: readonly string[]): Promise<Map<string, NamedContext>> {
  const out = new Map<string, NamedContext>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = eq > 0 ? spec.slice(0, eq) : '';
    const value = eq > 0 ? spec.slice(eq + 1) : '';
    if (!name || !value) throw new UsageError(`--build-context ${spec}: expected NAME=DIR or NAME=docker-image://REF`);
    if (value.startsWith('docker-image://')) {
      const ref = value.slice('docker-image://'.length);
      parseReference(ref); // a bad reference fails here, before anything runs
      out.set(name, { kind: 'image', ref });
      continue;
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) throw new UsageError(`--build-context ${spec}: only a directory or docker-image:// is supported`);
    const dir = path.resolve(value);
    const st = await fsp.stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new UsageError(`--build-context ${spec}: ${value} is not a directory`);
    out.set(name, { kind: 'dir', path: dir });
  }
  return out;
}

/** --metadata-file, in BuildKit's key names (containerimage.digest only when a manifest was pushed). */
function buildMetadata(image: StoredImage | StoredIndex, delivered: Delivered): Record<string, string> {
  const names = delivered.pushed.length ? delivered.pushed.map((p) => p.name) : image.tags;
  const digest = delivered.pushed[0]?.digest ?? ('index' in image ? image.digest : undefined);
  return {
    // an index has no config of its own (BuildKit leaves the key out too)
    ...('index' in image ? {} : { 'containerimage.config.digest': image.id }),
    ...(digest ? { 'containerimage.digest': digest } : {}),
    ...(names.length ? { 'image.name': names.join(',') } : {}),
  };
}

const STDIN_IS_TERMINAL = '"-" reads standard input, which is a terminal: pipe the Dockerfile or context in';

/** A tar (plain or compressed, as Docker takes one) rather than a Dockerfile. */
function isTarball(bytes: Buffer): boolean {
  const kind = sniffCompression(bytes.subarray(0, 16));
  if (kind !== 'none') return true;
  return bytes.length >= 512 && bytes.subarray(257, 262).toString('latin1') === 'ustar';
}

export interface BuildInput {
  /** where the Dockerfile is (a stable name of our own for one from stdin: build records key on it) */
  path: string;
  text: string;
  display: string;
  context: string;
  /** removes a context unpacked from stdin */
  cleanup(): Promise<void>;
}

/**
 * The Dockerfile and the context, as docker build takes them: `-f -` reads the Dockerfile from
 * stdin; a context of `-` is a Dockerfile on stdin with no context, or a context tar (gzip, bzip2,
 * xz or zstd too) whose Dockerfile is the -f path inside it.
 */

export async function readDockerfile(argv: BuildArgs): Promise<BuildInput> {
  const none = async (): Promise<void> => undefined;
  if (argv['context-stdin'] || argv.context === '-') {
    if (argv.file === '-') throw new UsageError('the Dockerfile and the context cannot both come from standard input');
    const bytes = await readStdin(STDIN_IS_TERMINAL);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'lbuild-stdin-'));
    const cleanup = (): Promise<void> => fsp.rm(dir, { recursive: true, force: true });
    try {
      if (!isTarball(bytes)) {
        return { path: '<stdin>', text: bytes.toString('utf8'), display: 'Dockerfile', context: dir, cleanup };
      }
      await applyLayer(decompress(Readable.from([bytes]), sniffCompression(bytes.subarray(0, 16))), dir).catch((e: unknown) => {
        throw new UsageError(`the context tar on standard input: ${errorMessage(e)}`);
      });
      const name = argv.file ?? 'Dockerfile';
      const rel = path.normalize(name).replace(/^(\.\.(\/|$))+/, '');
      const text = await readDockerfileText(path.join(dir, rel), `${name} (in the context tar)`);
      return { path: `<stdin>/${rel}`, text, display: name, context: dir, cleanup };
    } catch (e) {
      await cleanup();
      throw e;
    }
  }
  const context = path.resolve(argv.context);
  const st = await fsp.stat(context).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`build context ${argv.context}: not a directory`);
  if (argv.file === '-') {
    return { path: path.join(context, '<stdin>'), text: (await readStdin(STDIN_IS_TERMINAL)).toString('utf8'), display: 'Dockerfile', context, cleanup: none };
  }
  const file = argv.file ? path.resolve(argv.file) : path.join(context, 'Dockerfile');
  const text = await readDockerfileText(file, argv.file ?? path.join(argv.context, 'Dockerfile'));
  return { path: file, text, display: argv.file ? argv.file : 'Dockerfile', context, cleanup: none };
}

export const buildCommand: CommandModule<GlobalArgs, BuildArgs> = {
  ...COMMAND_TEXT.build,
  builder: buildOptions,
  handler: async (argv) => {
    const df = await readDockerfile(argv);
    try {
      await build(argv, df);
    } finally {
      await df.cleanup();
    }
  },
};

async function build(argv: BuildArgs, df: BuildInput): Promise<void> {
  const parsed = parseDockerfile(df.text, df.display);
  const buildArgs = parsePairs(asArray(argv['build-arg']), '--build-arg', true);
  const platformText = argv.platform ?? process.env.DOCKER_DEFAULT_PLATFORM;
  const platforms = platformText !== undefined && platformText !== '' ? parsePlatforms(platformText) : [];
  const platform = platforms[0];
  const plan = planBuild(parsed, { ...(argv.target ? { target: argv.target } : {}), buildArgs, ...(platform ? { platform } : {}) });
  if (argv['print-plan']) {
    print(renderPlan(plan));
    return;
  }
  for (const t of asArray(argv.tag)) normalizeTag(t); // a bad name fails before anything runs
  const store = await openStore(argv);
  const mode = chooseMode(argv.quiet ? 'quiet' : argv.progress, Boolean(process.stderr.isTTY));
  const write = (t: string): void => {
    if (mode !== 'quiet') process.stderr.write(t);
  };
  // the terminal view (log-update and its ANSI helpers) is loaded only for a terminal
  const progress = mode === 'json' ? jsonProgress(write) : mode === 'tty' ? (await import('../../report/tty-view.js')).ttyView(process.stderr) : plainProgress(write);
  const outputs = parseOutputs([...asArray(argv.output), ...(argv.push ? ['type=image,push=true'] : []), ...(argv.load ? ['type=docker'] : [])]);
  if (outputs.some((o) => 'dest' in o && o.dest === '-') && process.stdout.isTTY) {
    throw new UsageError('--output -: refusing to write an archive to a terminal; redirect the output');
  }
  const insecure = asArray(argv['insecure-registry']);
  const cacheFrom = asArray(argv['cache-from']).map((c) => parseCacheSpec(c, '--cache-from'));
  const cacheTos = asArray(argv['cache-to']);
  if (cacheTos.length > 1) throw new UsageError('--cache-to: give it once (lbuild exports the cache to one place)');
  const cacheTo = cacheTos[0] !== undefined ? parseCacheSpec(cacheTos[0], '--cache-to') : undefined;
  const imported = cacheFrom.length ? await importCache(cacheFrom, { insecure }) : undefined;
  if (imported) progress.info(`cache: ${imported.size} record(s) imported from ${cacheFrom.map((c) => c.ref ?? c.dir).join(', ')}`);
  const release = installSignalCleanup(store.tmpDir);
  const target = stageLabel(plan.stages[plan.target] as Stage);
  const namedContexts = await parseBuildContexts(asArray(argv['build-context']));
  const makeBuilder = (p: Platform | undefined, planFor: BuildPlan, tags: string[], labelPrefix?: string): Builder => new Builder({
    store,
    contextDir: df.context,
    dockerfilePath: df.path,
    dockerfileName: df.display,
    dockerfileText: df.text,
    tags,
    buildArgs,
    ...(argv.target ? { target: argv.target } : {}),
    network: argv.network as 'default' | 'none' | 'host',
    extraHosts: parseAddHosts(asArray(argv['add-host'])),
    namedContexts,
    ssh: new Map(asArray(argv.ssh).map((x) => {
      const src = parseSsh(x);
      return [src.id, src] as const;
    })),
    labels: parsePairs(asArray(argv.label), '--label'),
    progress,
    noCache: !argv.cache,
    noCacheFilter: asArray(argv['nocache-filter']).flatMap((f) => f.split(',')),
    pull: argv['pull-never'] ? 'never' : argv.pull === true,
    allowInsecure: allowed(asArray(argv.allow)).has('security.insecure'),
    insecureRegistries: insecure,
    ...(imported ? { cacheFrom: imported } : {}),
    ...(p ? { platform: p } : {}),
    ...(labelPrefix ? { labelPrefix } : {}),
    plan: planFor,
    secrets: new Map(asArray(argv.secret).map((x) => {
      try {
        const sec = parseSecret(x);
        return [sec.id, sec] as const;
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    })),
  });
  // several platforms: one build each (what they share, e.g. FROM --platform=$BUILDPLATFORM stages, hits the
  // cache after the first), then one OCI index over their images
  const multi = platforms.length > 1;
  const builders = multi
    ? platforms.map((p, i) => makeBuilder(p, i === 0 ? plan : planBuild(parsed, { ...(argv.target ? { target: argv.target } : {}), buildArgs, platform: p }), [], formatPlatform(p)))
    : [makeBuilder(platform, plan, asArray(argv.tag))];
  const builder = builders[0] as Builder;
  if (multi) checkMultiOutputs(outputs);
  const started = Date.now();
  const id = newBuildId();
  /** reports are written for failed builds too: they show the failing step */
  const writeReports = async (report: BuildReport, image: StoredImage | undefined): Promise<void> => {
    await saveReport(store.root, { version: 1, id, dockerfile: df.path, target, report });
    await new BuildRecords(store.root).appendHistory(historyLine(report, df.path, target));
    if (argv.report) await fsp.writeFile(argv.report, `${JSON.stringify(report, null, 2)}\n`);
    if (process.env.GITHUB_STEP_SUMMARY) await fsp.appendFile(process.env.GITHUB_STEP_SUMMARY, reportMarkdown(report));
    if (argv['report-html']) {
      const layers = image ? await layerRows(store, image) : undefined;
      await fsp.writeFile(argv['report-html'], renderHtml(report, layers, image?.tags[0] ?? asArray(argv.tag)[0] ?? df.display));
    }
  };
  const context = { dockerfile: df.path, target, buildArgs };
  try {
    let result: { steps: StepRecord[]; durationMs: number; image: StoredImage; index?: StoredIndex };
    try {
      if (!multi) result = await builder.build();
      else {
        const parts: BuildResult[] = [];
        for (const b of builders) parts.push(await b.build());
        const index = await store.commitIndex(parts.map((r) => r.image), asArray(argv.tag));
        result = { steps: parts.flatMap((r) => r.steps), durationMs: Date.now() - started, image: (parts[0] as BuildResult).image, index };
      }
    } catch (e) {
      const tags = asArray(argv.tag);
      const failed = { steps: builders.flatMap((b) => [...b.stepsSoFar]), durationMs: Date.now() - started, image: { id: '', tags } };
      await writeReports(buildReport(failed, { ...context, failed: true, error: errorMessage(e) }), undefined).catch(() => undefined);
      throw e;
    }
    // a multi-platform build is named by its index
    const shownId = result.index?.digest ?? result.image.id;
    const image = result.index
      ? { id: result.index.digest, tags: result.index.tags, manifestDigest: result.index.digest }
      : { id: result.image.id, tags: result.image.tags, manifestDigest: result.image.manifestDigest };
    if (cacheTo) {
      const records = (await Promise.all(builders.map((b) => b.exportRecords(cacheTo.mode)))).flat();
      const n = await exportCache(store, cacheTo, records, { insecure });
      progress.info(`cache: exported ${n} record(s) to ${cacheTo.ref ?? cacheTo.dir} (mode=${cacheTo.mode})`);
    }
    const summary = buildReport({ ...result, image }).summary;
    progress.info(`cache: ${summary.hits}/${summary.steps} steps hit (${Math.round(summary.hitRatio * 100)}%)`);
    if (result.index) progress.info(`writing image index ${shownId} (${result.index.images.map((i) => formatPlatform(configPlatform(i.config))).join(', ')})`);
    else progress.info(`writing image ${shownId}`);
    for (const t of image.tags) progress.info(`naming to ${t}`);
    let delivered: Delivered;
    try {
      delivered = result.index
        ? await deliverIndexOutputs(store, result.index, outputs, { insecure, log: (l) => progress.info(l) })
        : await deliverOutputs(store, result.image, outputs, { insecure, log: (l) => progress.info(l) });
    } catch (e) {
      // the image was built, its delivery failed: the report says both
      await writeReports(buildReport({ ...result, image }, { ...context, failed: true, error: errorMessage(e) }), result.image).catch(() => undefined);
      throw e;
    }
    await writeReports(buildReport({ ...result, image }, { ...context, pushed: delivered.pushed }), result.image);
    if (argv.iidfile) await fsp.writeFile(argv.iidfile, shownId);
    if (argv['metadata-file']) await fsp.writeFile(argv['metadata-file'], `${JSON.stringify(buildMetadata(result.index ?? result.image, delivered), null, 2)}\n`);
    progress.close?.();
    // the ID goes to stdout unless stdout carries an archive
    if (!outputs.some((o) => 'dest' in o && o.dest === '-')) print(shownId);
  } finally {
    progress.close?.();
    release();
  }
}
