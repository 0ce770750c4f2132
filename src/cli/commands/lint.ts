import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { BuildRecords } from '../../cache/records.js';
import { parseDockerfile } from '../../dockerfile/parse.js';
import { readDockerfileText } from '../../dockerfile/read.js';
import { LbuildError } from '../../errors.js';
import { baseFacts } from '../../lint/base-facts.js';
import { failsThreshold, hadolintIgnored, lint, lintSarif, lintText, rootImage, stagesOf } from '../../lint/engine.js';
import type { Severity } from '../../lint/types.js';
import { type GlobalArgs, openStore, print, printJson, readStdin } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  file: string;
  dockerfile?: string;
  format: string;
  'failure-threshold': string;
  target?: string;
  context?: string;
}

async function firstReadable(files: readonly string[]): Promise<string | undefined> {
  for (const f of files) {
    const text = await fsp.readFile(f, 'utf8').catch(() => undefined);
    if (text !== undefined) return text;
  }
  return undefined;
}

export const lintCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.lint,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('dockerfile', { type: 'string', describe: 'the Dockerfile (as -f; - reads standard input)' })
      .option('file', { alias: 'f', type: 'string', default: 'Dockerfile' })
      .option('format', { type: 'string', choices: ['tty', 'json', 'sarif'], default: 'tty' })
      .option('failure-threshold', { type: 'string', choices: ['error', 'warning', 'info', 'none'], default: 'warning' })
      .option('target', { type: 'string', describe: 'the stage built as the image (default: the last); size hints judge only the stages it is made of' })
      .option('context', { type: 'string', describe: 'the build context (default: the Dockerfile\'s directory): which `[ -f FILE ]` branches run' }) as Argv<Args>,
  handler: async (argv) => {
    const given = argv.dockerfile ?? argv.file;
    const fromStdin = given === '-';
    const shown = fromStdin ? 'Dockerfile' : given;
    const file = fromStdin ? path.resolve('<stdin>') : path.resolve(given);
    const source = fromStdin ? (await readStdin('lint -: standard input is a terminal; pipe the Dockerfile in')).toString('utf8') : await readDockerfileText(file, given);
    const df = parseDockerfile(source, shown);
    const store = await openStore(argv).catch(() => undefined);
    const history = store ? await new BuildRecords(store.root).history() : [];
    // hadolint's config beside the Dockerfile, else in the directory lint runs in
    const yaml = await firstReadable([path.join(path.dirname(file), '.hadolint.yaml'), path.resolve('.hadolint.yaml')]);
    const stages = stagesOf(df);
    // base images the store has tell whether apt keeps its .deb files (Docker's docker-clean config)
    const bases = store ? await baseFacts(store, stages.map((st) => rootImage(stages, st)).filter((r): r is string => r !== undefined)) : new Map();
    const context = argv.context !== undefined ? path.resolve(argv.context) : fromStdin ? undefined : path.dirname(file);
    const findings = lint(df, source, {
      history,
      dockerfilePath: file,
      ignored: yaml ? hadolintIgnored(yaml) : [],
      bases,
      ...(argv.target !== undefined ? { target: argv.target } : {}),
      ...(context !== undefined ? { context } : {}),
    });
    if (argv.format === 'json') printJson(findings);
    else if (argv.format === 'sarif') printJson(lintSarif(shown, findings));
    else print(lintText(shown, findings));
    const threshold = argv['failure-threshold'] as Severity | 'none';
    if (failsThreshold(findings, threshold)) throw new LbuildError(`lint: ${findings.length} finding(s), at least one at or above "${threshold}"`);
  },
};
