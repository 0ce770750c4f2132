import yargs, { type CommandModule } from 'yargs';
import { dedupeUnknown, refuseUnknownCommand } from './usage.js';
import { hideBin } from 'yargs/helpers';
import { LbuildError, UsageError, errorMessage } from '../errors.js';
import { BUILD_BOOLEAN_FLAGS, COMMAND_LOADERS, COMMAND_TEXT, type CommandName, RUN_VALUE_OPTIONS } from './command-list.js';
import { needsRootless, runRootless, watchParent } from '../runtime/rootless.js';

/** Every command but version and completion, in the order --help lists them. */
const NAMES = Object.keys(COMMAND_TEXT) as CommandName[];
const WORDS = NAMES as readonly string[];

/**
 * The commands yargs is given: the one that runs in full (build for any word that is not a
 * command: it is the default), the others as their word and description only, enough for the
 * command list of --help and for strict mode. Completion needs every command's options.
 */
async function commandModules(word: string | undefined, all: boolean): Promise<CommandModule[]> {
  const runs: CommandName | undefined = word === 'version' || word === 'completion' ? undefined : word !== undefined && WORDS.includes(word) ? (word as CommandName) : 'build';
  return Promise.all(NAMES.map(async (name) => {
    if (all || name === runs) return (await COMMAND_LOADERS[name]()) as unknown as CommandModule;
    return { ...COMMAND_TEXT[name], builder: {}, handler: () => undefined } as CommandModule;
  }));
}

/**
 * yargs renders the running command's whole help text as the command starts, to have it should
 * the command fail later (10–15 ms for build's 60 options, issue 17.2). lbuild never shows help
 * after a command has started (its failures are one-line errors, .fail() below): the text is made
 * only when help is asked for. A yargs without this internal hook is left as it is.
 */
function skipHelpCache(cli: object): void {
  const internal = (cli as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.();
  const usage = internal?.getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

/** Set by the bundler from package.json; `dev` when run from tsc's output. */
declare const LBUILD_VERSION: string | undefined;
export const VERSION = typeof LBUILD_VERSION === 'string' ? LBUILD_VERSION : 'dev';

const versionCommand: CommandModule = {
  command: 'version',
  describe: 'Show lbuild\'s version and what it runs on',
  handler: () => {
    process.stdout.write(`lbuild ${VERSION}\nnode ${process.version} ${process.platform}/${process.arch}\n`);
  },
};


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

/**
 * Docker's spellings yargs cannot take as they are. `lbuild build - < Dockerfile`: yargs drops a
 * lone `-` positional, so the context `-` becomes a hidden flag (a `-` right after an option that
 * takes a value, `-f -`, is that option's). `--pull=always|missing|never`: onto the boolean.
 */
function dockerForms(args: string[]): string[] {
  args = args.flatMap((a) => {
    // --pull=always|missing|never (Docker's newer form) onto the boolean and a hidden flag
    const m = /^--pull=(.*)$/.exec(a);
    if (!m) return [a];
    const v = m[1] ?? '';
    if (v === 'always' || v === 'true') return ['--pull'];
    if (v === 'missing' || v === 'false') return ['--no-pull'];
    if (v === 'never') return ['--pull-never'];
    throw new UsageError(`--pull=${v}: expected always, missing or never`);
  });
  const word = firstWord(args);
  // `lint -`: the Dockerfile from stdin (as `lint -f -`)
  if (word === 'lint') return args.map((a, i) => (a === '-' && args[i - 1] !== '-f' && args[i - 1] !== '--file' ? '--file=-' : a));
  // only build (named, or the default command) takes `-` for its context
  if (word !== undefined && word !== 'build' && WORDS.includes(word)) return args;
  return args.map((a, i) => {
    const prev = args[i - 1];
    const afterValueOption = prev !== undefined && prev.startsWith('-') && prev !== '-' && !prev.includes('=') && !BUILD_BOOLEAN_FLAGS.has(prev);
    return a === '-' && !afterValueOption ? '--context-stdin' : a;
  });
}

/** The command word: the first argument that is not an option (nor --root's value). */
function firstWord(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--root') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/** Run the CLI; resolves to the exit code. Errors become one line on stderr (a stack only with --debug). */
export async function main(args: string[]): Promise<number> {
  const debug = args.includes('--debug');
  watchParent();
  // not root: the same command again inside the user's own user namespace (lint and help need no store)
  const word = firstWord(args);
  const noStore = args.includes('--help') || args.includes('-h') || args.includes('--version') || ['lint', 'version', 'completion', 'binfmt'].includes(word ?? '');
  if (needsRootless() && !noStore) {
    try {
      return await runRootless(process.argv.slice(1));
    } catch (e) {
      if (!(e instanceof LbuildError)) throw e;
      process.stderr.write(`lbuild: ${e.message}\n`);
      return e.exitCode;
    }
  }
  // yargs reads `--no-X` as "X is false": give --no-cache-filter an internal name
  let argv: string[];
  try {
    argv = dockerForms(splitRunCommand(args.map((a) => a.replace(/^--no-cache-filter(?==|$)/, '--nocache-filter'))));
    if (!argv.includes('--get-yargs-completions')) await refuseUnknownCommand(firstWord(argv), [...WORDS, 'version', 'completion', 'help']);
  } catch (e) {
    if (!(e instanceof LbuildError)) throw e;
    process.stderr.write(`lbuild: ${e.message}\n`);
    return e.exitCode;
  }
  let cli = yargs(argv)
    .scriptName('lbuild')
    .usage('$0 [build] [options] CONTEXT\n$0 <command> [options]')
    .example('$0 -t app:1 .', 'build ./Dockerfile with the context . and name the image app:1')
    .example('$0 build -f - . < Dockerfile', 'the Dockerfile from stdin')
    .example('$0 build --progress plain --report r.json -t app .', 'plain log, cache report as JSON')
    .example('$0 save app:1 | docker load', 'hand the image to Docker')
    .example('$0 analyze app:1', 'wasted bytes, by cause')
    .epilogue('Each miss of the layer cache is explained in the log. Manual: man lbuild (docs/lbuild.1).')
    .option('root', { type: 'string', describe: 'store directory (env LBUILD_ROOT; default /var/lib/lbuild as root)', global: true })
    .option('debug', { type: 'boolean', describe: 'show stack traces', global: true });
  const completing = argv.includes('--get-yargs-completions');
  for (const c of await commandModules(firstWord(argv), completing)) cli = cli.command(c);
  cli = cli
    .command(versionCommand)
    .completion('completion', 'print a bash completion script (lbuild completion >> ~/.bashrc)')
    .strict()
    .help()
    .alias('help', 'h')
    .version(VERSION)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(dedupeUnknown(msg));
    });
  skipHelpCache(cli);
  // the default command would take `completion` for a build context
  if (firstWord(argv) === 'completion') {
    cli.showCompletionScript();
    return 0;
  }
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
// `lbuild images | head -1`: a reader that goes away early is not an error to show as a stack
// trace; what is still to print is dropped and the command finishes its work
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}
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
