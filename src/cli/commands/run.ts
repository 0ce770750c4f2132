import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { LbuildError, UsageError } from '../../errors.js';
import { DEFAULT_PATH, type Mount, runContainer } from '../../runtime/runc.js';
import { makeWorkdir } from '../../builder/copy.js';
import { resolveUser } from '../../runtime/user.js';
import { Snapshotter } from '../../snapshot/overlay.js';
import { installSignalCleanup } from '../signals.js';
import { type GlobalArgs, asArray, openStore, parseAddHosts, parsePairs } from '../common.js';
import { layout } from '../../store/layout.js';
import { COMMAND_TEXT } from '../command-list.js';

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
  interactive?: boolean;
  tty?: boolean;
  volume?: string[];
  workdir?: string;
  'env-file'?: string[];
}

/** `-v HOST:CONTAINER[:ro|rw]`: a bind mount of a host path (named volumes need a daemon). */
function parseVolume(spec: string): Mount {
  const parts = spec.split(':');
  const [host, target, mode = 'rw'] = parts;
  if (parts.length < 2 || parts.length > 3 || !host || !target) throw new UsageError(`-v ${spec}: expected HOST_PATH:CONTAINER_PATH[:ro]`);
  if (!path.isAbsolute(host)) throw new UsageError(`-v ${spec}: ${host} is not an absolute host path (named volumes need a daemon)`);
  if (!path.isAbsolute(target)) throw new UsageError(`-v ${spec}: ${target} is not an absolute path in the container`);
  if (mode !== 'ro' && mode !== 'rw') throw new UsageError(`-v ${spec}: mode ${mode} (ro or rw)`);
  if (!existsSync(host)) throw new UsageError(`-v ${spec}: ${host} does not exist`);
  return { destination: path.posix.normalize(target), type: 'bind', source: host, options: ['rbind', mode] };
}

/** `--env-file`: KEY=VALUE lines; `#` comments and blank lines skipped; a bare KEY takes the caller's value. */
async function readEnvFile(file: string): Promise<string[]> {
  const text = await fsp.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`--env-file ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  const out: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq === 0) throw new UsageError(`--env-file ${file}:${i + 1}: a variable needs a name`);
    if (eq < 0) {
      const v = process.env[line.trim()];
      if (v !== undefined) out.push(`${line.trim()}=${v}`);
    } else out.push(line);
  }
  return out;
}

export const runCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.run,
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
      .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'keep stdin open for the command' })
      .option('tty', { alias: 't', type: 'boolean', default: false, describe: 'give the command a pseudo-terminal' })
      .option('volume', { alias: 'v', type: 'string', describe: 'HOST_PATH:CONTAINER_PATH[:ro] bind mount (repeatable)' })
      .option('workdir', { alias: 'w', type: 'string', describe: 'working directory in the container (made if missing)' })
      .option('env-file', { type: 'string', describe: 'file of KEY=VALUE lines (repeatable)' })
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
    const mounts = asArray(argv.volume).map(parseVolume);
    const fileEnv: string[] = [];
    for (const f of asArray(argv['env-file'])) fileEnv.push(...(await readEnvFile(f)));
    if (argv.tty && !process.stdin.isTTY && !process.stdout.isTTY && !process.stderr.isTTY) {
      throw new UsageError('-t: there is no terminal here to relay (drop -t, or run under a terminal)');
    }
    const cwd = argv.workdir ?? (cfg.WorkingDir || '/');
    if (!path.posix.isAbsolute(cwd)) throw new UsageError(`-w ${cwd}: the working directory must be an absolute path`);
    const snapshotter = new Snapshotter(store);
    const release = installSignalCleanup(store.tmpDir);
    const snap = await snapshotter.prepare(img.config.rootfs.diff_ids);
    let code = 0;
    try {
      const user = resolveUser(snap.merged, argv.user ?? cfg.User);
      const env = [...(cfg.Env ?? []), ...fileEnv];
      for (const [k, v] of parsePairs(asArray(argv.env), '--env', true)) env.push(`${k}=${v}`);
      if (argv.workdir !== undefined) makeWorkdir(snap.merged, cwd, { uid: user.uid, gid: user.gid });
      if (!env.some((e) => e.startsWith('PATH='))) env.push(`PATH=${DEFAULT_PATH}`);
      if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
      // as docker run -t
      if (argv.tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
      const r = await runContainer(
        {
          root: snap.merged,
          args,
          env,
          cwd,
          uid: user.uid,
          gid: user.gid,
          additionalGids: user.additionalGids,
          network: argv.network as 'default' | 'none' | 'host',
          extraHosts: parseAddHosts(asArray(argv['add-host'])),
          inheritStdio: true,
          interactive: argv.interactive === true,
          terminal: argv.tty === true,
          extraMounts: mounts,
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
