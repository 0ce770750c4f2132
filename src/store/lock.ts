import { readFileSync, promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LbuildError, isErrno } from '../errors.js';
import { isPidAlive, tempName } from '../util/fsx.js';
import { bootId } from './durability.js';

/*
 * An exclusive lock on a store file. The lock file is written in full under a temp name and
 * then hard-linked into place (link fails if the lock exists), so a lock is never seen empty or
 * half-written. It names its owner by PID, the PID's start time and the boot: a lock whose owner
 * is gone (dead, a PID reused after a power cut, an earlier boot) is stale. Breaking a stale lock
 * takes a second, short-lived lock (`<lock>.break`, same rules), so two processes can never both
 * remove a lock and then each think the new one is theirs.
 */

interface Owner {
  pid: number;
  start: string;
  boot: string;
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const me = (): Owner => ({ pid: process.pid, start: startTime(process.pid) ?? '', boot: bootId() });

/** An empty or unreadable lock (a writer killed mid-write by an older lbuild, a full disk) is stale after this. */
const UNREADABLE_GRACE_MS = 10_000;

export type LockState = { state: 'free' } | { state: 'held'; owner: Owner } | { state: 'stale'; why: string; ino: number };

/** Whether a lock file is free, held by a live owner, or stale (and why). */
export async function inspectLock(file: string): Promise<LockState> {
  const st = await fsp.stat(file).catch(() => undefined);
  if (!st) return { state: 'free' };
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  let owner: Partial<Owner> | undefined;
  try {
    owner = JSON.parse(text) as Partial<Owner>;
  } catch {
    // the format before this one: a bare PID
    owner = /^\d+$/.test(text.trim()) ? { pid: Number(text.trim()) } : undefined;
  }
  if (!owner || typeof owner.pid !== 'number') {
    if (Date.now() - st.mtimeMs > UNREADABLE_GRACE_MS) return { state: 'stale', why: 'empty or unreadable', ino: st.ino };
    return { state: 'held', owner: { pid: 0, start: '', boot: '' } };
  }
  if (owner.boot !== undefined && owner.boot !== bootId()) return { state: 'stale', why: `left by PID ${owner.pid} before the last boot`, ino: st.ino };
  if (!isPidAlive(owner.pid)) return { state: 'stale', why: `PID ${owner.pid} is gone`, ino: st.ino };
  if (owner.start !== undefined && owner.start !== '' && owner.start !== startTime(owner.pid)) return { state: 'stale', why: `PID ${owner.pid} is another process now`, ino: st.ino };
  return { state: 'held', owner: { pid: owner.pid, start: owner.start ?? '', boot: owner.boot ?? '' } };
}

/** Put the lock in place if nobody holds it: true when it is ours. */
async function tryCreate(file: string): Promise<boolean> {
  const tmp = `${file}.${tempName('new')}`;
  await fsp.writeFile(tmp, JSON.stringify(me()), { mode: 0o644 });
  try {
    await fsp.link(tmp, file);
    return true;
  } catch (e) {
    if (isErrno(e, 'EEXIST')) return false;
    throw e;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

/** Remove a stale lock, holding `<file>.break` while checking that it is still that same stale lock. */
async function breakStale(file: string, ino: number): Promise<void> {
  const breaker = `${file}.break`;
  if (!(await tryCreate(breaker))) {
    const b = await inspectLock(breaker);
    if (b.state === 'stale') await breakStale(breaker, b.ino);
    return;
  }
  try {
    const now = await fsp.stat(file).catch(() => undefined);
    if (now?.ino === ino) await fsp.unlink(file);
  } finally {
    await fsp.unlink(breaker).catch(() => undefined);
  }
}

/** Clear a stale lock (fsck --repair); a lock a live process holds is left alone. Returns why it was stale, if it was. */
export async function clearStaleLock(file: string): Promise<string | undefined> {
  const s = await inspectLock(file);
  if (s.state !== 'stale') return undefined;
  await breakStale(file, s.ino);
  return s.why;
}

export async function withLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await tryCreate(lockFile)) break;
    const s = await inspectLock(lockFile);
    if (s.state === 'stale') {
      await breakStale(lockFile, s.ino);
      continue;
    }
    if (Date.now() > deadline) {
      const who = s.state === 'held' && s.owner.pid ? `PID ${s.owner.pid}` : 'a process still writing it';
      throw new LbuildError(`timed out waiting for the store lock ${lockFile} (held by ${who})`);
    }
    await sleep(20 + Math.random() * 30);
  }
  try {
    return await fn();
  } finally {
    await fsp.unlink(lockFile).catch(() => undefined);
  }
}
