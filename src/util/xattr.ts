import { runTool } from './exec.js';
import { promises as fsp, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { LbuildError } from '../errors.js';
import { inUserNamespace } from '../runtime/rootless.js';

/*
 * Node has no xattr or mknod API. We use Debian's `attr` tools (getfattr/setfattr) and
 * coreutils `mknod`: both are small, maintained and present wherever overlayfs is.
 */

/*
 * As root, only `trusted.overlay.opaque` marks an opaque directory: overlay is mounted with trusted
 * xattrs, and a RUN (without CAP_SYS_ADMIN) cannot set a trusted.* attribute, while any process
 * may set `user.overlay.opaque` on its own files. Taking the user.* one as a marker would let a
 * RUN hide a lower directory's contents in the image it ships. Rootless, trusted.* is out of
 * reach and overlay is mounted with `userxattr`: the marker is user.overlay.opaque, and overlay
 * refuses to let anything set its own attributes through the mount, so a RUN still cannot.
 */
export function overlayXattrNamespace(): 'trusted' | 'user' {
  return inUserNamespace() ? 'user' : 'trusted';
}

/** overlay's own attributes; as root, user.overlay.* is a file's like any other (and does not ship) */
const OVERLAY_PREFIX = `${overlayXattrNamespace()}.overlay.`;
const OPAQUE_XATTR = `${OVERLAY_PREFIX}opaque`;

async function run(cmd: string, args: string[]): Promise<void> {
  try {
    const r = await runTool(cmd, args);
    if (r.exitCode !== 0) throw new LbuildError(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LbuildError(`${cmd} is not installed (Debian: apt-get install ${cmd === 'mknod' ? 'coreutils' : 'attr'})`);
    }
    throw e;
  }
}

export async function markOpaque(dir: string): Promise<void> {
  await run('setfattr', ['-h', '-n', OPAQUE_XATTR, '-v', 'y', dir]);
}

export async function makeWhiteout(p: string): Promise<void> {
  await run('mknod', [p, 'c', '0', '0']);
}

export async function makeDevice(p: string, kind: 'c' | 'b' | 'p', major = 0, minor = 0): Promise<void> {
  await run('mknod', kind === 'p' ? [p, 'p'] : [p, kind, String(major), String(minor)]);
}

/** getfattr escapes unusual bytes in names as \ooo (octal). */
function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(...Buffer.from(c ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Extended attributes of one path, in name order, values as raw bytes. */
export type Xattrs = [string, Buffer][];

/**
 * The attributes a layer carries (as BuildKit writes them, SCHILY.xattr PAX records): file
 * capabilities, POSIX ACLs, user.* and trusted.*, but never overlay's own (trusted.overlay.*,
 * user.overlay.*: an opaque marker or a redirect in a layer would change what lower layers show).
 */
export function shippedXattr(name: string): boolean {
  if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) return false;
  return name === 'security.capability' || name === 'system.posix_acl_access' || name === 'system.posix_acl_default' || name.startsWith('user.') || name.startsWith('trusted.');
}

export interface TreeXattrs {
  /** relative paths of directories marked overlay-opaque */
  opaque: Set<string>;
  /** relative path → the attributes that ship */
  shipped: Map<string, Xattrs>;
  /** relative path → attributes that exist in the tree but do not ship (overlay's own excepted) */
  unshipped: Map<string, string[]>;
}

/** Runs getfattr (dumping every attribute, hex values) and calls `each` per path and attribute. */
async function getfattr(args: readonly string[], each: (file: string, name: string, value: Buffer) => void): Promise<void> {
  // a path that vanished since it was listed is reported on stderr and skipped (exit 1): its caller sees it gone
  const out = await runTool('getfattr', ['-P', '-h', '--absolute-names', '-e', 'hex', '-m', '-', '-d', ...args]).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LbuildError('getfattr is not installed (Debian: apt-get install attr)');
    throw e;
  });
  let file: string | undefined;
  for (const line of out.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      file = unescapeGetfattr(line.slice('# file: '.length));
      continue;
    }
    const eq = line.indexOf('=');
    if (file === undefined || eq <= 0) continue;
    const raw = line.slice(eq + 1);
    each(file, unescapeGetfattr(line.slice(0, eq)), raw.startsWith('0x') ? Buffer.from(raw.slice(2), 'hex') : Buffer.from(raw.replace(/^"|"$/g, '')));
  }
}

/**
 * Every extended attribute under root, one getfattr for the whole tree (per-file calls would
 * dominate large diffs). `skip`: paths (relative to root) not to look at, nor below.
 */
