import { lazyExeca } from './exec.js';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LbuildError } from '../errors.js';

/*
 * Node has no xattr or mknod API. We use Debian's `attr` tools (getfattr/setfattr) and
 * coreutils `mknod`: both are small, maintained and present wherever overlayfs is.
 */

/*
 * Only `trusted.overlay.opaque` marks an opaque directory: lbuild mounts overlay with trusted
 * xattrs (as root), and a RUN (without CAP_SYS_ADMIN) cannot set a trusted.* attribute, while any
 * process may set `user.overlay.opaque` on its own files. Taking the user.* one as a marker would
 * let a RUN hide a lower directory's contents in the image it ships.
 */
const OPAQUE_XATTR = 'trusted.overlay.opaque';

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const execa = await lazyExeca();
    const r = await execa(cmd, args, { reject: false, stdin: 'ignore' });
    if (r.exitCode !== 0) throw new LbuildError(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return r.stdout;
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

/** Every extended attribute under root, one getfattr for the whole tree (per-file calls would dominate large diffs). */
export async function readTreeXattrs(root: string): Promise<TreeXattrs> {
  const execa = await lazyExeca();
  const out = await execa('getfattr', ['-R', '-P', '--absolute-names', '-e', 'hex', '-m', '-', '-d', root], { reject: false, stdin: 'ignore', stripFinalNewline: false }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LbuildError('getfattr is not installed (Debian: apt-get install attr)');
    throw e;
  });
  const result: TreeXattrs = { opaque: new Set(), shipped: new Map(), unshipped: new Map() };
  let rel: string | undefined;
  for (const line of out.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      rel = path.relative(root, unescapeGetfattr(line.slice('# file: '.length))).split(path.sep).join('/');
      continue;
    }
    const eq = line.indexOf('=');
    if (rel === undefined || eq <= 0) continue;
    const name = unescapeGetfattr(line.slice(0, eq));
    const raw = line.slice(eq + 1);
    const value = raw.startsWith('0x') ? Buffer.from(raw.slice(2), 'hex') : Buffer.from(raw.replace(/^"|"$/g, ''));
    if (name === OPAQUE_XATTR) {
      if (value.toString() === 'y') result.opaque.add(rel);
    } else if (shippedXattr(name)) {
      const list = result.shipped.get(rel) ?? [];
      list.push([name, value]);
      result.shipped.set(rel, list);
    } else if (!name.startsWith('trusted.overlay.')) {
      result.unshipped.set(rel, [...(result.unshipped.get(rel) ?? []), name]);
    }
  }
  return result;
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
  const execa = await lazyExeca();
  if (lines.length) {
    const dump = path.join(tmpDir, `xattrs-${process.pid}-${Date.now()}`);
    await fsp.writeFile(dump, `${lines.join('\n')}\n`);
    try {
      const r = await execa('setfattr', ['-h', `--restore=${dump}`], { cwd: root, reject: false, stdin: 'ignore' });
      if (r.exitCode !== 0) throw new LbuildError(`setfattr --restore: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    } finally {
      await fsp.rm(dump, { force: true });
    }
  }
  for (const [rel, name] of removals) await run('setfattr', ['-h', '-x', name, path.join(root, rel)]);
}
