import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before } from 'node:test';
import { lbuildOk, run, tempDir } from './cli.js';

export const BASE = '127.0.0.1:5000/busybox:latest';

let cached: string | undefined;

/**
 * The base image's root filesystem as a tar, built like the conformance suite's
 * make_busybox_rootfs: Debian busybox-static, one symlink per applet, /etc/passwd and
 * /etc/group with root, fixed mtimes, numeric owners, sorted names.
 */
export async function busyboxRootfsTar(): Promise<string> {
  if (cached) return cached;
  // one tar per machine, shared by every test process (made under a temp name, then renamed)
  const shared = path.join(os.tmpdir(), 'lbuild-test-busybox-rootfs.tar');
  if (await fsp.access(shared).then(() => true, () => false)) {
    cached = shared;
    return shared;
  }
  const dir = tempDir('lbuild-busybox-');
  const root = path.join(dir, 'rootfs');
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'var']) {
    await fsp.mkdir(path.join(root, d), { recursive: true });
  }
  await fsp.chmod(path.join(root, 'tmp'), 0o1777);
  await fsp.copyFile('/bin/busybox', path.join(root, 'bin', 'busybox')).catch(() => {
    throw new Error('/bin/busybox is missing: apt-get install busybox-static');
  });
  await fsp.chmod(path.join(root, 'bin', 'busybox'), 0o755);
  const inst = await run('chroot', [root, '/bin/busybox', '--install', '-s']);
  if (inst.exitCode !== 0) throw new Error(`busybox --install failed: ${inst.stderr}`);
  await fsp.symlink('busybox', path.join(root, 'bin', 'sh')).catch(() => undefined);
  await fsp.writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await fsp.writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\n');
  const touch = await run('find', [root, '-exec', 'touch', '-h', '-d', '2000-01-01 00:00:00Z', '{}', '+']);
  if (touch.exitCode !== 0) throw new Error(touch.stderr);
  const out = path.join(dir, 'busybox-rootfs.tar');
  const tar = await run('tar', ['--numeric-owner', '--sort=name', '-C', root, '-cf', out, '.']);
  if (tar.exitCode !== 0) throw new Error(tar.stderr);
  await fsp.rename(out, shared).catch(() => undefined);
  await fsp.rm(dir, { recursive: true, force: true });
  cached = shared;
  return shared;
}

/** Import the busybox base into a store under `name` (default: the conformance suite's name). */
export async function importBusybox(root: string, name = BASE, env?: Record<string, string>): Promise<string> {
  const tar = await busyboxRootfsTar();
  const r = await lbuildOk(root, ['import', tar, name, '--change', 'CMD ["/bin/sh"]'], env ? { env } : {});
  return r.stdout.trim();
}

/**
 * A temp dir with a store holding the busybox base, made before a test file's tests and removed
 * after them; `ready` receives both paths. `check` runs before the removal (e.g. leak checks).
 */
export function storeFixture(ready: (dir: string, root: string) => void, check?: (dir: string, root: string) => void | Promise<void>): void {
  let dir = '';
  let root = '';
  before(async () => {
    dir = tempDir();
    root = path.join(dir, 'store');
    await importBusybox(root, 'busybox:latest');
    ready(dir, root);
  });
  after(async () => {
    await check?.(dir, root);
    await fsp.rm(dir, { recursive: true, force: true });
  });
}

/**
 * Debian's busybox-static for arm64, one file per machine: `dpkg --add-architecture arm64`, then
 * `apt-get download busybox-static:arm64` from the mirror apt already uses (issue 19's set-up).
 */
export async function arm64Busybox(): Promise<string> {
  const shared = path.join(os.tmpdir(), 'lbuild-test-busybox-arm64');
  if (await fsp.access(shared).then(() => true, () => false)) return shared;
  const dir = tempDir('lbuild-busybox-arm64-');
  try {
    const arches = await run('dpkg', ['--print-foreign-architectures']);
    if (!arches.stdout.split('\n').includes('arm64')) {
      const add = await run('dpkg', ['--add-architecture', 'arm64']);
      if (add.exitCode !== 0) throw new Error(`dpkg --add-architecture arm64: ${add.stderr}`);
      const up = await run('apt-get', ['update', '-qq']);
      if (up.exitCode !== 0) throw new Error(`apt-get update: ${up.stderr}`);
    }
    let dl = await run('apt-get', ['download', '-qq', 'busybox-static:arm64'], { cwd: dir });
    if (dl.exitCode !== 0) {
      // the lists may predate the architecture
      await run('apt-get', ['update', '-qq']);
      dl = await run('apt-get', ['download', '-qq', 'busybox-static:arm64'], { cwd: dir });
    }
    if (dl.exitCode !== 0) throw new Error(`apt-get download busybox-static:arm64: ${dl.stderr}`);
    const deb = (await fsp.readdir(dir)).find((f) => f.endsWith('_arm64.deb'));
    if (!deb) throw new Error('apt-get download left no busybox-static arm64 package');
    const x = await run('dpkg-deb', ['-x', path.join(dir, deb), path.join(dir, 'x')]);
    if (x.exitCode !== 0) throw new Error(`dpkg-deb -x: ${x.stderr}`);
    const tmp = `${shared}.${process.pid}.tmp`;
    await fsp.copyFile(path.join(dir, 'x', 'bin', 'busybox'), tmp);
    await fsp.rename(tmp, shared);
    return shared;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
