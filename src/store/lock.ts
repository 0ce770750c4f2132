import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LbuildError, isErrno } from '../errors.js';
import { isPidAlive } from '../util/fsx.js';

/**
 * An exclusive lock on a store file, held by one process. The lock file holds the owner's PID
 * so that a lock left behind by a killed process is taken over instead of blocking forever.
 */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await fsp.open(lockFile, 'wx', 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
      const owner = Number.parseInt(await fsp.readFile(lockFile, 'utf8').catch(() => ''), 10);
      if (owner && !isPidAlive(owner)) {
        // stale: its owner died; remove it only if it still names that owner
        await fsp.unlink(lockFile).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new LbuildError(`timed out waiting for the store lock ${lockFile} (held by PID ${owner || '?'})`);
      await sleep(20 + Math.random() * 30);
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.unlink(lockFile).catch(() => undefined);
  }
}
