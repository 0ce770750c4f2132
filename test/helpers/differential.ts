import * as path from 'node:path';
import { after, before } from 'node:test';
import { importBusybox } from './busybox.js';
import { lbuildOk, removeDir, tempDir } from './cli.js';

/*
 * Differential builds (the cache-trust rule): a build in a store of its own, and the image a
 * --no-cache build of the same context makes in a fresh store, with one SOURCE_DATE_EPOCH, so
 * that the two can be compared by image ID.
 */

export const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };

export interface DifferentialStores {
  /** a new store under the test's directory, busybox:latest imported */
  store(name: string): Promise<string>;
  build(root: string, ctx: string, extra?: string[]): Promise<{ id: string; log: string }>;
  /** the image a cold build of the context makes, in a fresh store */
  coldImage(name: string, ctx: string): Promise<string>;
  /** the test file's temp directory (made before its tests, removed after) */
  dir(): string;
}

/** Stores for one test file; `env`: more variables for every build (LBUILD_TRACE, say). */
export function differentialStores(env: Record<string, string> = {}): DifferentialStores {
  let dir = '';
  before(() => {
    dir = tempDir();
  });
  after(async () => {
    await removeDir(dir);
  });
  const store = async (name: string): Promise<string> => {
    const root = path.join(dir, name);
    await importBusybox(root, 'busybox:latest', { SOURCE_DATE_EPOCH: '0' });
    return root;
  };
  const build = async (root: string, ctx: string, extra: string[] = []): Promise<{ id: string; log: string }> => {
    const r = await lbuildOk(root, ['build', '--progress', 'plain', ...extra, ctx], { env: { ...EPOCH, ...env } });
    return { id: r.stdout.trim(), log: r.stderr };
  };
  return { store, build, coldImage: async (name, ctx) => (await build(await store(name), ctx, ['--no-cache'])).id, dir: () => dir };
}
