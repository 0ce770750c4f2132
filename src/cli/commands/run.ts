import { promises as fsp } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { LbuildError, UsageError } from '../../errors.js';
import { DEFAULT_PATH, runContainer } from '../../runtime/runc.js';
import { resolveUser } from '../../runtime/user.js';
import { Snapshotter } from '../../snapshot/overlay.js';
import { installSignalCleanup } from '../signals.js';
import { type GlobalArgs, asArray, openStore, parseAddHosts, parsePairs } from '../common.js';
import { layout } from '../../store/layout.js';

interface Args extends GlobalArgs {
  image: string;
  cmd?: string[];
  rm?: boolean;
  env?: string[];
  network: string;
  'add-host'?: string[];
  entrypoint?: string;
  user?: string;
  commandJson?: string;
}

/** run's options that take a value (the CLI finds where the container's command starts with it) */
export const RUN_VALUE_OPTIONS = new Set(['--root', '-e', '--env', '--network', '--add-host', '--entrypoint', '-u', '--user']);

export const runCommand: CommandModule<GlobalArgs, Args> = {
  command: 'run <image> [cmd..]',
  describe: 'Run a command in a throwaway container of an image (its changes are discarded)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true })
      .positional('cmd', { type: 'string', array: true })
      .option('rm', { type: 'boolean', default: true, describe: 'remove the container afterwards (always: containers are ephemeral)' })
      .option('env', { alias: 'e', type: 'string', describe: 'K=V environment variable (repeatable)' })
      .option('network', { type: 'string', choices: ['default', 'none', 'host'], default: 'default' })
      .option('add-host', { type: 'string', describe: 'NAME:IP line for /etc/hosts (repeatable)' })
      .option('entrypoint', { type: 'string', describe: 'run this instead of the image\'s ENTRYPOINT (\'\' for none), as docker run' })
      .option('command-json', { type: 'string', hidden: true, describe: 'the command after the image (set by the CLI: options there are the command\'s)' })
      .option('user', { alias: 'u', type: 'string', describe: 'user[:group] (name or id) instead of the image\'s USER' })
      .parserConfiguration({ 'unknown-options-as-args': true }) as unknown as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const img = await store.getImage(argv.image);
    const cfg = img.config.config;
    const cmd = argv.commandJson !== undefined ? (JSON.parse(argv.commandJson) as string[]) : asArray(argv.cmd);
    // as docker run: --entrypoint replaces the image's and drops its CMD
    const entrypoint = argv.entrypoint !== undefined ? (argv.entrypoint === '' ? [] : [argv.entrypoint]) : (cfg.Entrypoint ?? []);
    const args = [...entrypoint, ...(cmd.length ? cmd : argv.entrypoint !== undefined ? [] : (cfg.Cmd ?? []))];
    if (args.length === 0) throw new UsageError(`${argv.image} has no CMD or ENTRYPOINT: give a command`);
    const snapshotter = new Snapshotter(store);
    const release = installSignalCleanup(store.tmpDir);
    const snap = await snapshotter.prepare(img.config.rootfs.diff_ids);
    let code = 0;
    try {
      const user = resolveUser(snap.merged, argv.user ?? cfg.User);
      const env = [...(cfg.Env ?? [])];
      for (const [k, v] of parsePairs(asArray(argv.env), '--env', true)) env.push(`${k}=${v}`);
      if (!env.some((e) => e.startsWith('PATH='))) env.push(`PATH=${DEFAULT_PATH}`);
      if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
      const r = await runContainer(
        {
          root: snap.merged,
          args,
          env,
          cwd: cfg.WorkingDir || '/',
          uid: user.uid,
          gid: user.gid,
          additionalGids: user.additionalGids,
          network: argv.network as 'default' | 'none' | 'host',
          extraHosts: parseAddHosts(asArray(argv['add-host'])),
          inheritStdio: true,
        },
        layout.runc(store.root),
        store.tmpDir,
      );
      code = r.exitCode;
    } finally {
      await snap.release();
      await fsp.rm(snap.dir, { recursive: true, force: true });
      release();
    }
    if (code !== 0) throw new LbuildError(`the command exited with code ${code}`, code > 255 ? 1 : code);
  },
};
