import { createWriteStream, promises as fsp } from 'node:fs';
import { type TarEntry, pipeEntry } from '../util/tar-read.js';
import type tar from 'tar-stream';
import { makeDevice } from '../util/xattr.js';
import { LbuildError, isErrno } from '../errors.js';
import { inUserNamespace, mappedRange } from '../runtime/rootless.js';

/**
 * Write one tar entry (not a hardlink: callers resolve those targets their own way) at `abs`,
 * whose parent the caller has made safe. An earlier path of the same name is replaced, except
 * that a directory over a directory is updated in place. Returns false for skipped entry types.
 */
export async function writeEntry(entry: TarEntry, h: tar.Header, abs: string): Promise<boolean> {
  refuseSparse(h);
  const existing = await fsp.lstat(abs).catch(() => undefined);
  if (existing && !(existing.isDirectory() && h.type === 'directory')) await fsp.rm(abs, { recursive: true, force: true });
  switch (h.type) {
    case 'directory':
      if (!existing?.isDirectory()) await fsp.mkdir(abs, { mode: 0o700 });
      entry.resume();
      return true;
    case 'file':
    case 'contiguous-file':
      // O_EXCL: a symlink planted at this name is never followed
      await pipeEntry(entry, () => createWriteStream(abs, { flags: 'wx', mode: 0o600 }));
      return true;
    case 'symlink':
      entry.resume();
      await fsp.symlink(h.linkname, abs);
      return true;
    case 'character-device':
    case 'block-device':
    case 'fifo':
      entry.resume();
      // a user namespace may make fifos and whiteouts (0:0) but no other device
      if (h.type !== 'fifo' && inUserNamespace() && (h.devmajor || h.devminor)) {
        throw new LbuildError(`tar entry ${JSON.stringify(h.name)}: a device node (${h.devmajor}:${h.devminor}) cannot be made rootless; use this image as root`);
      }
      await makeDevice(abs, h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c', h.devmajor, h.devminor);
      return true;
    default:
      entry.resume(); // pax/gnu meta entries are consumed by tar-stream; unknown types are skipped
      return false;
  }
}

/**
 * Sparse files (GNU `S` entries, PAX GNU.sparse.*) would be dropped or unpacked as their sparse
 * map: neither is the file the archive holds. Until lbuild reads them, they are refused by name.
 */
function refuseSparse(h: tar.Header): void {
  const pax = (h.pax ?? {}) as Record<string, string>;
  const sparse = h.type === null || Object.keys(pax).some((k) => k.startsWith('GNU.sparse.')) || /(^|\/)GNUSparseFile\.\d+\//.test(h.name);
  if (sparse) throw new LbuildError(`tar entry ${JSON.stringify(h.name)}: a sparse file (or an entry type lbuild cannot unpack); re-create the archive without --sparse`);
}

/**
 * Owner (PAX uid/gid win over the ustar fields), mode (after the chown, which clears setuid) and
 * mtime of a written entry. A directory's mtime is returned for the caller to set last, since
 * creating its children changes it.
 */
export async function applyEntryMeta(abs: string, h: tar.Header, chown: boolean): Promise<Date | undefined> {
  const pax = (h.pax ?? {}) as Record<string, string>;
  if (chown) {
    const uid = pax.uid !== undefined ? Number(pax.uid) : h.uid;
    const gid = pax.gid !== undefined ? Number(pax.gid) : h.gid;
    await fsp.lchown(abs, uid, gid).catch((e: unknown) => {
      // EINVAL: an id the user namespace does not map
      if (isErrno(e, 'EINVAL') && inUserNamespace()) {
        throw new LbuildError(`tar entry ${JSON.stringify(h.name)}: owner ${uid}:${gid} is outside the rootless id range (${mappedRange()}); give the user a larger range in /etc/subuid and /etc/subgid`);
      }
      throw e;
    });
  }
  if (h.type !== 'symlink') await fsp.chmod(abs, h.mode & 0o7777);
  if (h.type === 'directory') return h.mtime;
  await fsp.lutimes(abs, h.mtime, h.mtime);
  return undefined;
}
