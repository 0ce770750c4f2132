import type { CommandModule } from 'yargs';

/*
 * What main needs to know of every command before loading any of them: the words and one-line
 * descriptions (for --help, typo suggestions and stubs) and where each command's code is. Loading
 * only the command that runs keeps the start of `lbuild images` from evaluating the build engine.
 */

export const COMMAND_TEXT = {
  build: { command: ['build [context]', '$0 [context]'], describe: 'Build an image from a Dockerfile' },
  images: { command: 'images', describe: 'List images' },
  inspect: { command: 'inspect <images..>', describe: 'Show images as JSON (docker image inspect shape)' },
  history: { command: 'history <image>', describe: 'Show the steps of an image with the size of each layer' },
  tag: { command: 'tag <source> <target>', describe: 'Give an image another name' },
  rmi: { command: 'rmi <images..>', describe: 'Remove images (untag; delete when no tag is left)' },
  import: { command: 'import <file> [name]', describe: 'Make a one-layer image from a root filesystem tar (like docker import)' },
  save: { command: 'save <images..>', describe: 'Write images to a docker-archive (docker load) or OCI layout tar' },
  load: { command: 'load', describe: 'Load images from a docker-archive or OCI layout tar (every digest verified)' },
  run: { command: 'run <image> [cmd..]', describe: 'Run a command in a throwaway container of an image (its changes are discarded)' },
  cache: { command: 'cache <command>', describe: 'Build cache reports' },
  analyze: { command: 'analyze <image>', describe: 'Show the bytes an image ships that its final filesystem hides, and the lines that cause them' },
  df: { command: 'df', describe: 'Disk usage of images, layers and build cache (shared and unique sizes with -v)' },
  lint: { command: 'lint [dockerfile]', describe: 'Dockerfile ordering and size hints (and, from build records, steps that keep missing the cache)' },
  report: { command: 'report <command>', describe: 'Build reports' },
  pull: { command: 'pull <ref>', describe: 'Pull an image from a registry (every blob verified; layers already present are skipped)' },
  push: { command: 'push <image> [ref]', describe: 'Push an image to a registry (as IMAGE, or as REF)' },
  fsck: { command: 'fsck', describe: 'Verify every blob, image and snapshot of the store (--repair removes what is broken)' },
  binfmt: { command: 'binfmt', describe: 'QEMU handlers for RUN of other architectures: their state, and --install to register them (root)' },
  prune: { command: 'prune', describe: 'Remove dangling images, unused layers and stale build cache (--all: all build cache; --keep-storage SIZE: least recently used first)' },
} as const;

export type CommandName = keyof typeof COMMAND_TEXT;

type Loaded = CommandModule<never, never>;

/** Each command's module, imported when that command runs (the bundler makes these lazy). */
export const COMMAND_LOADERS: Record<CommandName, () => Promise<Loaded>> = {
  build: async () => (await import('./commands/build.js')).buildCommand as unknown as Loaded,
  images: async () => (await import('./commands/images.js')).imagesCommand as unknown as Loaded,
  inspect: async () => (await import('./commands/inspect.js')).inspectCommand as unknown as Loaded,
  history: async () => (await import('./commands/history.js')).historyCommand as unknown as Loaded,
  tag: async () => (await import('./commands/tag.js')).tagCommand as unknown as Loaded,
  rmi: async () => (await import('./commands/rmi.js')).rmiCommand as unknown as Loaded,
  import: async () => (await import('./commands/import.js')).importCommand as unknown as Loaded,
  save: async () => (await import('./commands/save.js')).saveCommand as unknown as Loaded,
  load: async () => (await import('./commands/load.js')).loadCommand as unknown as Loaded,
  run: async () => (await import('./commands/run.js')).runCommand as unknown as Loaded,
  cache: async () => (await import('./commands/cache.js')).cacheCommand as unknown as Loaded,
  analyze: async () => (await import('./commands/analyze.js')).analyzeCommand as unknown as Loaded,
  df: async () => (await import('./commands/df.js')).dfCommand as unknown as Loaded,
  lint: async () => (await import('./commands/lint.js')).lintCommand as unknown as Loaded,
  report: async () => (await import('./commands/report.js')).reportCommand as unknown as Loaded,
  pull: async () => (await import('./commands/registry.js')).pullCommand as unknown as Loaded,
  push: async () => (await import('./commands/registry.js')).pushCommand as unknown as Loaded,
  fsck: async () => (await import('./commands/maintenance.js')).fsckCommand as unknown as Loaded,
  binfmt: async () => (await import('./commands/binfmt.js')).binfmtCommand as unknown as Loaded,
  prune: async () => (await import('./commands/maintenance.js')).pruneCommand as unknown as Loaded,
};

/** build's flags that take no value: a `-` after one of them is the context, not its value */
export const BUILD_BOOLEAN_FLAGS = new Set(['--cache', '--no-cache', '--pull', '--no-pull', '--print-plan', '--debug', '-q', '--quiet', '--push', '--load']);

/** run's options that take a value (the CLI finds where the container's command starts with it) */
export const RUN_VALUE_OPTIONS = new Set(['--root', '-e', '--env', '--network', '--add-host', '--entrypoint', '-u', '--user', '-v', '--volume', '-w', '--workdir', '--env-file']);
