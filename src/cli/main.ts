import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { LbuildError, UsageError, errorMessage } from '../errors.js';
import { analyzeCommand } from './commands/analyze.js';
import { buildCommand } from './commands/build.js';
import { fsckCommand, pruneCommand } from './commands/maintenance.js';
import { pullCommand, pushCommand } from './commands/registry.js';
import { reportCommand } from './commands/report.js';
import { lintCommand } from './commands/lint.js';
import { dfCommand } from './commands/df.js';
import { cacheCommand } from './commands/cache.js';
import { historyCommand } from './commands/history.js';
import { imagesCommand } from './commands/images.js';
import { importCommand } from './commands/import.js';
import { inspectCommand } from './commands/inspect.js';
import { loadCommand } from './commands/load.js';
import { rmiCommand } from './commands/rmi.js';
import { needsRootless, runRootless, watchParent } from '../runtime/rootless.js';
import { RUN_VALUE_OPTIONS, runCommand } from './commands/run.js';
import { saveCommand } from './commands/save.js';
import { tagCommand } from './commands/tag.js';

/** `lbuild run` options that take a value (the token after them is not the image). */

/**
 * As docker run: everything after the image is the container's command, options included
 * (`run img ls -la`, `run --entrypoint id img -u`), handed over as one hidden option.
 */
function splitRunCommand(args: string[]): string[] {
  // the command word comes after any global options (`--root DIR run …`)
  let start = 0;
  while (start < args.length && (args[start] as string).startsWith('-')) start += args[start] === '--root' ? 2 : 1;
  if (args[start] !== 'run') return args;
  for (let i = start + 1; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return args;
    if (!a.startsWith('-') || a === '-') {
      const tail = args.slice(i + 1);
      return tail.length ? [...args.slice(0, i + 1), `--command-json=${JSON.stringify(tail)}`] : args;
    }
    if (RUN_VALUE_OPTIONS.has(a)) i++;
  }
  return args;
}

/** Run the CLI; resolves to the exit code. Errors become one line on stderr (a stack only with --debug). */
export async function main(args: string[]): Promise<number> {
  const debug = args.includes('--debug');
  watchParent();
  // not root: the same command again inside the user's own user namespace (lint and help need no store)
  const helpOnly = args.includes('--help') || args.includes('-h') || args.find((a) => !a.startsWith('-')) === 'lint';
  if (needsRootless() && !helpOnly) {
    try {
      return await runRootless(process.argv.slice(1));
    } catch (e) {
      if (!(e instanceof LbuildError)) throw e;
      process.stderr.write(`lbuild: ${e.message}\n`);
      return e.exitCode;
    }
  }
  // yargs reads `--no-X` as "X is false": give --no-cache-filter an internal name
  const argv = splitRunCommand(args.map((a) => a.replace(/^--no-cache-filter(?==|$)/, '--nocache-filter')));
  const cli = yargs(argv)
    .scriptName('lbuild')
    .usage('$0 [build] [options] CONTEXT\n$0 <command> [options]')
    .option('root', { type: 'string', describe: 'store directory (env LBUILD_ROOT; default /var/lib/lbuild as root)', global: true })
    .option('debug', { type: 'boolean', describe: 'show stack traces', global: true })
    .command(buildCommand)
    .command(imagesCommand)
    .command(inspectCommand)
    .command(historyCommand)
    .command(tagCommand)
    .command(rmiCommand)
    .command(importCommand)
    .command(saveCommand)
    .command(loadCommand)
    .command(runCommand)
    .command(cacheCommand)
    .command(analyzeCommand)
    .command(dfCommand)
    .command(lintCommand)
    .command(reportCommand)
    .command(pullCommand)
    .command(pushCommand)
    .command(fsckCommand)
    .command(pruneCommand)
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
  try {
    await cli.parseAsync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code === 'EROFS') {
      process.stderr.write(`lbuild: the store is on a read-only file system (${(e as Error).message.replace(/^EROFS: /, '')})\n`);
      return 1;
    }
    if ((e as NodeJS.ErrnoException)?.code === 'ENOSPC') {
      process.stderr.write(`lbuild: no space left on the store's disk (${(e as Error).message.replace(/^ENOSPC: /, '')})\n`);
      return 1;
    }
    if (e instanceof LbuildError) {
      process.stderr.write(`lbuild: ${e.message}\n`);
      if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
      return e.exitCode;
    }
    process.stderr.write(`lbuild: ${errorMessage(e)}\n`);
    if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
  return 0;
}

/*
 * A promise nothing settles (a stream that never ends, a dropped rejection) lets Node exit with
 * code 0 once the event loop is empty, the command's work undone. That must never look like
 * success: until main() has settled, an exit is a failure.
 */
let settled = false;
process.on('exit', (code) => {
  if (!settled && code === 0) {
    process.stderr.write('lbuild: the command stopped before finishing its work (an internal error; nothing was completed)\n');
    process.exitCode = 1;
  }
});

main(hideBin(process.argv)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (e: unknown) => {
    settled = true;
    process.stderr.write(`lbuild: ${errorMessage(e)}\n`);
    process.exitCode = 1;
  },
);
