import { lazyExeca } from './exec.js';
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

/** Relative paths (posix, no leading slash) of directories under root marked overlay-opaque. */
export async function listOpaqueDirs(root: string): Promise<Set<string>> {
  // one process for the whole tree: per-directory calls would dominate large diffs
  const execa = await lazyExeca();
  const out = await execa('getfattr', ['-R', '-P', '--absolute-names', '-m', `^${OPAQUE_XATTR.replaceAll('.', '\\.')}$`, '-d', root], {
    reject: false,
    stdin: 'ignore',
  }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LbuildError('getfattr is not installed (Debian: apt-get install attr)');
    throw e;
  });
  const result = new Set<string>();
  let current: string | undefined;
  for (const line of out.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = unescapeGetfattr(line.slice('# file: '.length));
    } else if (current !== undefined && line === `${OPAQUE_XATTR}="y"`) {
      const rel = path.relative(root, current).split(path.sep).join('/');
      result.add(rel);
    }
  }
  return result;
}
