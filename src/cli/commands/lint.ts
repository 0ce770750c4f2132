import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { BuildRecords } from '../../cache/records.js';
import { parseDockerfile } from '../../dockerfile/parse.js';
import { readDockerfileText } from '../../dockerfile/read.js';
import { LbuildError } from '../../errors.js';
import { failsThreshold, lint, lintSarif, lintText } from '../../lint/engine.js';
import type { Severity } from '../../lint/types.js';
import { type GlobalArgs, openStore, print, printJson } from '../common.js';

interface Args extends GlobalArgs {
  file: string;
  format: string;
  'failure-threshold': string;
}

export const lintCommand: CommandModule<GlobalArgs, Args> = {
  command: 'lint',
  describe: 'Dockerfile ordering and size hints (and, from build records, steps that keep missing the cache)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('file', { alias: 'f', type: 'string', default: 'Dockerfile' })
      .option('format', { type: 'string', choices: ['tty', 'json', 'sarif'], default: 'tty' })
      .option('failure-threshold', { type: 'string', choices: ['error', 'warning', 'info', 'none'], default: 'warning' }) as Argv<Args>,
  handler: async (argv) => {
    const file = path.resolve(argv.file);
    const source = await readDockerfileText(file, argv.file);
    const df = parseDockerfile(source, argv.file);
    const store = await openStore(argv).catch(() => undefined);
    const history = store ? await new BuildRecords(store.root).history() : [];
    const findings = lint(df, source, history, file);
    if (argv.format === 'json') printJson(findings);
    else if (argv.format === 'sarif') printJson(lintSarif(argv.file, findings));
    else print(lintText(argv.file, findings));
    const threshold = argv['failure-threshold'] as Severity | 'none';
    if (failsThreshold(findings, threshold)) throw new LbuildError(`lint: ${findings.length} finding(s), at least one at or above "${threshold}"`);
  },
};
