import { readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { killAll } from '../runtime/runc.js';
import { unmountAllSync } from '../snapshot/overlay.js';

/**
 * On SIGINT/SIGTERM: kill the running step's container, release every mount and this process's
 * temp files, then exit non-zero (130/143). Returns a function that removes the handlers.
 */
export function installSignalCleanup(tmpDir: string, what = 'the build'): () => void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`lbuild: ${sig}: stopping ${what}\n`);
    void killAll()
      .catch(() => undefined)
      .finally(() => {
        unmountAllSync();
        const mine = `-${process.pid}-`;
        for (const n of safeReaddir(tmpDir)) if (n.includes(mine)) rmSync(path.join(tmpDir, n), { recursive: true, force: true });
        process.exit(sig === 'SIGINT' ? 130 : 143);
      });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

function safeReaddir(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

/** Run a command's work with the signal cleanup installed (its temp files go on SIGINT/SIGTERM). */
export async function withSignalCleanup<T>(tmpDir: string, what: string, work: () => Promise<T>): Promise<T> {
  const release = installSignalCleanup(tmpDir, what);
  try {
    return await work();
  } finally {
    release();
  }
}