export async function readTreeXattrs(root: string, skip?: ReadonlySet<string>): Promise<TreeXattrs> {
  const result: TreeXattrs = { opaque: new Set(), shipped: new Map(), unshipped: new Map() };
  const each = (file: string, name: string, value: Buffer): void => {
    const rel = path.relative(root, file).split(path.sep).join('/');
    if (name === OPAQUE_XATTR) {
      if (value.toString() === 'y') result.opaque.add(rel);
    } else if (shippedXattr(name)) {
      const list = result.shipped.get(rel) ?? [];
      list.push([name, value]);
      result.shipped.set(rel, list);
    } else if (!name.startsWith(OVERLAY_PREFIX)) {
      result.unshipped.set(rel, [...(result.unshipped.get(rel) ?? []), name]);
    }
  };
  if (!skip?.size) {
    await getfattr(['-R', '--', root], each);
    return result;
  }
  // the rest of the tree listed here (directory entries carry their type: no stat), then read by name
  const paths: string[] = [root];
  const walk = (dir: string, rel: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      if (skip.has(r)) continue;
      const abs = path.join(dir, d.name);
      paths.push(abs);
      if (d.isDirectory()) walk(abs, r);
    }
  };
  walk(root, '');
  await getfattrOf(paths, each);
  return result;
}

/** Bytes of path arguments per getfattr run (well under Linux's 2 MiB for arguments and environment). */
const ARG_BYTES = 512 * 1024;

/** getfattr over the given paths, a few runs for any number of them. */
async function getfattrOf(paths: readonly string[], each: (file: string, name: string, value: Buffer) => void): Promise<void> {
  for (let i = 0; i < paths.length; ) {
    const batch: string[] = [];
    for (let bytes = 0; i < paths.length && (batch.length === 0 || bytes < ARG_BYTES); i++) {
      const p = paths[i] as string;
      batch.push(p);
      bytes += Buffer.byteLength(p) + 1;
    }
    await getfattr(['--', ...batch], each);
  }
}

/**
 * The attributes that ship (see shippedXattr) of the given absolute paths, none followed at the
 * last component; paths without any are left out. A few getfattr runs for any number of paths.
 */
export async function readXattrsOf(paths: readonly string[]): Promise<Map<string, Xattrs>> {
  const found = new Map<string, Xattrs>();
  await getfattrOf(paths, (file, name, value) => {
    if (!shippedXattr(name)) return;
    const list = found.get(file) ?? [];
    list.push([name, value]);
    found.set(file, list);
  });
  return found;
}

/** A short fingerprint of a path's shipped attributes, for cache keys ('' for none). */
export function xattrTag(list: Xattrs | undefined): string {
  if (!list?.length) return '';
  const h = createHash('sha256');
  for (const [name, value] of [...list].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) h.update(`${name}=${value.toString('hex')}\n`);
  return h.digest('hex').slice(0, 16);
}

/** getfattr's path quoting (\ooo for bytes setfattr could not read back). */
function escapeForRestore(p: string): string {
  let out = '';
  for (const b of Buffer.from(p, 'utf8')) out += b <= 0x20 || b >= 0x7f || b === 0x5c || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  return out;
}

/**
 * Set (`value`) or remove (`null`) attributes on paths under root, no link followed at the last
 * component (`setfattr -h`); one process for all of them. Callers have checked the parents.
 */
export async function writeXattrs(root: string, changes: readonly [string, string, Buffer | null][], tmpDir: string): Promise<void> {
  if (changes.length === 0) return;
  const lines: string[] = [];
  const removals: [string, string][] = [];
  for (const [rel, name, value] of changes) {
    if (value === null) removals.push([rel, name]);
    else lines.push(`# file: ${escapeForRestore(rel)}`, `${escapeForRestore(name)}=0x${value.toString('hex')}`, '');
  }
  if (lines.length) {
    const dump = path.join(tmpDir, `xattrs-${process.pid}-${Date.now()}`);
    await fsp.writeFile(dump, `${lines.join('\n')}\n`);
    try {
      const r = await runTool('setfattr', ['-h', `--restore=${dump}`], { cwd: root });
      if (r.exitCode !== 0) throw new LbuildError(`setfattr --restore: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    } finally {
      await fsp.rm(dump, { force: true });
    }
  }
  for (const [rel, name] of removals) await run('setfattr', ['-h', '-x', name, path.join(root, rel)]);
}
